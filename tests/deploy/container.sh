#!/usr/bin/env bash
# deploy/Containerfile, without a container engine: lint it (hadolint), check
# the image's shape (empty final base, numeric non-root user, exec-form
# entry point), then build the binary it copies, for the target it names,
# and run it as the image would: alone in an empty root file system, as that
# user, with only the image's environment.
#   container.sh ROOT VENV [BIN]
# BIN, when it is a static binary, is taken as that build (scripts/test
# builds everything for the image's target) instead of building one here.
# Needs root for the chroot part.
set -uo pipefail
root="$1" venv="$2" given="${3:-}"
file="$root/deploy/Containerfile"
ok() { echo "ok $*"; }
fail() { echo "FAIL $*"; }
note() { echo "note $*"; }

out="$("$venv/bin/hadolint" --failure-threshold warning "$file" 2>&1)"; rc=$?
if [[ $rc == 0 ]]; then ok "container: hadolint finds nothing"
else fail "container: hadolint: $out"; fi

last_from="$(grep -E '^FROM ' "$file" | tail -n 1 | awk '{print $2}')"
case "$last_from" in
scratch | gcr.io/distroless/static* | gcr.io/distroless/cc*) ok "container: final image FROM $last_from" ;;
*) fail "container: final image FROM $last_from (want scratch or distroless)" ;;
esac
user="$(grep -E '^USER ' "$file" | tail -n 1 | awk '{print $2}')"
uid="${user%%:*}" gid="${user#*:}"
if [[ "$uid" =~ ^[0-9]+$ && "$gid" =~ ^[0-9]+$ && $uid != 0 && $gid != 0 ]]; then
    ok "container: runs as numeric non-root $user"
else fail "container: USER '$user' is not a numeric non-root user"; fi
entry="$(grep -E '^ENTRYPOINT ' "$file")"
if [[ "$entry" == 'ENTRYPOINT ["/usr/local/bin/nova-guard"]' ]]; then ok "container: exec-form entry point"
else fail "container: entry point $entry"; fi
target="$("$root/scripts/image-target.sh" "$file")"
copied="$(grep -E '^COPY --from=build ' "$file" | awk '{print $3}')"
if [[ -n "$target" && "$copied" == /out/nova-guard ]] \
    && grep -qF "target/$target/release/nova-guard /out/nova-guard" "$file"; then
    ok "container: copies the $target release binary"
else fail "container: the copied binary is not the $target build"; fi
image_env=()
while read -r kv; do image_env+=("$kv"); done < <(sed -n 's/^ENV \([A-Z_]*=[^ ]*\)$/\1/p' "$file")
stopsignal="$(sed -n 's/^STOPSIGNAL //p' "$file")"
[[ "$stopsignal" == SIGTERM ]] && ok "container: STOPSIGNAL SIGTERM" || fail "container: STOPSIGNAL '$stopsignal'"

# The image's build stage installs musl-gcc when the build needs a C compiler.
if grep -q '^name = "ring"' "$root/Cargo.lock"; then
    grep -q 'musl-tools' "$file" && ok "container: the build stage has musl-gcc (ring needs it)" \
        || fail "container: ring is a dependency but the build stage has no musl-tools"
fi

# The binary, for the Containerfile's target. A debug build: same target,
# same linking, without the release profile's cost.
is_static() {
    ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter' \
        && ! readelf -d "$1" 2>/dev/null | grep -q '(NEEDED)'
}
if [[ -n "$given" && -x "$given" ]] && is_static "$given"; then
    bin="$given"
    note "container: testing the static build it was given, $bin"
else
    if ! "$root/scripts/image-target.sh" --install "$file" >/dev/null; then
        note "container: the $target standard library cannot be installed here (rustup target add failed); the static binary is not tested"
        exit 0
    fi
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
    if ! (cd "$root" && cargo build --locked -q --target "$target") 2>&1; then
        fail "container: cargo build --target $target"
        exit 1
    fi
    bin="$CARGO_TARGET_DIR/$target/debug/nova-guard"
    ok "container: nova-guard builds for $target"
fi
if is_static "$bin"; then ok "container: the binary is static (no interpreter, no shared library)"
else fail "container: $bin is dynamically linked"; fi

if [[ $(id -u) != 0 ]]; then
    note "container: not root, so the run in an empty root file system is skipped"
    exit 0
fi
rootfs="$(mktemp -d)"
pid=""
cleanup() { [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; rm -rf "$rootfs"; }
trap cleanup EXIT
chmod 0755 "$rootfs"
install -D -m 0555 "$bin" "$rootfs/usr/local/bin/nova-guard"
chroot="$(command -v chroot)"
# As the image runs it: nothing else in the root, no environment but its own.
in_image_args() { env -i "${image_env[@]}" "${extra[@]}" "$chroot" --userspec="$uid:$gid" "$rootfs" /usr/local/bin/nova-guard "$@"; }

extra=()
out="$(in_image_args --version 2>&1)"
[[ "$out" == "nova-guard "* ]] && ok "container: --version in an empty root, as $uid:$gid" \
    || fail "container: --version in an empty root: $out"
out="$(in_image_args --check-config 2>&1)"; rc=$?
if [[ $rc == 0 ]] && grep -q '^NOVA_GUARD_LISTEN=0.0.0.0:8775 .*# environment' <<<"$out"; then
    ok "container: the image's environment passes --check-config"
else fail "container: --check-config with the image's environment (rc $rc): $out"; fi

# Serve: with no Nova behind it, a request gets nova-guard's own 502.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
dead="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
extra=(NOVA_GUARD_LISTEN=127.0.0.1:$port NOVA_GUARD_UPSTREAM=http://127.0.0.1:$dead)
# Started directly (not through the function) so that $! is nova-guard itself.
env -i "${image_env[@]}" "${extra[@]}" "$chroot" --userspec="$uid:$gid" "$rootfs" \
    /usr/local/bin/nova-guard >"$rootfs.log" 2>&1 &
pid=$!
code=""
for _ in $(seq 1 50); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2.1/" 2>/dev/null)"
    [[ "$code" != 000 && -n "$code" ]] && break
    sleep 0.1
done
if [[ "$code" == 502 ]]; then ok "container: serves in an empty root as $uid:$gid (502 with no Nova)"
else fail "container: serving in an empty root: got '$code': $(cat "$rootfs.log")"; fi
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"; rc=$?
pid=""
[[ $rc == 0 ]] && ok "container: SIGTERM stops it with exit 0" || fail "container: exit $rc after SIGTERM"
rm -f "$rootfs.log"
