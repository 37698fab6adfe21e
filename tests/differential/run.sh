#!/usr/bin/env bash
# Differential tests: every request to a real Nova directly and through
# nova-guard in front of it; the answers must agree except for the contract's
# deliberate differences.
#
#   tests/differential/run.sh [pytest args...]
#
# Sets up the venv (deploy/dev/setup-venv.sh), builds nova-guard in release
# mode (unless NOVA_GUARD_BIN names a binary), runs pytest. Exits non-zero on
# any failure. NOVA_GUARD_DIFF_SEED replays a generated corpus,
# NOVA_GUARD_DIFF_CASES=<regex> runs only matching cases,
# NOVA_GUARD_DIFF_COUNT sets how many bodies are generated (default 900),
# NOVA_GUARD_DIFF_FUZZ_CORPUS=<dir> replays the fuzz inputs under <dir>/check
# and <dir>/ipv6 instead of the committed seeds (-k fuzz_corpus: only those).
# The tests run in two worker processes (conftest.LANES), each with its own
# Novas; NOVA_GUARD_DIFF_WORKERS=0 runs them all in pytest's own process.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

venv="$("$root/deploy/dev/setup-venv.sh" | tail -n 1)"

if [[ -z "${NOVA_GUARD_BIN:-}" ]]; then
    echo "== cargo build --release --locked" >&2
    (cd "$root" && cargo build --release --locked)
    export NOVA_GUARD_BIN="$root/target/release/nova-guard"
fi

cd "$here"
workers="${NOVA_GUARD_DIFF_WORKERS:-2}"
if [[ ! "$workers" =~ ^[0-9]+$ ]]; then
    echo "NOVA_GUARD_DIFF_WORKERS must be a number of worker processes (0: none), not '$workers'" >&2
    exit 2
fi
spread=()
if ((workers > 0)); then
    spread=(-n "$workers")
fi
exec "$venv/bin/python" -m pytest -p no:cacheprovider -ra --durations=12 \
    "${spread[@]}" "$@" .
