# Shared by the tools/ scripts: installs what Tidings needs from Debian when it is missing.
# Sourced, not run.

# Debian packages the build and the tests need.
TIDINGS_DEBIAN_PACKAGES=(libsqlite3-dev liblz4-dev libhiredis-dev zlib1g-dev redis-server)

# The PostgreSQL engine's tests and `tools/serve --postgres` start a throwaway cluster of this.
TIDINGS_POSTGRES_PACKAGES=(postgresql)
TIDINGS_POSTGRES_BIN=/usr/lib/postgresql/15/bin

# Starts a throwaway PostgreSQL cluster in a new temporary folder on a free loopback port, run
# as the `postgres` user (PostgreSQL refuses to run as root). Sets TIDINGS_POSTGRES_DIR (stop it
# with tidings_stop_postgres "$TIDINGS_POSTGRES_DIR") and TIDINGS_POSTGRES_ADMIN_URL.
#   tidings_start_postgres [fast]   fast: fsync off, for tests
tidings_start_postgres() {
    local dir port settings
    dir=$(mktemp -d /tmp/tidings-postgres-XXXXXX)
    chown postgres:postgres "$dir"
    runuser -u postgres -- "$TIDINGS_POSTGRES_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    settings="-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c shared_buffers=256MB"
    [ "${1:-}" = fast ] && settings="$settings -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    runuser -u postgres -- "$TIDINGS_POSTGRES_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$settings" start >/dev/null
    TIDINGS_POSTGRES_DIR=$dir
    TIDINGS_POSTGRES_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
}

tidings_stop_postgres() {
    local dir=$1
    [ -d "$dir/data" ] || return 0
    runuser -u postgres -- "$TIDINGS_POSTGRES_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

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

# The JavaScript client runs on Node 20 or newer (its WebSocket); Debian's own nodejs is older,
# so Node is not installed here but asked for.
tidings_require_node() {
    local version
    version=$(node --version 2>/dev/null || true)
    local major=${version#v}
    major=${major%%.*}
    if [ -z "$version" ] || [ "$major" -lt 20 ]; then
        echo "tidings: the JavaScript client's tests need Node 20 or newer (node --version: ${version:-none});" \
            "install it from https://nodejs.org/en/download or NodeSource's Debian packages" >&2
        exit 1
    fi
}

# Debian packages the browser tests of the pages need: a headless Chromium and its WebDriver.
TIDINGS_BROWSER_PACKAGES=(chromium chromium-driver)

# The client libraries' checks: the JavaScript types (Node itself comes with the machine).
TIDINGS_CLIENT_PACKAGES=(node-typescript)

# Python modules the protocol and browser tests and the tools use, installed from PyPI when missing.
TIDINGS_PYTHON_MODULES=(pytest:pytest requests:requests websockets:websockets jsonschema:jsonschema selenium:selenium yaml:pyyaml psycopg:psycopg[binary] httpx:httpx mypy:mypy fastapi:fastapi)

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
