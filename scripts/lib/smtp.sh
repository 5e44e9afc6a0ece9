# Starts real SMTP servers (aiosmtpd from PyPI, in a venv cached under ~/.cache/regstack-tools)
# that store every message they receive in a Maildir (sourced by scripts/test): a plain one,
# and one that requires STARTTLS (a certificate from a throw-away CA) and AUTH. Exports
# REGSTACK_TEST_SMTP_PORT, REGSTACK_TEST_MAILDIR, REGSTACK_TEST_SMTP_TLS_PORT and
# REGSTACK_TEST_SMTP_CA (the user is `regstack`, the password `smtp-test-password`).

start_smtp_sink() {
  local venv
  venv=$(py_venv py-aiosmtpd-1.4.6 aiosmtpd 'aiosmtpd==1.4.6') || return 1
  SMTP_TEST_DIR=$(mktemp -d /tmp/regstack-smtp.XXXXXX)
  REGSTACK_TEST_SMTP_PORT=$(free_port)
  REGSTACK_TEST_MAILDIR="$SMTP_TEST_DIR/maildir"
  "$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$REGSTACK_TEST_SMTP_PORT" \
    -c aiosmtpd.handlers.Mailbox "$REGSTACK_TEST_MAILDIR" >"$SMTP_TEST_DIR/smtp.log" 2>&1 &
  SMTP_TEST_PID=$!
  wait_ready "$SMTP_TEST_PID" "$SMTP_TEST_DIR/smtp.log" \
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $REGSTACK_TEST_SMTP_PORT), 0.2)" || return 1
  export REGSTACK_TEST_SMTP_PORT REGSTACK_TEST_MAILDIR
  echo "SMTP sink on 127.0.0.1:$REGSTACK_TEST_SMTP_PORT -> $REGSTACK_TEST_MAILDIR"
  start_smtp_tls_sink "$venv"
}

start_smtp_tls_sink() {
  local venv=$1 d="$SMTP_TEST_DIR/tls"
  mkdir -p "$d"
  # webpki refuses a self-signed CA certificate as the server's own, so: a CA, and a leaf.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=regstack test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/key.pem" -out "$d/leaf.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$d/leaf.ext"
  openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/leaf.ext" -out "$d/cert.pem" 2>/dev/null
  REGSTACK_TEST_SMTP_TLS_PORT=$(free_port)
  "$venv/bin/python" scripts/lib/run_smtp_tls.py "$REGSTACK_TEST_SMTP_TLS_PORT" "$REGSTACK_TEST_MAILDIR" \
    "$d/cert.pem" "$d/key.pem" regstack smtp-test-password >"$d/smtp.log" 2>&1 &
  SMTP_TLS_TEST_PID=$!
  wait_ready "$SMTP_TLS_TEST_PID" "$d/smtp.log" grep -q listening "$d/smtp.log" || return 1
  export REGSTACK_TEST_SMTP_TLS_PORT REGSTACK_TEST_SMTP_CA="$d/ca.pem"
  echo "SMTP sink (STARTTLS, AUTH) on 127.0.0.1:$REGSTACK_TEST_SMTP_TLS_PORT"
}

stop_smtp_sink() {
  [ -n "${SMTP_TEST_PID:-}" ] || return 0
  kill "$SMTP_TEST_PID" ${SMTP_TLS_TEST_PID:-} 2>/dev/null || true
  wait "$SMTP_TEST_PID" ${SMTP_TLS_TEST_PID:-} 2>/dev/null || true
  rm -rf "$SMTP_TEST_DIR"
  SMTP_TEST_PID=
}
