#!/usr/bin/env bash
# cert-manager's controller for the cluster tests, built from source through the Go module proxy.
#
#   bash tests/cluster/cert-manager.sh build   build once (cached) the controller at CERT_MANAGER_VERSION
#   KUBECONFIG=<path> bash tests/cluster/cert-manager.sh up
#                                               start it against that cluster (building first if needed),
#                                               create its namespace, wait until its informers have synced;
#                                               prints MLGIT_TEST_CERT_MANAGER_NAMESPACE=<ns> and
#                                               MLGIT_TEST_CERT_MANAGER_LOG=<file>, then READY=1 last
#   bash tests/cluster/cert-manager.sh down    stop exactly the process `up` started (its pid file)
# With MLGIT_CERT_MANAGER_NO_BUILD=1, `up` fails at once (exit 3) instead of building a missing binary: the
# test fixture's way, within a test's time limit (tests/run.sh runs `build` before pytest).
#
# Which main: cert-manager's own cmd/controller is a module of its own (declared as
# github.com/cert-manager/cert-manager/controller-binary, in a folder named cmd/controller, with a replace
# to ../../): the proxy cannot serve it (404). The root module it wraps is served, and all of cert-manager's
# controllers live there. tests/cluster/cert-manager/main.go, our own code, imports the root module at the
# pinned version and starts its controllers (CA and self-signed issuers, Certificates, ingress-shim) the way
# cert-manager's controller does. A throwaway module (go.mod written here, `go mod tidy`) is generated under
# $MLGIT_CERT_MANAGER_CACHE (default /var/cache/mlgit/cert-manager)/<version>/src, with Go's module and
# build caches under $MLGIT_CERT_MANAGER_CACHE/go, so nothing in the repository pins its dependencies. The
# binary is cached per version and per hash of main.go and the link flags: changing either rebuilds.
# Running state (log, pid file, the kubeconfig it was started with) is in $MLGIT_CERT_MANAGER_STATE
# (default /tmp/mlgit-cert-manager). Leader election is off (one controller per test cluster), and it
# uses the identity of the kubeconfig it is given (the test cluster's admin).
set -euo pipefail

# The same release as the cert-manager CRDs tests/cluster/crds.sh installs (its CERT_MANAGER_VERSION).
CERT_MANAGER_VERSION=v1.21.2
GO_MIN_MINOR=26 # cert-manager v1.21's go.mod says go 1.26.0

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE=${MLGIT_CERT_MANAGER_CACHE:-/var/cache/mlgit/cert-manager}
STATE=${MLGIT_CERT_MANAGER_STATE:-/tmp/mlgit-cert-manager}
NAMESPACE=${MLGIT_CERT_MANAGER_NAMESPACE:-cert-manager} # --cluster-resource-namespace: a CA ClusterIssuer's Secret
READY_ADDRESS=${MLGIT_CERT_MANAGER_READY_ADDRESS:-127.0.0.1:16480}
MODULE=github.com/cert-manager/cert-manager
MAIN="$HERE/cert-manager/main.go"
# The version cert-manager reports (its logs, its User-Agent) is the release it is built from.
LDFLAGS="-s -w -X $MODULE/pkg/util.AppVersion=$CERT_MANAGER_VERSION"
KEY=$( { cat "$MAIN"; echo "$LDFLAGS"; } | sha256sum | cut -c1-12)
SRC="$CACHE/$CERT_MANAGER_VERSION/src"
BIN="$CACHE/$CERT_MANAGER_VERSION/bin/controller-$KEY"
PID_FILE="$STATE/controller.pid"
LOG_FILE="$STATE/controller.log"

log() { printf '[cert-manager %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[cert-manager] ERROR: %s\n' "$*" >&2; exit 1; }
tail_log() { [[ -f $1 ]] && { log "last lines of $1:"; tail -n 30 "$1" >&2; }; return 0; }

go_env() {
  command -v go >/dev/null || die "go not found: cert-manager's controller is built from source with Go >= 1.$GO_MIN_MINOR
  (install Go; tests/cluster/test_tls.py needs it)"
  # GOTOOLCHAIN=local: never let the go command fetch another toolchain behind our back.
  export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  local version
  version=$(go env GOVERSION)
  if ! [[ $version =~ ^go1\.([0-9]+) ]] || ((BASH_REMATCH[1] < GO_MIN_MINOR)); then
    die "$(command -v go) is $version: cert-manager $CERT_MANAGER_VERSION needs Go >= 1.$GO_MIN_MINOR"
  fi
  mkdir -p "$GOMODCACHE" "$GOCACHE"
}

build() {
  [[ -x $BIN ]] && return
  mkdir -p "$CACHE" || die "cannot write $CACHE (set MLGIT_CERT_MANAGER_CACHE to a writable folder)"
  go_env
  # One build at a time per machine (tests/run.sh and a test session's fixture may both ask).
  exec 8>"$CACHE/.lock"
  flock -w 1800 8 || die "gave up waiting for $CACHE/.lock"
  [[ -x $BIN ]] && { exec 8>&-; return; } # built by whoever held the lock
  local start build_log="$CACHE/$CERT_MANAGER_VERSION/build.log"
  start=$(date +%s)
  mkdir -p "$SRC" "$(dirname "$BIN")"
  : >"$build_log"
  log "building cert-manager $CERT_MANAGER_VERSION's controllers in $SRC (cold: about 10 min on 2 cores)"
  rm -f "$SRC/go.mod" "$SRC/go.sum"
  printf 'module mlgit.local/cert-manager/controller\n\ngo 1.%s.0\n\nrequire %s %s\n' \
    "$GO_MIN_MINOR" "$MODULE" "$CERT_MANAGER_VERSION" >"$SRC/go.mod"
  cp "$MAIN" "$SRC/main.go"
  (cd "$SRC" && go mod tidy) >>"$build_log" 2>&1 || { tail_log "$build_log"; die "go mod tidy failed (log: $build_log)"; }
  # tidy must not have moved the pin (a newer requirement elsewhere in the graph would): say so if it did.
  [[ "$(cd "$SRC" && go list -m "$MODULE")" == "$MODULE $CERT_MANAGER_VERSION" ]] \
    || die "go mod tidy selected $(cd "$SRC" && go list -m "$MODULE"), not $CERT_MANAGER_VERSION"
  (cd "$SRC" && go build -trimpath -ldflags "$LDFLAGS" -o "$BIN.tmp" .) >>"$build_log" 2>&1 || { tail_log "$build_log"; die "go build failed (log: $build_log)"; }
  mv "$BIN.tmp" "$BIN"
  # Binaries of an older main.go are never started again (a running one keeps its deleted file).
  find "$(dirname "$BIN")" -name 'controller-*' ! -name "$(basename "$BIN")" -delete
  log "built $BIN in $(($(date +%s) - start)) s"
  exec 8>&- # the lock: not to be inherited by the controller `up` starts next
}

pid() { [[ -s $PID_FILE ]] && cat "$PID_FILE"; }
alive() { local p; p=$(pid) && kill -0 "$p" 2>/dev/null; }
ready() { curl -fsS --noproxy '*' --max-time 2 "http://$READY_ADDRESS/readyz" >/dev/null 2>&1; }

print_env() {
  echo "MLGIT_TEST_CERT_MANAGER_NAMESPACE=$NAMESPACE"
  echo "MLGIT_TEST_CERT_MANAGER_LOG=$LOG_FILE"
  echo "READY=1"
}

up() {
  [[ -n ${KUBECONFIG:-} && -f $KUBECONFIG ]] || die "set KUBECONFIG to the cluster's kubeconfig (control-plane.sh up prints it)"
  local kubectl=${MLGIT_TEST_KUBECTL:-$(command -v kubectl || true)}
  [[ -x $kubectl ]] || die "kubectl not found (MLGIT_TEST_KUBECTL): it creates cert-manager's namespace"
  mkdir -p "$STATE"
  if alive; then
    # Reused only against the same kubeconfig: one started for another cluster must not serve this one.
    if [[ "$(cat "$STATE/kubeconfig" 2>/dev/null)" == "$KUBECONFIG" ]] && ready; then
      log "already running (pid $(pid), log $LOG_FILE)"
      print_env
      return
    fi
    die "a controller (pid $(pid)) runs for $(cat "$STATE/kubeconfig" 2>/dev/null || echo another cluster) or is not ready: run \`$0 down\` first"
  fi
  if [[ ! -x $BIN && ${MLGIT_CERT_MANAGER_NO_BUILD:-} == 1 ]]; then
    log "ERROR: not built yet ($BIN): run \`bash $0 build\` first (needs Go >= 1.$GO_MIN_MINOR; about 10 min cold)"
    exit 3
  fi
  build
  "$kubectl" --kubeconfig "$KUBECONFIG" get namespace "$NAMESPACE" >/dev/null 2>&1 \
    || "$kubectl" --kubeconfig "$KUBECONFIG" create namespace "$NAMESPACE" >/dev/null \
    || die "cannot create the namespace $NAMESPACE"
  ! ready || die "$READY_ADDRESS already answers /readyz for another process; set MLGIT_CERT_MANAGER_READY_ADDRESS"
  echo "$KUBECONFIG" >"$STATE/kubeconfig"
  # setsid: its own session, so that the end of a test run or a Ctrl-C of the caller does not stop it;
  # 8>&- 9>&-: never inherit a build lock or tests/run.sh's setup lock.
  setsid "$BIN" --kubeconfig "$KUBECONFIG" --cluster-resource-namespace "$NAMESPACE" \
    --ready-address "$READY_ADDRESS" --v 2 </dev/null >>"$LOG_FILE" 2>&1 8>&- 9>&- &
  echo $! >"$PID_FILE"
  local deadline=$(($(date +%s) + 120))
  until ready; do
    alive || { tail_log "$LOG_FILE"; die "the controller exited while starting (log: $LOG_FILE)"; }
    (($(date +%s) < deadline)) || { tail_log "$LOG_FILE"; die "the controller was not ready within 120 s (log: $LOG_FILE)"; }
    sleep 0.5
  done
  log "ready: cert-manager $CERT_MANAGER_VERSION (pid $(pid), namespace $NAMESPACE, log $LOG_FILE)"
  print_env
}

down() {
  local p
  if p=$(pid) && kill -0 "$p" 2>/dev/null; then
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$p" 2>/dev/null || true
    log "stopped the controller (pid $p)"
  else
    log "stopped: nothing was running"
  fi
  rm -f "$PID_FILE" "$STATE/kubeconfig"
}

case ${1:-} in
  build) build ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 build|up|down (up needs KUBECONFIG)" >&2; exit 2 ;;
esac
