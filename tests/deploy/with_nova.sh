#!/usr/bin/env bash
# An end-to-end check script that runs the real Nova of deploy/dev/, with that
# Nova's venv Python:
#   with_nova.sh PART ROOT NOVA_GUARD_BIN
# runs PART_e2e.py ROOT NOVA_GUARD_BIN DEV_DIR (haproxy: deploy/haproxy/, HAProxy
# (TLS) → nova-guard → Nova; apache: nova-guard → devstack's Apache → Nova).
# NOVA_DEV_DIR: where nova_api.py and setup-venv.sh are (default deploy/dev).
set -uo pipefail
part="$1" root="$2" bin="$3"
dev="${NOVA_DEV_DIR:-$root/deploy/dev}"
if [[ ! -f "$dev/nova_api.py" || ! -x "$dev/setup-venv.sh" ]]; then
    echo "FAIL $part: no Nova dev environment at $dev (nova_api.py, setup-venv.sh)"
    exit 1
fi
venv="$("$dev/setup-venv.sh" </dev/null | tail -n 1)"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "FAIL $part: $dev/setup-venv.sh did not give a venv"
    exit 1
fi
exec "$venv/bin/python" "$(dirname "$0")/${part}_e2e.py" "$root" "$bin" "$dev"
