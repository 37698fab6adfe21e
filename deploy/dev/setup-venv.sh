#!/usr/bin/env bash
# Create (or reuse) the Python venv that runs the development Nova API and the
# differential tests: exactly the packages pinned in requirements.lock,
# installed with uv (find-uv.sh).
#
#   deploy/dev/setup-venv.sh            # venv in deploy/dev/.venv
#   NOVA_GUARD_DEV_VENV=/path setup-venv.sh
#
# Idempotent: when the venv exists and was made from the same lock (a stamp of
# the lock's sha256 is kept inside it), nothing is done. Prints the venv path
# as the last line on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lock="$here/requirements.lock"
venv="${NOVA_GUARD_DEV_VENV:-$here/.venv}"
stamp="$venv/.requirements.lock.sha256"

say() { printf 'setup-venv: %s\n' "$*" >&2; }

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then
            python="$candidate"
            break
        fi
    done
fi
if [[ -z "$python" ]]; then
    say "no python3.11 found (Nova 34 needs Python >= 3.11)"
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)'; then
    say "$python is $("$python" -V 2>&1); Nova 34 needs Python >= 3.11"
    exit 1
fi

want="$("$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$lock")"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "venv up to date: $venv"
    echo "$venv"
    exit 0
fi

if [[ -e "$venv" ]]; then
    say "venv at $venv is missing or stale; recreating it"
    rm -rf "$venv"
fi

uv="$("$here/find-uv.sh" "$python")"
start=$SECONDS
say "creating venv at $venv with $("$python" -V 2>&1): $(grep -c '==' "$lock") pinned packages (no dependency resolution)"
"$uv" venv -q -p "$python" "$venv" >&2
# Compiled now, as pip does: Novas in several processes at once, and each
# `openstack` command, would otherwise each compile what they import.
"$uv" pip install -q --compile-bytecode -p "$venv/bin/python" --no-deps -r "$lock" >&2
"$uv" pip check -q -p "$venv/bin/python" >&2
"$venv/bin/python" -c 'import nova, placement, cheroot, oslotest, wsgi_intercept, openstackclient, pytest, h2' >&2
"$venv/bin/uwsgi" --version >/dev/null
echo "$want" > "$stamp"
say "venv ready in $((SECONDS - start)) s: $venv"
echo "$venv"
