# Sourced by scripts/test and tests/deploy/run.sh:
#   need_deb COMMAND-OR-PATH PACKAGE
# installs the Debian package PACKAGE with apt-get when the command (or the
# absolute PATH) is missing. Returns non-zero, saying why on stderr, when it
# cannot (not root, apt-get failed, still missing after the install).
need_deb_apt_updated=""
have() { [[ $1 == /* ]] && [[ -e $1 ]] || command -v "$1" >/dev/null 2>&1; }
need_deb() {
    have "$1" && return 0
    if [[ $(id -u) != 0 ]]; then
        echo "$1 is missing: install the Debian package $2 (needs root)" >&2
        return 1
    fi
    if [[ -z $need_deb_apt_updated ]]; then
        echo "== apt-get update" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
            || { echo "apt-get update failed" >&2; return 1; }
        need_deb_apt_updated=1
    fi
    echo "== installing $2" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" \
        </dev/null >/dev/null || { echo "apt-get install $2 failed" >&2; return 1; }
    have "$1" || { echo "$2 installed but $1 is still missing" >&2; return 1; }
}
