#!/usr/bin/env bash
# deploy/kubernetes/sidecar/: a pod deletion with the patch's preStop hooks
# and with the chart's, against the real Nova of deploy/dev/ (rollout.py).
#   rollout.sh ROOT NOVA_GUARD_BIN
# NOVA_DEV_DIR: where nova_api.py and setup-venv.sh are (default deploy/dev).
set -uo pipefail
root="$1" bin="$2"
dev="${NOVA_DEV_DIR:-$root/deploy/dev}"
venv="$("$dev/setup-venv.sh" </dev/null | tail -n 1)"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "FAIL rollout: $dev/setup-venv.sh did not give a venv"
    exit 1
fi
exec "$venv/bin/python" "$(dirname "$0")/rollout.py" "$root" "$bin" "$dev"
