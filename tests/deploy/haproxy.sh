#!/usr/bin/env bash
# deploy/haproxy/: HAProxy (TLS) → nova-guard → the real Nova of deploy/dev/.
#   haproxy.sh ROOT NOVA_GUARD_BIN
# NOVA_DEV_DIR: where nova_api.py and setup-venv.sh are (default deploy/dev).
set -uo pipefail
root="$1" bin="$2"
dev="${NOVA_DEV_DIR:-$root/deploy/dev}"
if [[ ! -f "$dev/nova_api.py" || ! -x "$dev/setup-venv.sh" ]]; then
    echo "FAIL haproxy: no Nova dev environment at $dev (nova_api.py, setup-venv.sh)"
    exit 1
fi
venv="$("$dev/setup-venv.sh" </dev/null | tail -n 1)"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "FAIL haproxy: $dev/setup-venv.sh did not give a venv"
    exit 1
fi
exec "$venv/bin/python" "$(dirname "$0")/haproxy_e2e.py" "$root" "$bin" "$dev"
