# Shared by scripts/run and scripts/test: make .venv and install calltrack into it.
# Works on a machine with only a system Python: it finds Python >= 3.11, installs Debian's
# venv module when it is missing (as root), and reinstalls only when pyproject.toml changes.

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
        { as_root apt-get update -q >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

ensure_venv() {  # $1: the extras to install ("" or "test")
    local extras="${1:-}" python stamp want
    python="$(find_python)" || {
        echo "calltrack needs Python 3.11 or newer; installing Debian's python3" >&2
        apt_install python3 python3-venv python3-pip || { echo "install Python 3.11+ and run this again" >&2; exit 1; }
        python="$(find_python)" || { echo "no Python 3.11+ found" >&2; exit 1; }
    }
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
        rm -rf .venv
        if ! "$python" -m venv .venv 2>/dev/null; then
            rm -rf .venv
            apt_install python3-venv || true
            "$python" -m venv .venv
        fi
    fi
    stamp=".venv/.calltrack-installed"
    want="$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras}"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] &&
        ! { [ "$extras" = "" ] && grep -q -- "^$(cat pyproject.toml | sha256sum | cut -c1-16)-" "$stamp" 2>/dev/null; }; then
        echo "installing calltrack${extras:+[$extras]} into .venv …" >&2
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
        .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
        echo "$want" >"$stamp"
    fi
}
