#!/usr/bin/env bash
# Short run of every fuzz target (a regression check, not a search): each
# target replays its seed corpus under fuzz/corpus/<target>/ and then
# mutates for FUZZ_SECONDS (default 10) more. Release build with debug
# assertions and AddressSanitizer, through cargo-fuzz.
#
#   fuzz/run-short.sh                 all targets, 10 s each
#   FUZZ_SECONDS=5 fuzz/run-short.sh  what scripts/test runs
#   FUZZ_SECONDS=600 fuzz/run-short.sh ipv6    one target, 10 minutes
#
# The fuzz crate depends on nova-guard without its default `proxy` feature:
# only the pure code (validator, wire head tracker) is built, instrumented,
# none of the proxy's I/O dependencies.
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer); on a stable toolchain
# RUSTC_BOOTSTRAP=1 lets it use them. New inputs go to a temporary directory,
# not to the committed seeds. A crash leaves its input in
# fuzz/artifacts/<target>/ and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    # A debug build of the cargo-fuzz command itself (it only drives cargo):
    # it installs in a fraction of the release build's time.
    echo "== cargo install cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --debug --quiet
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../target}/fuzz"
seconds="${FUZZ_SECONDS:-10}"
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(check json ipv6 route microversion wire h1)
fi

echo "== cargo fuzz build (release, debug assertions)" >&2
cargo fuzz build -O --debug-assertions

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    echo "== fuzz $t (${seconds}s)" >&2
    cargo fuzz run -O --debug-assertions "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -max_len=4096 -print_final_stats=1 \
        2>"$work/$t.log" || { tail -n 40 "$work/$t.log" >&2; exit 1; }
    grep -E '^stat::number_of_executed_units|^Done' "$work/$t.log" >&2 || true
done
echo "== all fuzz targets passed" >&2
