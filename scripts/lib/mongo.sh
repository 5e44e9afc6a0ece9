# Starts SecantusDB (MongoDB wire protocol, from PyPI, in a venv cached under
# ~/.cache/regstack-tools) on a loopback port (sourced by scripts/test). Exports
# REGSTACK_TEST_MONGO_URL.

start_mongo() {
  local venv
  venv=$(py_venv py-secantusdb-0.7.0b3 secantus 'SecantusDB==0.7.0b3') || return 1
  MONGO_TEST_DIR=$(mktemp -d /tmp/regstack-mongo.XXXXXX)
  MONGO_TEST_PORT=$(free_port)
  "$venv/bin/python" scripts/lib/run_secantus.py "$MONGO_TEST_PORT" >"$MONGO_TEST_DIR/server.log" 2>&1 &
  MONGO_TEST_PID=$!
  wait_ready "$MONGO_TEST_PID" "$MONGO_TEST_DIR/server.log" grep -q listening "$MONGO_TEST_DIR/server.log" || return 1
  export REGSTACK_TEST_MONGO_URL="mongodb://127.0.0.1:$MONGO_TEST_PORT/?directConnection=true"
  export REGSTACK_TEST_SECANTUS_PYTHON="$venv/bin/python"
  echo "SecantusDB running on 127.0.0.1:$MONGO_TEST_PORT"
}

stop_mongo() {
  [ -n "${MONGO_TEST_PID:-}" ] || return 0
  kill "$MONGO_TEST_PID" 2>/dev/null || true
  wait "$MONGO_TEST_PID" 2>/dev/null || true
  rm -rf "$MONGO_TEST_DIR"
  MONGO_TEST_PID=
}
