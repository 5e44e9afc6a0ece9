# Starts a real SMTP server (aiosmtpd from PyPI, in a venv cached under
# ~/.cache/regstack-tools) that stores every message it receives in a Maildir (sourced by
# scripts/test). Exports REGSTACK_TEST_SMTP_PORT and REGSTACK_TEST_MAILDIR.

start_smtp_sink() {
  local venv
  venv=$(py_venv py-aiosmtpd-1.4.6 aiosmtpd 'aiosmtpd==1.4.6')
  SMTP_TEST_DIR=$(mktemp -d /tmp/regstack-smtp.XXXXXX)
  REGSTACK_TEST_SMTP_PORT=$(free_port)
  REGSTACK_TEST_MAILDIR="$SMTP_TEST_DIR/maildir"
  "$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$REGSTACK_TEST_SMTP_PORT" \
    -c aiosmtpd.handlers.Mailbox "$REGSTACK_TEST_MAILDIR" >"$SMTP_TEST_DIR/smtp.log" 2>&1 &
  SMTP_TEST_PID=$!
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $REGSTACK_TEST_SMTP_PORT), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
  export REGSTACK_TEST_SMTP_PORT REGSTACK_TEST_MAILDIR
  echo "SMTP sink on 127.0.0.1:$REGSTACK_TEST_SMTP_PORT -> $REGSTACK_TEST_MAILDIR"
}

stop_smtp_sink() {
  [ -n "${SMTP_TEST_PID:-}" ] || return 0
  kill "$SMTP_TEST_PID" 2>/dev/null || true
  wait "$SMTP_TEST_PID" 2>/dev/null || true
  rm -rf "$SMTP_TEST_DIR"
  SMTP_TEST_PID=
}
