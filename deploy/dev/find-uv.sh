#!/usr/bin/env bash
# Print the path of uv, which installs the dev and release venvs: the uv on
# PATH, else the pinned one from PyPI in <venvs>/uv (installed there first;
# <venvs> is NOVA_GUARD_RELEASE_VENVS, default deploy/dev/.venvs).
#
#   deploy/dev/find-uv.sh PYTHON    # PYTHON makes the venv uv is installed in
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { printf 'find-uv: %s\n' "$*" >&2; }
python="${1:?usage: find-uv.sh PYTHON}"

if uv="$(command -v uv)"; then
    echo "$uv"
    exit 0
fi
venvs="${NOVA_GUARD_RELEASE_VENVS:-$here/.venvs}"
uv="$venvs/uv/bin/uv"
if [[ ! -x "$uv" ]]; then
    say "installing uv from PyPI into $venvs/uv"
    rm -rf "$venvs/uv"
    mkdir -p "$venvs"
    if ! "$python" -m venv "$venvs/uv" 2>/dev/null; then
        # Debian's python3 without python3-venv: ensurepip is missing.
        rm -rf "$venvs/uv"
        if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
            say "installing python3-venv (needed by '$python -m venv')"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2 \
                || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2; }
            "$python" -m venv "$venvs/uv"
        else
            say "'$python -m venv' failed; install the venv module (Debian: python3-venv)"
            exit 1
        fi
    fi
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venvs/uv/bin/python" -m pip install -q uv==0.13.9 >&2
fi
echo "$uv"
