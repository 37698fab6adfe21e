#!/usr/bin/env bash
# deploy/apache/: nova-guard → Apache (mod_proxy_uwsgi, /compute) → the real Nova of deploy/dev/.
#   apache.sh ROOT NOVA_GUARD_BIN
# NOVA_DEV_DIR: where nova_api.py and setup-venv.sh are (default deploy/dev).
set -uo pipefail
root="$1" bin="$2"
dev="${NOVA_DEV_DIR:-$root/deploy/dev}"
if [[ ! -f "$dev/nova_api.py" || ! -x "$dev/setup-venv.sh" ]]; then
    echo "FAIL apache: no Nova dev environment at $dev (nova_api.py, setup-venv.sh)"
    exit 1
fi
venv="$("$dev/setup-venv.sh" </dev/null | tail -n 1)"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "FAIL apache: $dev/setup-venv.sh did not give a venv"
    exit 1
fi
exec "$venv/bin/python" "$(dirname "$0")/apache_e2e.py" "$root" "$bin" "$dev"
