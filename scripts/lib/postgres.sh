# Starts a throw-away PostgreSQL server on a loopback port in a temp dir (sourced by
# scripts/test). Uses the machine's server binaries, installing Debian's postgresql if there
# are none. Exports REGSTACK_TEST_POSTGRES_URL and PG_TEST_PORT; stop_postgres undoes it all.

pg_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
  local bin
  bin=$(pg_bin_dir)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "installing PostgreSQL from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(pg_bin_dir)
  fi
  PG_TEST_DIR=$(mktemp -d /tmp/regstack-pg.XXXXXX)
  chmod 755 "$PG_TEST_DIR"
  PG_TEST_PORT=$(free_port)
  local as_pg=()
  # The server refuses to run as root.
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_TEST_DIR"
    local runuser
    runuser=$(PATH="$PATH:/usr/sbin:/sbin" command -v runuser) || { echo "runuser not found" >&2; return 1; }
    as_pg=("$runuser" -u postgres --)
  fi
  "${as_pg[@]}" "$bin/initdb" -D "$PG_TEST_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_TEST_DIR/initdb.log" 2>&1 \
    || { cat "$PG_TEST_DIR/initdb.log"; return 1; }
  "${as_pg[@]}" "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
    -o "-p $PG_TEST_PORT -c listen_addresses=127.0.0.1 -k $PG_TEST_DIR -c max_connections=300 -c fsync=off" start >/dev/null \
    || { cat "$PG_TEST_DIR/server.log"; return 1; }
  PG_CTL="$bin/pg_ctl"
  PG_AS=("${as_pg[@]}")
  export PG_TEST_PORT
  export PG_CREATEDB="$bin/createdb"
  export REGSTACK_TEST_PG_BIN="$bin"
  export REGSTACK_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PG_TEST_PORT/postgres"
  echo "PostgreSQL running on 127.0.0.1:$PG_TEST_PORT ($PG_TEST_DIR)"
}

stop_postgres() {
  [ -n "${PG_TEST_DIR:-}" ] || return 0
  if [ -n "${PG_CTL:-}" ]; then
    "${PG_AS[@]}" "$PG_CTL" -D "$PG_TEST_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_TEST_DIR"
  PG_TEST_DIR=
}
