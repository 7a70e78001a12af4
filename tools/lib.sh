# Shared by the tools/ scripts: installs what Tidings needs from Debian when it is missing.
# Sourced, not run.

# Debian packages the build and the tests need.
TIDINGS_DEBIAN_PACKAGES=(libsqlite3-dev liblz4-dev libhiredis-dev redis-server)

tidings_root() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}

# Installs the Debian packages that are not installed yet (apt-get, with sudo when not root).
tidings_install_packages() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "tidings: installing ${missing[*]} with apt-get" >&2
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

tidings_require_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        echo "tidings: swift is not on PATH; install Swift 6.1 or newer (https://swift.org/install)" >&2
        exit 1
    fi
}

# Debian packages the browser tests of the pages need: a headless Chromium and its WebDriver.
TIDINGS_BROWSER_PACKAGES=(chromium chromium-driver)

# Python modules the protocol and browser tests and the tools use, installed from PyPI when missing.
TIDINGS_PYTHON_MODULES=(pytest:pytest requests:requests websockets:websockets jsonschema:jsonschema selenium:selenium yaml:pyyaml)

tidings_install_python() {
    local missing=()
    for entry in "$@"; do
        local module=${entry%%:*} package=${entry#*:}
        python3 -c "import $module" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "tidings: installing ${missing[*]} with pip" >&2
    python3 -m pip install --quiet --disable-pip-version-check "${missing[@]}"
}
