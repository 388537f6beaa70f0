#!/usr/bin/env bash
# The fault matrix of issue 23 as one command (docs/faults.md):
#   load-tests/faults.sh [--cars N] [--calm-seconds S] [--only NAME …] [--keep]
# Builds the gate service with its `failpoints` feature (fault-injection hooks that the
# default build does not have) and parkshare-load, then runs `parkshare-load faults`: it
# starts a Postgres (initdb into a temporary directory, its own port) and a Redis (its own
# port, no persistence) of its own, the service as two replicas on them, drives retrying
# cameras, injects one fault per scenario, verifies, prints the table and exits non-zero if a
# scenario failed. Every process it starts is stopped by its PID; the temporary directory is
# removed unless a scenario failed or --keep is given. Never touches the shared servers.
# PROFILE=release builds in release mode (default: debug, the test build's artefacts).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${PROFILE:-debug}
flags=(--locked)
[[ "$profile" == release ]] && flags+=(--release)
cargo build "${flags[@]}" -p parkshare --features failpoints --bin parkshare >&2
# A copy: a later build of the default features writes the same path.
bin=$(mktemp -d)/parkshare-failpoints
cp "target/${profile}/parkshare" "$bin"
trap 'rm -rf "$(dirname "$bin")"' EXIT
cargo build "${flags[@]}" -p parkshare-load --bin parkshare-load >&2

echo "# fault matrix, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), ${profile} build"
"target/${profile}/parkshare-load" faults --gate-bin "$bin" "$@"
