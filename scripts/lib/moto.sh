# Starts moto's server mode (an AWS API emulator from PyPI, in a venv cached under
# ~/.cache/regstack-tools) on a loopback port, for the SES and SNS backends (sourced by
# scripts/test). Exports REGSTACK_TEST_MOTO_URL. Tests read what was sent from its
# /moto-api/data.json and its request recording (on from the start, so a test can check
# request details moto does not store, such as SNS message attributes).

start_moto() {
  local venv
  venv=$(py_venv py-moto-5.2.5 moto.server 'moto[server]==5.2.5') || return 1
  MOTO_TEST_DIR=$(mktemp -d /tmp/regstack-moto.XXXXXX)
  MOTO_TEST_PORT=$(free_port)
  (cd "$MOTO_TEST_DIR" && MOTO_ENABLE_RECORDING=True exec "$venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_TEST_PORT") >"$MOTO_TEST_DIR/server.log" 2>&1 &
  MOTO_TEST_PID=$!
  wait_ready "$MOTO_TEST_PID" "$MOTO_TEST_DIR/server.log" \
    curl -sf -o /dev/null "http://127.0.0.1:$MOTO_TEST_PORT/moto-api/data.json" || return 1
  export REGSTACK_TEST_MOTO_URL="http://127.0.0.1:$MOTO_TEST_PORT"
  echo "moto (SES, SNS) running on $REGSTACK_TEST_MOTO_URL"
}

stop_moto() {
  [ -n "${MOTO_TEST_PID:-}" ] || return 0
  kill "$MOTO_TEST_PID" 2>/dev/null || true
  wait "$MOTO_TEST_PID" 2>/dev/null || true
  rm -rf "$MOTO_TEST_DIR"
  MOTO_TEST_PID=
}
