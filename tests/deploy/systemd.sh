#!/usr/bin/env bash
# deploy/systemd/: the unit verifies clean with systemd-analyze, its sandbox
# scores "OK" in systemd-analyze security, it carries the hardening the
# operator guide promises, and the EnvironmentFile example passes
# nova-guard --check-config.
#   systemd.sh ROOT NOVA_GUARD_BIN
set -uo pipefail
root="$1" bin="$2"
unit="$root/deploy/systemd/nova-guard.service"
envfile="$root/deploy/systemd/nova-guard.env"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok $*"; }
fail() { echo "FAIL $*"; }

# The unit as installed, with the binary and environment file where this
# test has them (verify checks that ExecStart's program exists).
sed -e "s#/usr/local/bin/nova-guard#$bin#g" \
    -e "s#/etc/nova-guard/nova-guard.env#$envfile#g" "$unit" >"$tmp/nova-guard.service"

out="$(systemd-analyze verify "$tmp/nova-guard.service" 2>&1)"; rc=$?
if [[ $rc == 0 && -z "$out" ]]; then ok "systemd: systemd-analyze verify is clean"
else fail "systemd: systemd-analyze verify (rc $rc): $out"; fi

# The commented TLS variant (LoadCredential=) verifies clean too.
sed 's/^#LoadCredential=/LoadCredential=/' "$tmp/nova-guard.service" >"$tmp/tls.service"
if grep -q '^LoadCredential=' "$tmp/tls.service" \
    && [[ -z "$(systemd-analyze verify "$tmp/tls.service" 2>&1)" ]]; then
    ok "systemd: the TLS variant (LoadCredential=) verifies clean"
else fail "systemd: the TLS variant does not verify: $(systemd-analyze verify "$tmp/tls.service" 2>&1)"; fi

# ...and verify does flag a broken unit, so "clean" above means something.
sed 's/^ProtectSystem=strict$/ProtectSystem=bogus/' "$tmp/nova-guard.service" >"$tmp/broken.service"
if [[ -n "$(systemd-analyze verify "$tmp/broken.service" 2>&1)" ]]; then
    ok "systemd: systemd-analyze verify flags a bad value"
else fail "systemd: systemd-analyze verify accepted ProtectSystem=bogus"; fi

out="$(systemd-analyze security --offline=yes --threshold=15 "$tmp/nova-guard.service" 2>&1)"; rc=$?
score="$(grep -o 'Overall exposure level for nova-guard.service: [0-9.]* [A-Z]*' <<<"$out")"
if [[ $rc == 0 ]]; then ok "systemd: sandbox exposure at most 1.5 ($score)"
else fail "systemd: sandbox exposure over 1.5 ($score)"; fi

for directive in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict \
    ProtectHome=yes PrivateTmp=yes PrivateDevices=yes CapabilityBoundingSet= \
    AmbientCapabilities= RestrictSUIDSGID=yes MemoryDenyWriteExecute=yes \
    "SystemCallFilter=@system-service" "EnvironmentFile=/etc/nova-guard/nova-guard.env" \
    "ExecStart=/usr/local/bin/nova-guard" "ExecStartPre=/usr/local/bin/nova-guard --check-config" \
    RestartPreventExitStatus=2 KillSignal=SIGTERM Type=notify NotifyAccess=main \
    'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure; do
    if grep -qxF -- "$directive" "$unit"; then ok "systemd: unit has $directive"
    else fail "systemd: unit lacks $directive"; fi
done

# The watchdog: set, and long enough that a ping every half of it is no load.
watchdog="$(sed -n 's/^WatchdogSec=\([0-9]*\)s$/\1/p' "$unit")"
if [[ -n "$watchdog" && $watchdog -ge 2 ]]; then ok "systemd: WatchdogSec=${watchdog}s"
else fail "systemd: WatchdogSec '$watchdog' (want whole seconds, at least 2)"; fi

# TimeoutStopSec leaves the drain its grace period.
grace="$(sed -n 's/^NOVA_GUARD_SHUTDOWN_GRACE=\([0-9]*\)s$/\1/p' "$envfile")"
stop="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")"
if [[ -n "$grace" && -n "$stop" && $stop -gt $grace ]]; then
    ok "systemd: TimeoutStopSec ${stop}s is longer than the ${grace}s shutdown grace"
else fail "systemd: TimeoutStopSec '$stop' vs NOVA_GUARD_SHUTDOWN_GRACE '$grace'"; fi

# The environment file, read as systemd reads it (KEY=VALUE lines, # comments).
mapfile -t vars < <(grep -E '^[A-Z_]+=' "$envfile")
out="$(env -i PATH=/usr/bin:/bin "${vars[@]}" "$bin" --check-config 2>&1)"; rc=$?
if [[ $rc == 0 ]]; then ok "systemd: nova-guard.env passes --check-config"
else fail "systemd: nova-guard.env fails --check-config: $out"; fi
if grep -q 'warning' <<<"$out"; then fail "systemd: nova-guard.env has unknown variables: $out"
else ok "systemd: nova-guard.env names only known variables"; fi
# ...and the commented-out ones are known to nova-guard or noted.
while read -r var; do
    if "$bin" --help | grep -q "^  $var "; then ok "systemd: commented $var is a nova-guard variable"
    else echo "note systemd: $var is not known to this nova-guard build"; fi
done < <(sed -n 's/^#\(NOVA_GUARD_[A-Z_]*\)=.*/\1/p' "$envfile")
