# Helpers shared by the service launchers (sourced by scripts/test).

# free_port: a loopback TCP port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready PID LOG CMD...: polls CMD every 0.2 s, for up to 30 s, until it succeeds; fails
# with the server's LOG if PID exits first or time runs out.
wait_ready() {
  local pid=$1 log=$2
  shift 2
  for _ in $(seq 150); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; return 1; }
    sleep 0.2
  done
  echo "not ready after 30 s: $*"
  cat "$log"
  return 1
}

# py_venv NAME MODULE SPEC: a venv under ~/.cache/regstack-tools/NAME with SPEC installed from
# PyPI (reused when MODULE already imports); prints its path.
py_venv() {
  local venv="$HOME/.cache/regstack-tools/$1"
  if ! "$venv/bin/python" -c "import $2" 2>/dev/null; then
    rm -rf "$venv"
    # A failed install must fail the caller's step, not a test much later.
    python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q "$3" >&2 || { rm -rf "$venv"; return 1; }
  fi
  echo "$venv"
}

# openapi-spec-validator from PyPI (in a cached venv), for the conformance scenario that checks
# GET {api_prefix}/openapi.json against the OpenAPI 3.1 schema.
install_openapi_validator() {
  local venv
  venv=$(py_venv py-openapi-spec-validator-0.9.0 openapi_spec_validator 'openapi-spec-validator==0.9.0') || return 1
  export REGSTACK_TEST_OPENAPI_PYTHON="$venv/bin/python"
}

