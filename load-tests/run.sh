#!/usr/bin/env bash
# One command for the whole measurement (load-tests/README.md):
#   load-tests/run.sh [profile|run|find-max …]   (default: profile)
# Builds both binaries in release, starts the gate service on 127.0.0.1:18080 with a fresh
# database and Redis prefix, optionally fills Postgres with idle lots and stored sessions,
# drives it with parkshare-load, reports the server's peak resident memory, and stops the
# server by its process id. Traffic stays on loopback.
#
# Environment: FILLER_LOTS (default 0) extra lots, FILLER_SESSIONS (default 0) closed
# sessions with their gate events; PERF=1 records a CPU profile of the server with perf
# during the run (load-tests/perf.txt); PG (default postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${PG:-postgres://postgres@127.0.0.1:5432}
RUN_ID=$(date +%s)
DB="parkshare_load_${RUN_ID}"
export PARKSHARE_DATABASE_URL="${PG}/${DB}"
export PARKSHARE_REDIS_PREFIX="psload${RUN_ID}"
export PARKSHARE_OPERATOR_TOKEN="load-${RUN_ID}"
export PARKSHARE_LISTEN=127.0.0.1:18080
export RUST_LOG=${RUST_LOG:-warn}
# The scenario simulates stays by backdating entries up to hours; in production a live read
# that old is a wrong camera clock, recorded without opening (docs/configuration.md).
export PARKSHARE_LIVE_READ_AGE_MAX_S=172800

cargo build --release --locked -p parkshare -p parkshare-load >&2

server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n "${KEEP_DB:-}" ]]; then
    echo "kept for inspection: database ${DB}, Redis prefix ${PARKSHARE_REDIS_PREFIX}" >&2
    return
  fi
  psql "${PG}/postgres" -qc "drop database if exists \"${DB}\" with (force)" >/dev/null 2>&1 || true
  redis-cli --scan --pattern "${PARKSHARE_REDIS_PREFIX}:*" | xargs -r redis-cli del >/dev/null || true
}
trap cleanup EXIT

start_server() {
  target/release/parkshare > "load-tests/server-${RUN_ID}.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:18080/readyz >/dev/null && return 0
    sleep 0.2
  done
  echo "the server did not become ready" >&2
  exit 1
}

start_server
if [[ "${FILLER_LOTS:-0}" != 0 || "${FILLER_SESSIONS:-0}" != 0 ]]; then
  # Filler: idle lots, and closed stays with their gate events, in a compound of their own.
  target/release/parkshare-load --host http://127.0.0.1:18080 --compounds 1 --lots-per-compound 2 \
    run --rate 5 --seconds 1 > /dev/null
  psql "$PARKSHARE_DATABASE_URL" -v ON_ERROR_STOP=1 -q <<SQL
insert into lots (id, tenant_id, compound_id, name, visitor_capacity, tariff)
select gen_random_uuid(), l.tenant_id, l.compound_id, 'filler-' || i, 100, l.tariff
  from (select * from lots limit 1) l, generate_series(1, ${FILLER_LOTS:-0}) i;
with s as (
  insert into sessions (id, tenant_id, compound_id, lot_id, plate, vehicle_class, kind, pool, status,
                        origin, entered_at, entry_gate_id, exited_at, exit_gate_id, fee)
  select gen_random_uuid(), l.tenant_id, l.compound_id, l.id, '京F' || lpad(i::text, 7, '0'), 'small',
         'visitor', 'visitor', 'closed', 'entry', now() - interval '3 days', g.id,
         now() - interval '2 days', g.id, 6.00
    from (select * from lots limit 1) l
    join lateral (select id from gates where lot_id = l.id limit 1) g on true,
         generate_series(1, ${FILLER_SESSIONS:-0}) i
  returning id, entry_gate_id, plate, entered_at)
insert into gate_events (id, gate_id, device_event_id, plate, direction, captured_at, session_id,
                         action, reason, response)
select gen_random_uuid(), entry_gate_id, 'filler-' || id, plate, 'entry', entered_at, id, 'open',
       'visitor_admitted', '{}'::jsonb from s;
SQL
  # As a system that has held them for a while would be: vacuumed, statistics current.
  psql "$PARKSHARE_DATABASE_URL" -qc 'vacuum analyze'
  # …and with the filler's writes already on disk, not flushed by a checkpoint mid-run.
  psql "$PARKSHARE_DATABASE_URL" -qc 'checkpoint'
  # Restart so that the start-up rebuild covers the filler lots too.
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  start_server
fi

if [[ "${PERF:-0}" == 1 ]]; then
  # The whole machine for 15 s, once seeding is done: where the two cores go (load generator,
  # service, Postgres, Redis), and within the service, which functions.
  (sleep "${PERF_AFTER_S:-30}"; perf record -F 499 -a -g -o "load-tests/perf-${RUN_ID}.data" -- sleep 15 >/dev/null 2>&1 || true) &
  perf_pid=$!
fi

set +e
target/release/parkshare-load --host http://127.0.0.1:18080 "${@:-profile}"
status=$?
set -e
echo "server peak resident memory: $(grep VmHWM /proc/"$server_pid"/status | awk '{print $2, $3}')"
# How often a credential was looked up in Postgres rather than the process's cache.
curl -sf http://127.0.0.1:18080/metrics | grep '^parkshare_credential_lookups_total' \
  | sed 's/^/credential lookups: /' || true
echo "lots: $(psql "$PARKSHARE_DATABASE_URL" -Atc 'select count(*) from lots'), sessions stored: $(psql "$PARKSHARE_DATABASE_URL" -Atc 'select count(*) from sessions')"
if [[ "${PERF:-0}" == 1 ]]; then
  wait "$perf_pid" || true
  {
    echo "## CPU by process (thread names), all cores"
    perf report -i "load-tests/perf-${RUN_ID}.data" --stdio --no-children --sort comm -g none \
      --percent-limit 1 2>/dev/null | grep '%'
    echo "## by process, library and function (self time)"
    perf report -i "load-tests/perf-${RUN_ID}.data" --stdio --no-children --sort comm,dso,symbol \
      -g none --percent-limit 0.6 2>/dev/null | grep '%' | sed 's/[[:space:]-]*$//' | head -45
  } > load-tests/perf.txt || true
  rm -f "load-tests/perf-${RUN_ID}.data"
fi
rm -f "load-tests/server-${RUN_ID}.log"
exit $status
