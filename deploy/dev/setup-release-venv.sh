#!/usr/bin/env bash
# Create (or reuse) the Python venv that runs the Nova API of one release for
# the differential tests: exactly the packages pinned in releases/<release>.lock
# (made from that release's upper-constraints), installed with uv.
#
#   deploy/dev/setup-release-venv.sh 2025.1     # venv in deploy/dev/.venvs/2025.1
#   NOVA_GUARD_RELEASE_VENVS=/path setup-release-venv.sh 2025.1
#   NOVA_GUARD_RELEASE_PYTHON=/path/to/python3.12 setup-release-venv.sh 2025.1
#
# 2026.2 is the development venv (setup-venv.sh, requirements.lock): its path
# is printed. Idempotent: when the venv exists and was made from the same
# lock with the same interpreter (a stamp is kept inside it), nothing is done.
# uv is the one find-uv.sh finds or installs. Prints the venv path as the last
# line on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { printf 'setup-release-venv: %s\n' "$*" >&2; }

release="${1:-}"
if [[ "$release" == "2026.2" ]]; then
    exec "$here/setup-venv.sh"
fi
lock="$here/releases/$release.lock"
if [[ -z "$release" || ! -f "$lock" ]]; then
    known="$(cd "$here/releases" && ls -- *.lock | sed 's/\.lock$//' | tr '\n' ' ')"
    say "usage: $0 RELEASE (one of: ${known}2026.2)"
    exit 2
fi

venvs="${NOVA_GUARD_RELEASE_VENVS:-$here/.venvs}"
venv="$venvs/$release"
stamp="$venv/.release.lock.stamp"

# Every release here runs on CPython 3.11 (2024.1 up to 3.11, 2026.2 from it).
python="${NOVA_GUARD_RELEASE_PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then
            python="$candidate"
            break
        fi
    done
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 10) else 1)'; then
    say "no Python 3.10 or later found (set NOVA_GUARD_RELEASE_PYTHON)"
    exit 1
fi
python="$(command -v "$python")"

want="$("$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest(), sys.version.split()[0])' "$lock")"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "venv up to date: $venv"
    echo "$venv"
    exit 0
fi

uv="$("$here/find-uv.sh" "$python")"

if [[ -e "$venv" ]]; then
    say "venv at $venv is missing or stale; recreating it"
    rm -rf "$venv"
fi
start=$SECONDS
say "creating venv at $venv with $("$python" -V 2>&1): $(grep -c '==' "$lock") pinned packages"
"$uv" venv -q -p "$python" "$venv" >&2
"$uv" pip install -q -p "$venv/bin/python" --no-deps -r "$lock" >&2
# Importing nova does not start anything (no eventlet patching happens here).
"$venv/bin/python" -c 'import nova, placement, cheroot, oslotest, wsgi_intercept' >&2
echo "$want" > "$stamp"
say "venv ready in $((SECONDS - start)) s: $venv"
echo "$venv"
