#!/usr/bin/env bash
# Create (or reuse) the Python venv that runs the development Nova API and the
# differential tests: exactly the packages pinned in requirements.lock.
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

say "creating venv at $venv with $("$python" -V 2>&1)"
if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian's python3 without python3-venv: ensurepip is missing.
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
        say "installing python3-venv (needed by 'python3 -m venv')"
        rm -rf "$venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2; }
        "$python" -m venv "$venv"
    else
        say "'$python -m venv' failed; install the venv module (Debian: python3-venv)"
        exit 1
    fi
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
pip=("$venv/bin/python" -m pip)
say "installing $(grep -c '==' "$lock") pinned packages (no dependency resolution)"
start=$SECONDS
"${pip[@]}" install -q --no-deps -r "$lock" >&2
"${pip[@]}" check >&2
"$venv/bin/python" -c 'import nova, placement, cheroot, oslotest, wsgi_intercept, openstackclient, pytest, h2' >&2
"$venv/bin/uwsgi" --version >/dev/null
echo "$want" > "$stamp"
say "venv ready in $((SECONDS - start)) s: $venv"
echo "$venv"
