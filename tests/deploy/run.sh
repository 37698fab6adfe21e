#!/usr/bin/env bash
# Tests of the deployment examples (deploy/) and of the operator guide
# (docs/operations.md):
#
#   tests/deploy/run.sh [systemd] [kubernetes] [rollout] [container] [haproxy] [apache] [dev] [docs]
#
# (all of them by default). Installs what it needs when it is missing:
# Debian packages (systemd, haproxy, apache2, openssl; needs root) and a
# Python venv with pinned packages in tests/deploy/.venv. The HAProxy and
# Apache end-to-end tests, the sidecar rollout and deploy/dev/run itself run
# the real Nova of deploy/dev/
# (its venv is set up by deploy/dev/setup-venv.sh).
# Everything listens on 127.0.0.1 only.
#
# Environment: NOVA_GUARD_BIN (a nova-guard binary to test instead of
# building one), CARGO_TARGET_DIR.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
parts=("$@")
[[ ${#parts[@]} == 0 ]] && parts=(systemd kubernetes rollout container haproxy apache dev docs)

say() { printf '== deploy: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- what the tests need ------------------------------------------------------
# shellcheck source=../../scripts/need-deb.sh
source "$root/scripts/need-deb.sh"
need() { need_deb "$@" || die "cannot go on without $2"; }

venv="$here/.venv"
ensure_venv() {
    local lock="$here/requirements.lock" stamp
    stamp="$(sha256sum "$lock" | cut -d' ' -f1)"
    if [[ -x "$venv/bin/python" && "$(cat "$venv/.lock-sha256" 2>/dev/null)" == "$stamp" ]]; then
        return 0
    fi
    say "creating $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$lock" </dev/null \
        || die "pip install -r $lock failed"
    echo "$stamp" >"$venv/.lock-sha256"
}

if [[ -n "${NOVA_GUARD_BIN:-}" ]]; then
    bin="$NOVA_GUARD_BIN"
    # The parts get it as an argument; the nova-guards they start would log
    # it as an unknown NOVA_GUARD_ variable.
    unset NOVA_GUARD_BIN
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
    say "cargo build --locked"
    (cd "$root" && cargo build --locked -q) || die "cargo build failed"
    bin="$CARGO_TARGET_DIR/debug/nova-guard"
fi
[[ -x "$bin" ]] || die "no nova-guard binary at $bin"

# --- the parts -----------------------------------------------------------------
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
run_part() {
    local name="$1" started=$SECONDS
    shift
    say "$name"
    "$@" 2>&1 | tee -a "$results"
    local rc=${PIPESTATUS[0]}
    if [[ $rc != 0 ]] && ! grep -q '^FAIL' "$results"; then
        echo "FAIL $name: exited $rc" | tee -a "$results"
    fi
    say "$name: $((SECONDS - started)) s"
}

for part in "${parts[@]}"; do
    case "$part" in
    systemd)
        need systemd-analyze systemd
        run_part systemd "$here/systemd.sh" "$root" "$bin" ;;
    kubernetes)
        ensure_venv
        run_part kubernetes "$venv/bin/python" "$here/k8s_validate.py" "$root" "$bin" ;;
    rollout)
        run_part rollout "$here/rollout.sh" "$root" "$bin" ;;
    container)
        ensure_venv
        need readelf binutils
        need musl-gcc musl-tools
        run_part container "$here/container.sh" "$root" "$venv" "$bin" ;;
    haproxy)
        need haproxy haproxy
        need openssl openssl
        need curl curl
        run_part haproxy "$here/with_nova.sh" haproxy "$root" "$bin" ;;
    apache)
        need /usr/sbin/apache2 apache2
        need /usr/lib/apache2/modules/mod_proxy_uwsgi.so libapache2-mod-proxy-uwsgi
        run_part apache "$here/with_nova.sh" apache "$root" "$bin" ;;
    dev)
        need curl curl
        run_part dev python3 "$here/dev_run.py" "$root" "$bin" ;;
    docs)
        run_part docs python3 "$here/docs_check.py" "$root" "$bin" ;;
    *) die "unknown part $part (systemd kubernetes rollout container haproxy apache dev docs)" ;;
    esac
done

passed="$(grep -c '^ok ' "$results")"
failed="$(grep -c '^FAIL ' "$results")"
if [[ $failed != 0 ]]; then
    echo
    grep '^FAIL ' "$results"
fi
echo
echo "deploy: $passed passed, $failed failed"
[[ $failed == 0 && $passed != 0 ]]
