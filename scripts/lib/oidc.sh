# Starts a real OpenID Connect provider (`oidc-provider` from npm, installed with the edge
# tools) on a free loopback port, configured by tests/oidc/provider.mjs (sourced by
# scripts/test). Exports REGSTACK_TEST_OIDC_ISSUER.

start_oidc_provider() {
  local port log
  port=$(free_port)
  log=$(mktemp /tmp/regstack-oidc.XXXXXX)
  node tests/oidc/provider.mjs "$port" >"$log" 2>&1 &
  OIDC_PID=$!
  OIDC_LOG=$log
  wait_ready "$OIDC_PID" "$log" curl -sf -o /dev/null "http://127.0.0.1:$port/.well-known/openid-configuration" || return 1
  export REGSTACK_TEST_OIDC_ISSUER="http://127.0.0.1:$port"
  echo "OpenID Connect provider (oidc-provider) at $REGSTACK_TEST_OIDC_ISSUER"
}

stop_oidc_provider() {
  [ -n "${OIDC_PID:-}" ] || return 0
  kill "$OIDC_PID" 2>/dev/null || true
  wait "$OIDC_PID" 2>/dev/null || true
  rm -f "$OIDC_LOG"
  OIDC_PID=
}
