# Sourced by the other scripts: makes sure a PostgreSQL answers and exports DATABASE_URL.
#
# 1. DATABASE_URL, if set and answering, is used as it is.
# 2. Otherwise a private cluster is started under ./.pgdata (port $PASAR_PG_PORT, default 55432)
#    with the system's PostgreSQL server binaries (as the `postgres` user when run as root,
#    because initdb refuses root). It is tuned for development: fsync off.
# 3. Otherwise it says what to install.

pg_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && { echo "$found"; return 0; }
  return 1
}

pg_answers() {
  local isready
  isready=$(pg_bin pg_isready) || return 1
  "$isready" -q -d "$1" -t 3
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    if pg_answers "$DATABASE_URL"; then
      echo "pasar: using PostgreSQL at DATABASE_URL" >&2
      return 0
    fi
    echo "pasar: DATABASE_URL does not answer; starting a private PostgreSQL instead" >&2
  fi
  local root port data initdb pgctl runas=()
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  port=${PASAR_PG_PORT:-55432}
  data="$root/.pgdata"
  if ! initdb=$(pg_bin initdb) || ! pgctl=$(pg_bin pg_ctl); then
    cat >&2 <<'MSG'
pasar: no PostgreSQL found. Either set DATABASE_URL to a running PostgreSQL (13 or newer),
or install the server binaries so a private one can be started here:
    sudo apt-get install postgresql        # Debian/Ubuntu (initdb, pg_ctl, pg_isready)
MSG
    return 1
  fi
  if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      echo "pasar: running as root and there is no 'postgres' user to run PostgreSQL as (initdb refuses root): create one with 'useradd -r postgres' or run as another user" >&2
      return 1
    fi
    runas=(runuser -u postgres --)
    # The postgres user must reach the data directory; a checkout under /root it cannot.
    if ! runuser -u postgres -- test -x "$root"; then
      data=/var/tmp/pasar-pgdata
    fi
    mkdir -p "$data"
    chown postgres "$data"
    chmod 700 "$data"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    echo "pasar: creating a private PostgreSQL cluster in $data" >&2
    "${runas[@]}" "$initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null || return 1
  fi
  local url="postgres://postgres@127.0.0.1:$port/postgres"
  if ! pg_answers "$url"; then
    echo "pasar: starting the private PostgreSQL on port $port" >&2
    "${runas[@]}" "$pgctl" -D "$data" -l "$data/server.log" -w -t 30 start \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null \
      || { echo "pasar: PostgreSQL did not start; see $data/server.log" >&2; return 1; }
  fi
  export DATABASE_URL="$url"
}
