# The edge toolchain (shared/edge-toolchain.md): wrangler and Node 22 from npm, wasm-opt from
# npm binaryen (and, for the tests, oidc-provider), worker-build and the wasm-bindgen CLI from crates.io (cached under
# ~/.cache/regstack-tools). Sourced by scripts/test and scripts/edge-build.

EDGE_TOOLS="$HOME/.cache/regstack-tools"
WORKER_BUILD_VERSION=0.8.7

install_edge_tools() {
  if ! PATH="$PWD/node_modules/.bin:$PATH" node_modules/.bin/wrangler --version >/dev/null 2>&1 || ! node_modules/.bin/wasm-opt --version >/dev/null 2>&1 \
    || [ ! -f node_modules/oidc-provider/package.json ]; then
    # Not `npm ci`: the lock cannot record workerd's other-platform packages (edge-toolchain.md).
    npm install --no-audit --no-fund >&2
  fi
  local wbg
  wbg=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
  if ! "$EDGE_TOOLS/wasm-bindgen-$wbg/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $wbg"; then
    # Not --locked: a yanked transitive pin makes the locked install fail.
    # --debug: a third of the build time; the tools are fast enough unoptimised.
    cargo install --debug --target-dir "$EDGE_TOOLS/build" --root "$EDGE_TOOLS/wasm-bindgen-$wbg" \
      wasm-bindgen-cli --version "$wbg" >&2
  fi
  if ! "$EDGE_TOOLS/worker-build-$WORKER_BUILD_VERSION/bin/worker-build" --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
    cargo install --debug --target-dir "$EDGE_TOOLS/build" --root "$EDGE_TOOLS/worker-build-$WORKER_BUILD_VERSION" \
      worker-build --version "$WORKER_BUILD_VERSION" --locked >&2
  fi
  # One build directory for both installs, so the dependencies they share compile once.
  rm -rf "$EDGE_TOOLS/build"
  export PATH="$PWD/node_modules/.bin:$EDGE_TOOLS/wasm-bindgen-$wbg/bin:$EDGE_TOOLS/worker-build-$WORKER_BUILD_VERSION/bin:$PATH"
  export WASM_BINDGEN_BIN="$EDGE_TOOLS/wasm-bindgen-$wbg/bin/wasm-bindgen"
  export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
  export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
  export WRANGLER_SEND_METRICS=false
}

# build_worker: edge/build/index.js and index_bg.wasm, optimised (opt-level z, fat LTO, wasm-opt).
# It bundles the suite's static-file fixture, which the pages scenarios fetch at the edge.
build_worker() {
  (cd edge && REGSTACK_EDGE_STATIC_DIRS='["../tests/fixtures/static"]' worker-build --release)
}

# start_wrangler PORT STATE LOG [ARGS...]: `wrangler dev` on 127.0.0.1:PORT with local D1 and
# Durable Object state under STATE, in its own process group (so the whole tree stops with
# `stop_wrangler`), waiting until /healthz answers. Sets WRANGLER_PID. It runs
# scripts/wrangler-dev, the launcher the conformance harness uses too.
start_wrangler() {
  local port=$1 state=$2 log=$3
  shift 3
  setsid scripts/wrangler-dev "$port" "$state" "$@" >"$log" 2>&1 </dev/null &
  WRANGLER_PID=$!
  for _ in $(seq 240); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    kill -0 "$WRANGLER_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "wrangler dev did not answer on port $port; its log:"; tail -40 "$log"
  return 1
}

stop_wrangler() {
  [ -n "${WRANGLER_PID:-}" ] || return 0
  kill -TERM -- "-$WRANGLER_PID" 2>/dev/null || true
  wait "$WRANGLER_PID" 2>/dev/null || true
  WRANGLER_PID=
}

# Local-only settings for `wrangler dev`, in the git-ignored .dev.vars (each added only if
# missing): a random JWT secret, so a fresh checkout runs with zero config and sessions survive
# a reload, and console delivery that prints links and codes to scrape.
ensure_dev_vars() {
  # A hand-edited file may lack its final newline; appending must not join onto that line.
  if [ -s .dev.vars ] && [ -n "$(tail -c1 .dev.vars)" ]; then echo >> .dev.vars; fi
  grep -qs '^REGSTACK_JWT_SECRET=' .dev.vars ||
    echo "REGSTACK_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')" >> .dev.vars
  local name
  for name in REGSTACK_EMAIL__LOG_BODIES REGSTACK_SMS__LOG_BODIES; do
    grep -qs "^$name=" .dev.vars || echo "$name=true" >> .dev.vars
  done
}
