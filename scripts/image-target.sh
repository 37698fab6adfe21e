#!/usr/bin/env bash
# The Rust target the container image is built for: the first `--target` of
# deploy/Containerfile (or of the file given), printed on stdout.
#   scripts/image-target.sh [--install] [CONTAINERFILE]
# --install also makes sure rustup has that target's standard library
# (rustup target add); exits 1 when it cannot.
set -euo pipefail
install=""
if [[ ${1:-} == --install ]]; then install=1; shift; fi
file="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deploy/Containerfile}"
target="$(grep -oE -- '--target [a-z0-9_-]+' "$file" | head -n 1 | awk '{print $2}' || true)"
if [[ -z "$target" ]]; then
    echo "no --target in $file" >&2
    exit 1
fi
installed() { rustup target list --installed 2>/dev/null | grep -qx "$target"; }
if [[ -n $install ]] && ! installed; then
    rustup target add "$target" >/dev/null 2>&1 || true
    installed || { echo "rustup cannot install the $target standard library" >&2; exit 1; }
fi
echo "$target"
