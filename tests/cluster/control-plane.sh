#!/usr/bin/env bash
# A real Kubernetes control plane for the test suite, built from source through the Go module proxy.
#
#   bash tests/cluster/control-plane.sh up      build once (cached), start, wait until ready, install the
#                                               CRDs; the last stdout line is KUBECONFIG=<path>
#   bash tests/cluster/control-plane.sh down    stop exactly the processes `up` started (their pid files)
#   bash tests/cluster/control-plane.sh build   only build (or find cached) the binaries
#   bash tests/cluster/control-plane.sh build-kubelet   also the kubelet of the same release (tests/cluster/kubelet.sh)
#   bash tests/cluster/control-plane.sh kubelet-path    where that kubelet is (built or not)
#   bash tests/cluster/control-plane.sh env     the variables tests read, one NAME=value per line
#
# What runs (plain processes, no kwokctl: every flag is visible here, and `down` knows exactly what to stop):
#   etcd                     at the version Kubernetes pins (its go.mod's go.etcd.io/etcd/client/v3)
#   kube-apiserver           TLS, client certificates, RBAC (Node,RBAC authorizers), default admission plugins
#   kube-controller-manager  every default controller (deployment, replicaset, garbage collector,
#                            serviceaccount and token, namespace, node lifecycle, ...), one identity each
#   kube-scheduler
#   kwok                     fake nodes; tests/cluster/kwok/stages.yaml makes their pods Running/Ready,
#                            except pods whose first image contains `never-ready` (for rollout failures);
#                            port-forward to any pod goes to $MLGIT_TEST_POD_ADDRESS (where a test runs the
#                            model) and every pod's log is the file $MLGIT_TEST_POD_LOG (in the container
#                            runtime's format: `<RFC 3339 time> stdout F <line>` per line)
# Binaries are built once per version under $MLGIT_CONTROL_PLANE_CACHE (default /var/cache/mlgit/control-plane),
# with the Go module and build caches there too; a throwaway Go module per project is generated there, so
# nothing in the repository pins or bumps their dependencies. Running state (certificates, etcd data, logs,
# pid files, kubeconfigs) lives in $MLGIT_CONTROL_PLANE_STATE (default /tmp/mlgit-control-plane).
set -euo pipefail

K8S_VERSION=${MLGIT_K8S_VERSION:-1.35.4}  # served by the proxy: 1.34.0-1.34.4, 1.35.4, 1.36.1, 1.36.3, 1.37.2
KWOK_VERSION=0.8.0                        # the newest that builds with Go 1.26; supports Kubernetes <= 1.36

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE=${MLGIT_CONTROL_PLANE_CACHE:-/var/cache/mlgit/control-plane}
STATE=${MLGIT_CONTROL_PLANE_STATE:-/tmp/mlgit-control-plane}
APISERVER_PORT=${MLGIT_CONTROL_PLANE_PORT:-16443}
ETCD_PORT=$((APISERVER_PORT + 10))        # and the next port for etcd's peer listener
KWOK_PORT=$((APISERVER_PORT + 20))        # the fake nodes' kubelet endpoint (port-forward, logs)
CONTROLLER_MANAGER_PORT=$((APISERVER_PORT + 21))
SCHEDULER_PORT=$((APISERVER_PORT + 22))
POD_ADDRESS=${MLGIT_TEST_POD_ADDRESS:-127.0.0.1:18080}
KUBECONFIG_PATH="$STATE/admin.kubeconfig"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

NAME=control-plane PIDS="$STATE/pids" LOGS="$STATE/logs"
# shellcheck source=tests/cluster/lib.sh
source "$HERE/lib.sh"

K8S_MINOR=${K8S_VERSION#*.}
K8S_MINOR=${K8S_MINOR%%.*}
K8S_BIN="$CACHE/bin/kubernetes-v$K8S_VERSION"
KUBELET_BIN="$CACHE/bin/kubelet-v$K8S_VERSION"

go_env() {
  command -v go >/dev/null || die "go not found: the control plane is built from source with Go >= 1.25
  (install Go, or point MLGIT_TEST_KUBECONFIG at an existing cluster such as kind to run the cluster tests)"
  export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  mkdir -p "$GOMODCACHE" "$GOCACHE"
}

# kubernetes_mod: the path of k8s.io/kubernetes@v$K8S_VERSION's go.mod (downloaded through the proxy once)
kubernetes_mod() {
  local src="$CACHE/src/kubernetes-v$K8S_VERSION" info
  if [[ ! -s $src/kubernetes.mod ]]; then
    go_env
    mkdir -p "$src"
    info=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION") \
      || die "the Go proxy does not serve k8s.io/kubernetes@v$K8S_VERSION"
    cp "$(sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p' <<<"$info")" "$src/kubernetes.mod"
  fi
  echo "$src/kubernetes.mod"
}

# The version the Kubernetes module pins for etcd's client: the server is built at the same version.
etcd_version() {
  awk '$1 == "go.etcd.io/etcd/client/v3" { sub(/^v/, "", $2); print $2; exit }' "$(kubernetes_mod)"
}

# kubernetes_commands NAME BIN_DIR COMMAND...: k8s.io/kubernetes's cmd/COMMAND at K8S_VERSION into BIN_DIR, from
# a throwaway module $CACHE/src/NAME-v<version> of its own (two builds never rewrite each other's go.mod)
kubernetes_commands() {
  local name=$1 bin=$2 version="v$K8S_VERSION" command missing=() src start ldflags pkg mod
  shift 2
  src="$CACHE/src/$name-v$K8S_VERSION"
  for command; do [[ -x $bin/$command ]] || missing+=("$command"); done
  ((${#missing[@]})) || return 0
  go_env
  start=$(date +%s)
  log "building Kubernetes $version ($*) in $src: 15-30 min cold on 2 cores, minutes once another of its commands is"
  mod=$(kubernetes_mod)
  mkdir -p "$src"
  # k8s.io/kubernetes replaces its staging modules (k8s.io/api, client-go, ...) with local paths, which a
  # dependent module cannot see: map each one it requires at v0.0.0 to the published v0.<minor>.<patch>.
  {
    printf 'module mlgit.local/control-plane/%s\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$name" "$version"
    awk -v v="v0.${K8S_VERSION#*.}" '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// { printf "\t%s => %s %s\n", $1, $1, v }' "$mod"
    printf ')\n'
  } >"$src/go.mod"
  {  # shellcheck disable=SC2016  # the backquotes are Go comment text
    printf '//go:build tools\n\n// Package tools names the commands this module builds, so that `go mod tidy` keeps their dependencies.\n'
    printf 'package tools\n\nimport (\n'
    for command; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$command"; done
    printf ')\n'
  } >"$src/tools.go"
  (cd "$src" && go mod tidy) >"$src/tidy.log" 2>&1 || { tail_log "$src/tidy.log"; die "go mod tidy failed for Kubernetes $version"; }
  # Without these the binaries report v0.0.0, and version checks (kubectl, client libraries) misbehave.
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR -X $pkg.gitTreeState=clean"
  done
  mkdir -p "$bin.tmp"
  (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$bin.tmp/" "${@/#/k8s.io/kubernetes/cmd/}") \
    >"$src/build.log" 2>&1 || { tail_log "$src/build.log"; die "go build of Kubernetes $version ($*) failed"; }
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
  log "built Kubernetes $version ($*) in $(elapsed "$start") s"
}

# go_command NAME MODULE VERSION PACKAGE BINARY: PACKAGE of MODULE@VERSION as $CACHE/bin/NAME-vVERSION/BINARY,
# from a throwaway module $CACHE/src/NAME-vVERSION; prints the binary's path
go_command() {
  local name=$1 module=$2 version=$3 package=$4 binary=$5 bin src start
  bin="$CACHE/bin/$name-v$version"
  src="$CACHE/src/$name-v$version"
  if [[ ! -x $bin/$binary ]]; then
    go_env
    start=$(date +%s)
    log "building $name v$version"
    mkdir -p "$src"
    [[ -f $src/go.mod ]] || printf 'module mlgit.local/control-plane/%s\n\ngo 1.25.0\n' "$name" >"$src/go.mod"
    (cd "$src" && go get "$module@v$version" && mkdir -p "$bin.tmp" &&
      go build -trimpath -ldflags "-s -w" -o "$bin.tmp/$binary" "$package") >"$src/build.log" 2>&1 \
      || { tail_log "$src/build.log"; die "building $name v$version failed"; }
    rm -rf "$bin" && mv "$bin.tmp" "$bin"
    log "built $name v$version in $(elapsed "$start") s" 
  fi
  echo "$bin/$binary"
}

build() {
  local etcd
  mkdir -p "$CACHE/bin" "$CACHE/src" || die "cannot write $CACHE (set MLGIT_CONTROL_PLANE_CACHE to a writable folder)"
  kubernetes_commands kubernetes "$K8S_BIN" kube-apiserver kube-controller-manager kube-scheduler
  etcd=$(etcd_version)
  [[ -n $etcd ]] || die "no go.etcd.io/etcd/client/v3 requirement found in Kubernetes v$K8S_VERSION's go.mod"
  ETCD=$(go_command etcd go.etcd.io/etcd/server/v3 "$etcd" go.etcd.io/etcd/server/v3 etcd)
  KWOK=$(go_command kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok kwok)
}

# ---------------------------------------------------------------------------------------------
# certificates: one CA signs the serving certificates and every client identity
cert() {  # cert NAME SUBJECT [SANS]: an EC key and a CA-signed certificate in $STATE/pki
  local name=$1 subject=$2 sans=${3:-} pki="$STATE/pki"
  [[ -s $pki/$name.crt ]] && return
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$name.key" 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $sans ]]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$sans"
    else echo "extendedKeyUsage=clientAuth"; fi
  } >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
    -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

pki() {
  local pki="$STATE/pki"
  mkdir -p "$pki"
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  if [[ ! -s $pki/ca.crt ]]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=mlgit-test-cluster-ca" -days 3650 -out "$pki/ca.crt" 2>/dev/null
  fi
  cert apiserver "/CN=kube-apiserver" \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
  cert admin "/O=system:masters/CN=mlgit-test-admin"
  cert kube-controller-manager "/CN=system:kube-controller-manager"
  cert kube-scheduler "/CN=system:kube-scheduler"
  cert kwok "/O=system:masters/CN=kwok-controller"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert kubelet "/CN=kwok-kubelet" "IP:127.0.0.1,DNS:localhost"
  [[ -s $pki/service-account.key ]] || {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/service-account.key" 2>/dev/null
    openssl pkey -in "$pki/service-account.key" -pubout -out "$pki/service-account.pub" 2>/dev/null
  }
}

kubeconfig() {  # kubeconfig NAME: $STATE/NAME.kubeconfig with the client certificate NAME
  cat >"$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mlgit-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $STATE/pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $STATE/pki/$1.crt
    client-key: $STATE/pki/$1.key
contexts:
- name: mlgit-test
  context: {cluster: mlgit-test, user: $1}
current-context: mlgit-test
EOF
}

# ---------------------------------------------------------------------------------------------
apiserver_ready() {
  curl -fsS --noproxy '*' --max-time 3 --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" \
    --key "$STATE/pki/admin.key" "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

up() {
  local start_time
  start_time=$(date +%s)
  KUBECTL=${MLGIT_TEST_KUBECTL:-$(command -v kubectl || true)}
  [[ -x $KUBECTL ]] || die "kubectl not found (MLGIT_TEST_KUBECTL): it applies the CRDs and fake nodes"
  build
  mkdir -p "$STATE"
  if alive kube-apiserver && apiserver_ready && alive kwok && alive kube-controller-manager; then
    log "already running (state in $STATE)"
    print_env
    return
  fi
  local component port
  for component in "${COMPONENTS[@]}"; do
    alive "$component" && continue
    case $component in
      etcd) port=$ETCD_PORT ;; kube-apiserver) port=$APISERVER_PORT ;; kwok) port=$KWOK_PORT ;;
      kube-controller-manager) port=$CONTROLLER_MANAGER_PORT ;; kube-scheduler) port=$SCHEDULER_PORT ;;
    esac
    port_free "$port" || die "port $port (for $component) is taken by another process; set MLGIT_CONTROL_PLANE_PORT to move every port"
  done
  pki
  local name
  for name in admin kube-controller-manager kube-scheduler kwok; do kubeconfig "$name"; done

  start etcd "$ETCD" --name mlgit-test --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "mlgit-test=http://127.0.0.1:$((ETCD_PORT + 1))" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
  wait_until 60 "etcd to answer" etcd curl -fsS --noproxy '*' --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

  local pki="$STATE/pki"
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode Node,RBAC --anonymous-auth=false \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/service-account.pub" --service-account-signing-key-file "$pki/service-account.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true --endpoint-reconciler-type none --profiling=false
  wait_until 120 "kube-apiserver to become ready" kube-apiserver apiserver_ready

  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
    --use-service-account-credentials --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" \
    --service-account-private-key-file "$pki/service-account.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range 10.96.0.0/16 --profiling=false
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$STATE/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --profiling=false

  # kwok's rules: stages for nodes and pods, the port-forward target and the log file of every pod
  mkdir -p "$STATE/pods"
  : >>"$STATE/pods/current.log"
  sed -e "s|@POD_HOST@|${POD_ADDRESS%:*}|g" -e "s|@POD_PORT@|${POD_ADDRESS##*:}|g" -e "s|@POD_LOG@|$STATE/pods/current.log|g" \
    "$HERE/kwok/kwok.yaml" >"$STATE/kwok.yaml"
  start kwok "$KWOK" --kubeconfig "$STATE/kwok.kubeconfig" --config "$STATE/kwok.yaml" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 127.0.0.1 --node-port "$KWOK_PORT" --server-address "127.0.0.1:$KWOK_PORT" \
    --tls-cert-file "$pki/kubelet.crt" --tls-private-key-file "$pki/kubelet.key" \
    --node-lease-duration-seconds 40

  # The fake nodes (kwok manages those annotated so) and the CRDs mlgit's manifests use.
  wait_until 60 "the RBAC bootstrap roles" "" k get clusterrole system:kube-controller-manager
  k apply --server-side --force-conflicts --field-manager mlgit-control-plane -f "$HERE/kwok/nodes.yaml" >/dev/null
  local crds
  crds=$(bash "$HERE/crds.sh" | tail -n 1) || die "generating the CRDs failed (tests/cluster/crds.sh)"
  crds=${crds#MLGIT_TEST_CRDS=}
  # Server-side: some CRDs exceed the 256 KiB annotation that client-side apply would write.
  k apply --server-side --force-conflicts --field-manager mlgit-control-plane -R -f "$crds" >/dev/null \
    || die "applying the CRDs in $crds failed"
  k wait --for condition=Established --timeout 60s crd --all >/dev/null || die "the CRDs did not become established"
  wait_until 60 "a fake node to become Ready" kwok node_ready
  wait_until 60 "the default ServiceAccount (serviceaccount controller)" kube-controller-manager \
    k get serviceaccount default -n default
  log "ready in $(elapsed "$start_time") s (logs in $LOGS)"
  print_env
}

node_ready() {
  [[ "$(k get node mlgit-node-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

print_env() {
  echo "MLGIT_TEST_POD_ADDRESS=$POD_ADDRESS"
  echo "MLGIT_TEST_POD_LOG=$STATE/pods/current.log"
  echo "KUBECONFIG=$KUBECONFIG_PATH"
}

down() {
  local component pid stopped=()
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    component=${COMPONENTS[i]}
    pid=$(pid_of "$component") || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      stopped+=("$component")
    fi
    rm -f "$PIDS/$component"
  done
  log "stopped: ${stopped[*]:-nothing was running}"
  # A stopped cluster's etcd data would bring back every object on the next `up`: start clean.
  rm -rf "$STATE/etcd"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  build) build ;;
  build-kubelet) build && kubernetes_commands kubelet "$KUBELET_BIN" kubelet ;;
  kubelet-path) echo "$KUBELET_BIN/kubelet" ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|build|build-kubelet|kubelet-path|env" >&2; exit 2 ;;
esac
