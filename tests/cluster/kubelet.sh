#!/usr/bin/env bash
# A real node for the test control plane: a kubelet and a containerd of its own on this machine, so that a pod
# runs a real image (pulled from the local registry) instead of kwok's make-believe.
#
#   bash tests/cluster/kubelet.sh check   can a kubelet run here? exit 0, or exit 3 saying why not
#   bash tests/cluster/kubelet.sh build   build (or find cached) the kubelet; build the pause image
#   KUBECONFIG=<admin kubeconfig> bash tests/cluster/kubelet.sh up
#                                         start containerd and the kubelet against that cluster, wait until
#                                         the node is Ready; prints NAME=value lines, READY=1 last
#   bash tests/cluster/kubelet.sh down    drain the node, stop what `up` started, remove its network bits,
#                                         cgroups, mounts and state; restore the kernel settings it changed
# Exit 3 (from check, build or up) means "this machine cannot run it" (a missing package, not root, cgroup
# v2): tests skip on that. Any other failure is a failure. With MLGIT_KUBELET_NO_BUILD=1, `up` exits 3 instead
# of building a missing kubelet (a cold build takes longer than a test may: tests/run.sh builds first).
#
# What runs (plain processes, each with its pid file under $RUN/pids):
#   containerd  Debian's (1.6), with its own config (tests/cluster/kubelet/containerd.toml): root in $ROOT,
#               state, socket and runc state in $RUN; dockerd's containerd and any system one are untouched.
#               The pod sandbox image is our own pause program (tests/cluster/kubelet/pause.c, gcc -static),
#               imported with `ctr -n k8s.io images import`; model images are pulled from the local registry
#               (plain HTTP: a hosts.toml of our own).
#   kubelet     built from k8s.io/kubernetes at the control plane's version, in the same Go caches as
#               tests/cluster/control-plane.sh (a throwaway module of its own beside the control plane's).
#               Node $NODE_NAME, tainted $TAINT and labelled $NODE_LABEL, so that only pods that ask for it
#               land there and kwok's fake nodes keep every other test's pods. Its client and serving
#               certificates are issued by the cluster's own CSR API (approved with the admin kubeconfig).
# Network: a bridge $BRIDGE with the pod range $POD_CIDR (clear of docker0's 172.17.0.0/16, kwok's 10.0.0.0/16
# and the service range 10.96.0.0/16); CNI bridge + host-local + portmap from /usr/lib/cni, loopback set up by
# containerd. The bridge's own address is the node's InternalIP (a kubelet refuses a loopback node IP): the
# kubelet listens there, reachable from this machine only. No NAT rule: pods need no way out (the kubelet
# probes them from the host, port-forward enters their network namespace, images are pulled by containerd).
# What the kubelet and containerd change on the host while they run, and `down` puts back (recorded by `up`
# first): kernel sysctls (the kubelet sets vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1, ...
# at start), iptables chains (KUBE-FIREWALL with its jumps from INPUT/OUTPUT, KUBE-IPTABLES-HINT,
# KUBE-KUBELET-CANARY), /var/log/containers and its links, /run/containerd/s (shim sockets); plus what is ours
# alone: the bridge, cgroups under $CGROUP_ROOT in every hierarchy, mounts under $ROOT and $RUN.
# The test machines are Firecracker VMs whose root lacks CAP_SYS_RESOURCE: see restrict_oom_score_adj in
# containerd.toml and oomScoreAdj in kubelet.yaml.
# One node per machine: $ROOT and $RUN are fixed (MLGIT_KUBELET_ROOT / MLGIT_KUBELET_RUN move them).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FILES="$HERE/kubelet"
CONTROL_PLANE="$HERE/control-plane.sh"
# The kubelet is built by control-plane.sh, at its Kubernetes release, beside its binaries and in its caches.
KUBELET_BIN=$(bash "$CONTROL_PLANE" kubelet-path)
ROOT=${MLGIT_KUBELET_ROOT:-/var/lib/mlgit-kubelet}
RUN=${MLGIT_KUBELET_RUN:-/run/mlgit-kubelet}
NODE_NAME=mlgit-kubelet-0
TAINT_KEY=mlgit.dev/real-node TAINT_VALUE=true TAINT_EFFECT=NoSchedule
TAINT="$TAINT_KEY=$TAINT_VALUE:$TAINT_EFFECT"
NODE_LABEL="$TAINT_KEY=true"
BRIDGE=mlgit-cni0
POD_CIDR=${MLGIT_KUBELET_POD_CIDR:-10.244.0.0/24}
NODE_IP=${POD_CIDR%.*/*}.1                # the bridge's address: the pods' gateway and the node's InternalIP
KUBELET_PORT=${MLGIT_KUBELET_PORT:-10250}
HEALTHZ_PORT=$((KUBELET_PORT - 2))         # 10248, as the kubelet's default
CNI_BIN=${MLGIT_KUBELET_CNI_BIN:-/usr/lib/cni}
CGROUP_ROOT=/mlgit-kubelet
REGISTRY=${MLGIT_TEST_REGISTRY:-127.0.0.1:5000}  # plain HTTP, as tests/run.sh starts it
KUBECTL=${MLGIT_TEST_KUBECTL:-$(command -v kubectl || true)}
# The kubelet sets these at start (KernelTunableModify); `up` records them first and `down` puts them back.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
         kernel.keys.root_maxbytes)
# iptables chains the kubelet makes (table:chain), per address family; removed by `down` unless they were
# there before `up` (a kube-proxy or another kubelet of the machine owns them then).
IPTABLES_CHAINS=(filter:KUBE-FIREWALL mangle:KUBE-IPTABLES-HINT mangle:KUBE-KUBELET-CANARY nat:KUBE-KUBELET-CANARY
                 filter:KUBE-KUBELET-CANARY)

SOCKET="$RUN/containerd.sock"
PKI="$ROOT/pki"
LOGS="$ROOT/logs"
UNAVAILABLE=3

NAME=kubelet PIDS="$RUN/pids"
# shellcheck source=tests/cluster/lib.sh
source "$HERE/lib.sh"
unavailable() { printf '[kubelet] UNAVAILABLE: %s\n' "$*" >&2; exit "$UNAVAILABLE"; }

# ---------------------------------------------------------------------------------------------
# check: what this machine must have. Each miss names the package or setting (exit 3).
check() {
  local missing=() cmd
  [[ $(uname -s) == Linux ]] || unavailable "a kubelet needs Linux"
  ((EUID == 0)) || unavailable "a kubelet and containerd need root (cgroups, mounts, network namespaces)"
  for cmd in containerd ctr runc ip mount gcc openssl base64 sha256sum; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  ((${#missing[@]} == 0)) || unavailable "not found: ${missing[*]} (Debian: apt-get install containerd runc iproute2 gcc libc6-dev openssl)"
  for cmd in bridge host-local loopback portmap; do
    [[ -x $CNI_BIN/$cmd ]] || missing+=("$CNI_BIN/$cmd")
  done
  ((${#missing[@]} == 0)) || unavailable "CNI plugins not found: ${missing[*]} (Debian: apt-get install containernetworking-plugins)"
  [[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/aarch64-linux-gnu/libc.a || -f /usr/lib/libc.a ]] \
    || unavailable "no static libc for the pause program (Debian: apt-get install libc6-dev)"
  # The kubelet's OOM watcher reads the kernel log; it will not start without it.
  [[ -r /dev/kmsg ]] || unavailable "/dev/kmsg is missing (a container without it cannot run a kubelet)"
  # Written for, and tried on, cgroup v1 (the CI machines: hybrid, no systemd). A cgroup v2 host would need
  # controller delegation for $CGROUP_ROOT, which has not been tried.
  local controller
  for controller in cpu cpuacct cpuset memory pids; do
    [[ -d /sys/fs/cgroup/$controller ]] || missing+=("$controller")
  done
  if ((${#missing[@]})); then
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
      unavailable "this host runs cgroup v2 only; tests/cluster/kubelet.sh is written for (and tried on) cgroup v1 with the cgroupfs driver"
    fi
    unavailable "cgroup v1 controllers not mounted under /sys/fs/cgroup: ${missing[*]}"
  fi
  grep -qw overlay /proc/filesystems || unavailable "the kernel has no overlay filesystem (containerd's overlayfs snapshotter)"
  # The pod range must be ours: a route to it through any other device means someone else uses it.
  local via
  via=$(ip -4 -o route show to match "$NODE_IP" | awk '$1 != "default" { for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1) }' | head -n 1)
  [[ -z $via || $via == "$BRIDGE" ]] \
    || unavailable "the pod range $POD_CIDR is routed through $via already (set MLGIT_KUBELET_POD_CIDR to another /24)"
}

# ---------------------------------------------------------------------------------------------
# build: the kubelet (Go, cached per version beside the control plane's binaries) and the pause image.
build_kubelet() {
  [[ -x $KUBELET_BIN ]] && return
  [[ ${MLGIT_KUBELET_NO_BUILD:-} == 1 ]] && unavailable "the kubelet is not built ($KUBELET_BIN; \`bash tests/cluster/kubelet.sh build\` builds it)"
  command -v go >/dev/null || unavailable "go not found: the kubelet is built from source (as the control plane)"
  bash "$CONTROL_PLANE" build-kubelet || die "tests/cluster/control-plane.sh build-kubelet failed"
}

# The pause image's name carries a hash of its source and compiler: an edit of pause.c makes a new image.
pause_key() { { cat "$FILES/pause.c"; gcc --version | head -n 1; } | sha256sum | cut -c1-12; }
PAUSE_REPOSITORY=mlgit.local/pause

# build_pause: $ROOT/pause/<key>/image.tar, a Docker-format archive (`docker save` layout) of one layer
# holding /pause, which `ctr images import` reads.
build_pause() {
  local key dir layer_sha config config_sha
  key=$(pause_key)
  dir="$ROOT/pause/$key"
  PAUSE_IMAGE="$PAUSE_REPOSITORY:$key"
  [[ -s $dir/image.tar ]] && return
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/rootfs" "$dir.tmp/archive"
  gcc -static -Os -s -Wall -Wextra -Werror -o "$dir.tmp/rootfs/pause" "$FILES/pause.c" 2>"$dir.tmp/gcc.log" \
    || { tail_log "$dir.tmp/gcc.log"; grep -q 'cannot find -lc' "$dir.tmp/gcc.log" && unavailable "no static libc (apt-get install libc6-dev)"; die "gcc -static of pause.c failed"; }
  "$dir.tmp/rootfs/pause" --version >/dev/null || die "the pause program does not run"
  # A reproducible layer: fixed owner and time, so the same source gives the same image.
  tar --create --file "$dir.tmp/layer.tar" --directory "$dir.tmp/rootfs" --owner 0 --group 0 --numeric-owner \
    --mtime @0 --mode 0755 pause
  layer_sha=$(sha256sum "$dir.tmp/layer.tar" | cut -d' ' -f1)
  mkdir -p "$dir.tmp/archive/$layer_sha"
  mv "$dir.tmp/layer.tar" "$dir.tmp/archive/$layer_sha/layer.tar"
  config=$(printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"tests/cluster/kubelet.sh: gcc -static pause.c"}]}' \
    "$(go_arch)" "$layer_sha")
  config_sha=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  printf '%s' "$config" >"$dir.tmp/archive/$config_sha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config_sha" "$PAUSE_IMAGE" "$layer_sha" \
    >"$dir.tmp/archive/manifest.json"
  tar --create --file "$dir.tmp/image.tar" --directory "$dir.tmp/archive" --owner 0 --group 0 --numeric-owner --mtime @0 .
  # The archive last: its presence is what says "built".
  mkdir -p "$dir"
  cp "$dir.tmp/rootfs/pause" "$dir/pause"
  mv "$dir.tmp/image.tar" "$dir/image.tar"
  rm -rf "$dir.tmp"
  log "pause image $PAUSE_IMAGE built ($(stat -c %s "$dir/pause") bytes, static)"
}

go_arch() { case $(uname -m) in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac; }

build() {
  check
  build_kubelet
  build_pause
}

# ---------------------------------------------------------------------------------------------
admin() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
ctr_() { ctr --address "$SOCKET" --namespace k8s.io "$@"; }

fill() {  # fill TEMPLATE OUT: the template with every @NAME@ replaced
  sed -e "s|@ROOT@|$ROOT|g" -e "s|@RUN@|$RUN|g" -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" -e "s|@RUNC@|$(command -v runc)|g" \
    -e "s|@CNI_BIN@|$CNI_BIN|g" -e "s|@BRIDGE@|$BRIDGE|g" -e "s|@POD_CIDR@|$POD_CIDR|g" -e "s|@GATEWAY@|$NODE_IP|g" \
    -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@PORT@|$KUBELET_PORT|g" -e "s|@HEALTHZ_PORT@|$HEALTHZ_PORT|g" -e "s|@PKI@|$PKI|g" \
    -e "s|@CLIENT_CA@|$PKI/ca.crt|g" -e "s|@CGROUP_ROOT@|$CGROUP_ROOT|g" -e "s|@TAINT_KEY@|$TAINT_KEY|g" \
    -e "s|@TAINT_VALUE@|$TAINT_VALUE|g" -e "s|@TAINT_EFFECT@|$TAINT_EFFECT|g" "$1" >"$2"
  ! grep -n '@[A-Z_]*@' "$2" || die "unfilled values in $2"
}

# The admin kubeconfig: for `up` the one given (KUBECONFIG, else MLGIT_TEST_KUBECONFIG); for `down` the one `up`
# recorded, so that a KUBECONFIG of another cluster in the caller's environment never drains a node there.
find_admin_kubeconfig() {
  ADMIN_KUBECONFIG=""
  if [[ ${1:-} == recorded && -s $RUN/admin-kubeconfig ]]; then ADMIN_KUBECONFIG=$(cat "$RUN/admin-kubeconfig"); fi
  ADMIN_KUBECONFIG=${ADMIN_KUBECONFIG:-${KUBECONFIG:-${MLGIT_TEST_KUBECONFIG:-}}}
  [[ -n $ADMIN_KUBECONFIG ]]
}

# ---------------------------------------------------------------------------------------------
# The node's identity: a client certificate (system:node:<name> in system:nodes, so the Node authorizer
# applies to it as to any kubelet) and a serving certificate for its address, both signed by the cluster's
# kube-controller-manager through the CSR API and approved with the admin's rights.
issue() {  # issue NAME SIGNER USAGES SANS: $PKI/NAME.{key,crt}
  local name=$1 signer=$2 usages=$3 sans=$4 csr request certificate
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  {
    echo "[req]"; echo "distinguished_name = dn"; echo "prompt = no"
    [[ -n $sans ]] && { echo "req_extensions = ext"; echo "[ext]"; echo "subjectAltName = $sans"; }
    echo "[dn]"; echo "O = system:nodes"; echo "CN = system:node:$NODE_NAME"
  } >"$PKI/$name.cnf"
  openssl req -new -key "$PKI/$name.key" -config "$PKI/$name.cnf" -out "$PKI/$name.csr" 2>/dev/null
  csr="$NODE_NAME-$name-$(date +%s)"
  request=$(base64 -w0 <"$PKI/$name.csr")
  admin create -f - >/dev/null <<EOF || die "creating the CertificateSigningRequest $csr failed"
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: $csr, labels: {app.kubernetes.io/managed-by: mlgit-kubelet-sh}}
spec:
  request: $request
  signerName: $signer
  usages: [$usages]
EOF
  admin certificate approve "$csr" >/dev/null || die "approving $csr failed"
  local deadline=$(($(date +%s) + 60))
  until certificate=$(admin get csr "$csr" -o jsonpath='{.status.certificate}' 2>/dev/null) && [[ -n $certificate ]]; do
    (($(date +%s) < deadline)) || die "the CSR $csr was approved but not signed within 60 s (is kube-controller-manager's csrsigning controller running with --cluster-signing-cert-file?)"
    sleep 0.5
  done
  base64 -d <<<"$certificate" >"$PKI/$name.crt"
  admin delete csr "$csr" --wait=false >/dev/null 2>&1 || true
  rm -f "$PKI/$name.csr" "$PKI/$name.cnf"
}

# The cluster's address and CA from the admin kubeconfig (a path or inline data).
cluster_of_admin() {
  SERVER=$(admin config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
  [[ -n $SERVER ]] || die "no server in $ADMIN_KUBECONFIG's current context"
  local ca_file ca_data
  ca_file=$(admin config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  ca_data=$(admin config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  if [[ -n $ca_data ]]; then base64 -d <<<"$ca_data" >"$PKI/ca.crt"
  elif [[ -n $ca_file ]]; then cp "$ca_file" "$PKI/ca.crt"
  else die "$ADMIN_KUBECONFIG has no certificate authority for $SERVER"; fi
}

identity() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  cluster_of_admin
  issue kubelet-client kubernetes.io/kube-apiserver-client-kubelet '"digital signature", "client auth"' ""
  issue kubelet-serving kubernetes.io/kubelet-serving '"digital signature", "server auth"' "IP:$NODE_IP, DNS:$NODE_NAME"
  cat >"$ROOT/config/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster: {server: "$SERVER", certificate-authority: "$PKI/ca.crt"}
users:
- name: $NODE_NAME
  user: {client-certificate: "$PKI/kubelet-client.crt", client-key: "$PKI/kubelet-client.key"}
contexts:
- name: node
  context: {cluster: cluster, user: $NODE_NAME}
current-context: node
EOF
}

# ---------------------------------------------------------------------------------------------
network_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge || unavailable "cannot create a bridge (ip link add $BRIDGE type bridge failed)"
  fi
  ip -4 addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pods answer the kubelet's probes through the bridge; nothing is forwarded to or from the outside.
  mkdir -p "$ROOT/cni/net.d" "$ROOT/cni/networks"
  fill "$FILES/cni.conflist" "$ROOT/cni/net.d/10-mlgit.conflist"
}

containerd_up() {
  mkdir -p "$ROOT/config" "$ROOT/certs.d/$REGISTRY" "$RUN"
  fill "$FILES/containerd.toml" "$ROOT/config/containerd.toml"
  # The local test registry speaks plain HTTP.
  printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REGISTRY" "$REGISTRY" \
    >"$ROOT/certs.d/$REGISTRY/hosts.toml"
  if ! alive containerd; then
    start containerd containerd --config "$ROOT/config/containerd.toml"
  fi
  wait_until 60 "containerd to answer on $SOCKET" containerd ctr_ version
  if ! ctr_ images ls -q | grep -qxF "docker.io/$PAUSE_IMAGE" && ! ctr_ images ls -q | grep -qxF "$PAUSE_IMAGE"; then
    ctr_ images import "$ROOT/pause/${PAUSE_IMAGE##*:}/image.tar" >/dev/null || die "ctr images import of the pause image failed"
  fi
}

# Record what the kubelet will change on the host, once (a second `up` must not record its own changes).
record_host() {
  local name table chain family tool
  if [[ ! -s $RUN/sysctls ]]; then
    for name in "${SYSCTLS[@]}"; do
      if [[ -r /proc/sys/${name//.//} ]]; then printf '%s=%s\n' "$name" "$(cat "/proc/sys/${name//.//}")"; fi
    done >"$RUN/sysctls.tmp"
    mv "$RUN/sysctls.tmp" "$RUN/sysctls"
  fi
  # The kubelet creates /var/log/containers (a fixed path) for its log links.
  [[ -e $RUN/var-log-containers-before ]] || { [[ -d /var/log/containers ]] && echo yes || echo no; } >"$RUN/var-log-containers-before"
  # containerd 1.6's shims put their sockets in /run/containerd/s whatever containerd's state directory is.
  [[ -e $RUN/run-containerd-before ]] || { [[ -d /run/containerd ]] && echo yes || echo no; } >"$RUN/run-containerd-before"
  if [[ ! -e $RUN/iptables-before ]]; then
    for family in 4 6; do
      tool=iptables; [[ $family == 6 ]] && tool=ip6tables
      command -v "$tool" >/dev/null || continue
      for name in "${IPTABLES_CHAINS[@]}"; do
        table=${name%%:*} chain=${name#*:}
        if "$tool" -w 5 -t "$table" -S "$chain" >/dev/null 2>&1; then echo "$family $table $chain"; fi
      done
    done >"$RUN/iptables-before"
  fi
}

cgroups_up() {
  local controller dir
  for controller in /sys/fs/cgroup/*/; do
    controller=${controller%/}
    [[ ${controller##*/} == unified ]] && continue   # the hybrid layout's v2 mount: no controllers in it
    [[ -e $controller/cgroup.procs ]] || continue
    dir="$controller$CGROUP_ROOT"
    mkdir -p "$dir"
    # A new cpuset cgroup has no CPUs and no memory nodes until given its parent's.
    if [[ -e $dir/cpuset.cpus && -z $(cat "$dir/cpuset.cpus") ]]; then
      cat "$controller/cpuset.cpus" >"$dir/cpuset.cpus"
      cat "$controller/cpuset.mems" >"$dir/cpuset.mems"
    fi
  done
}

kubelet_up() {
  mkdir -p "$ROOT/kubelet" "$ROOT/pod-logs"
  fill "$FILES/kubelet.yaml" "$ROOT/config/kubelet.yaml"
  # KUBE-FIREWALL and friends, sysctls: see record_host.
  start kubelet "$KUBELET_BIN" --config "$ROOT/config/kubelet.yaml" --kubeconfig "$ROOT/config/kubelet.kubeconfig" \
    --root-dir "$ROOT/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --node-labels "$NODE_LABEL" \
    --v 2
}

node_ready() {
  [[ "$(admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

print_env() {
  echo "MLGIT_TEST_REAL_NODE=$NODE_NAME"
  echo "MLGIT_TEST_REAL_NODE_TAINT=$TAINT"
  echo "MLGIT_TEST_REAL_NODE_LABEL=$NODE_LABEL"
  echo "MLGIT_TEST_REAL_NODE_LOGS=$LOGS"
  echo "MLGIT_TEST_REAL_NODE_CONTAINERD=$SOCKET"
  echo "READY=1"
}

up() {
  local start_time
  start_time=$(date +%s)
  check
  [[ -x $KUBECTL ]] || unavailable "kubectl not found (MLGIT_TEST_KUBECTL): it issues the node's certificates"
  find_admin_kubeconfig || die "no cluster: set KUBECONFIG to the control plane's admin kubeconfig (tests/cluster/control-plane.sh up prints it)"
  admin get --raw /readyz >/dev/null 2>&1 || die "the cluster in $ADMIN_KUBECONFIG does not answer"
  if alive kubelet && alive containerd && node_ready; then
    [[ "$(cat "$RUN/admin-kubeconfig" 2>/dev/null)" == "$ADMIN_KUBECONFIG" ]] \
      || die "a kubelet of this script already runs for another cluster ($(cat "$RUN/admin-kubeconfig" 2>/dev/null)); \`down\` it first"
    log "already running (node $NODE_NAME Ready; state in $ROOT and $RUN)"
    print_env
    return
  fi
  if alive kubelet || alive containerd; then
    log "a previous kubelet or containerd of this script is still running without a Ready node: stopping it first"
    down
  fi
  build_kubelet
  build_pause
  mkdir -p "$RUN" "$ROOT/config" "$LOGS"
  # This run's logs, and the previous run's for comparison; no more, so that they never pile up.
  local old
  for old in "$LOGS"/*.log; do if [[ -f $old ]]; then mv -f "$old" "$old.previous"; fi; done
  printf '%s\n' "$ADMIN_KUBECONFIG" >"$RUN/admin-kubeconfig"
  # A node object left by a kubelet that was not stopped through `down` would keep its old taints and address.
  admin delete node "$NODE_NAME" --ignore-not-found --wait=true >/dev/null
  record_host  # before anything of ours runs
  network_up
  containerd_up
  identity
  cgroups_up
  kubelet_up
  wait_until 120 "the node $NODE_NAME to become Ready" kubelet node_ready
  # An unknown field in kubelet.yaml is only logged (lenient decoding) and then silently ignored.
  if grep -m 1 'strict decoding failed' "$LOGS/kubelet.log" >&2; then
    die "the kubelet ignored part of $ROOT/config/kubelet.yaml (above): fix tests/cluster/kubelet/kubelet.yaml"
  fi
  log "node $NODE_NAME Ready in $(elapsed "$start_time") s (logs in $LOGS)"
  print_env
}

# ---------------------------------------------------------------------------------------------
stop_process() {  # stop_process NAME SECONDS: SIGTERM, then SIGKILL after SECONDS
  local pid
  pid=$(pid_of "$1") || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $(($2 * 4))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    STOPPED+=("$1")
  fi
  rm -f "$RUN/pids/$1"
}

# Pods on the node go the way they go on any node being drained, so that the kubelet itself stops their
# containers, unmounts their volumes and releases their addresses (CNI DEL). Pods of a Deployment come back,
# pending: the node is cordoned first.
drain() {
  if ! find_admin_kubeconfig recorded || ! admin get --raw /readyz >/dev/null 2>&1; then
    log "the cluster does not answer: no drain"
    return 0
  fi
  admin get node "$NODE_NAME" >/dev/null 2>&1 || return 0
  admin cordon "$NODE_NAME" >/dev/null 2>&1 || true
  local pods
  pods=$(admin get pods -A --field-selector "spec.nodeName=$NODE_NAME" -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}')
  if [[ -n $pods ]] && alive kubelet; then
    log "draining $(wc -l <<<"$pods") pod(s) from $NODE_NAME"
    local pod
    while IFS= read -r pod; do
      admin delete pod -n "${pod%%/*}" "${pod#*/}" --wait=false >/dev/null 2>&1 || true
    done <<<"$pods"
    local deadline=$(($(date +%s) + 90))
    while [[ -n $(admin get pods -A --field-selector "spec.nodeName=$NODE_NAME" -o name 2>/dev/null) ]]; do
      (($(date +%s) < deadline)) || { log "pods still on $NODE_NAME after 90 s: stopping them by force"; break; }
      sleep 1
    done
  fi
}

# What the kubelet could not stop (killed, or a drain that timed out): containerd's tasks and containers,
# then their network namespaces' interfaces on our bridge go with the bridge.
force_containers() {
  alive containerd || return 0
  local id
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 1
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
}

# Shims of our containerd outlive it by design (containers keep running across a containerd restart): find
# them by the address of our socket in their command line, and stop each by its pid.
stop_shims() {
  local cmdline pid args id killed=()
  for cmdline in /proc/[0-9]*/cmdline; do
    pid=${cmdline#/proc/}; pid=${pid%/cmdline}
    args=$(tr '\0' ' ' 2>/dev/null <"$cmdline") || continue
    [[ $args == *containerd-shim*" -address $SOCKET "* ]] || continue
    kill -9 "$pid" 2>/dev/null || true
    STOPPED+=("shim:$pid")
    killed+=("$pid")
    # A killed shim leaves its socket, named (containerd 1.6) by the sha256 of <address>/<namespace>/<id>.
    if [[ $args =~ \ -id\ ([^ ]+) ]]; then
      id=${BASH_REMATCH[1]}
      rm -f "/run/containerd/s/$(printf '%s' "$SOCKET/k8s.io/$id" | sha256sum | cut -d' ' -f1)"
    fi
  done
  # Gone before their cgroups and mounts are removed.
  for pid in "${killed[@]}"; do
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  done
}

# Container processes outlive a killed shim and a killed containerd. Every process of our pods is in a cgroup
# under $CGROUP_ROOT (the kubelet's cgroupRoot): those, and only those, are stopped here.
stop_pod_processes() {
  local procs pid pids=()
  while IFS= read -r pid; do pids+=("$pid"); done < <(
    for procs in /sys/fs/cgroup/pids"$CGROUP_ROOT" /sys/fs/cgroup/memory"$CGROUP_ROOT"; do
      [[ -d $procs ]] && find "$procs" -name cgroup.procs -exec cat {} + 2>/dev/null
    done | sort -un
  )
  ((${#pids[@]})) || return 0
  kill -9 "${pids[@]}" 2>/dev/null || true
  STOPPED+=("${#pids[@]} pod process(es)")
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  done
}

unmount_under() {  # unmount_under DIR...: every mount at or below each DIR, deepest first
  local dir mounts
  for dir in "$@"; do
    [[ -d $dir ]] || continue
    # The kubelet bind-mounts its root directory onto itself (to make it a shared mount): DIR itself too.
    mounts=$(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    [[ -n $mounts ]] || continue
    while IFS= read -r mount; do umount -l "$mount" 2>/dev/null || true; done <<<"$mounts"
  done
}

restore_host() {
  local line name family table chain tool
  if [[ -s $RUN/sysctls ]]; then
    while IFS= read -r line; do
      name=${line%%=*}
      printf '%s\n' "${line#*=}" >"/proc/sys/${name//.//}" 2>/dev/null || log "could not restore $line"
    done <"$RUN/sysctls"
    rm -f "$RUN/sysctls"
  fi
  if [[ -e $RUN/iptables-before ]]; then
    for family in 4 6; do
      tool=iptables; [[ $family == 6 ]] && tool=ip6tables
      command -v "$tool" >/dev/null || continue
      for name in "${IPTABLES_CHAINS[@]}"; do
        table=${name%%:*} chain=${name#*:}
        grep -qx "$family $table $chain" "$RUN/iptables-before" && continue
        "$tool" -w 5 -t "$table" -S "$chain" >/dev/null 2>&1 || continue
        # The jumps into it first (INPUT/OUTPUT -> KUBE-FIREWALL), then the chain.
        while "$tool" -w 5 -t "$table" -D INPUT -j "$chain" 2>/dev/null; do :; done
        while "$tool" -w 5 -t "$table" -D OUTPUT -j "$chain" 2>/dev/null; do :; done
        "$tool" -w 5 -t "$table" -F "$chain" 2>/dev/null || true
        "$tool" -w 5 -t "$table" -X "$chain" 2>/dev/null || log "could not remove the $tool $table chain $chain"
      done
    done
    rm -f "$RUN/iptables-before"
  fi
  if [[ $(cat "$RUN/run-containerd-before" 2>/dev/null) == no ]]; then
    # A shim that is exiting removes its own socket a moment later. Only empty directories go: a containerd
    # started since then keeps its own.
    for _ in $(seq 1 20); do [[ -z $(ls -A /run/containerd/s 2>/dev/null) ]] && break; sleep 0.25; done
    rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null || true
  fi
  rm -f "$RUN/run-containerd-before"
}

cgroups_down() {
  local controller dir
  for controller in /sys/fs/cgroup/*/; do
    dir="${controller%/}$CGROUP_ROOT"
    [[ -d $dir ]] || continue
    # Children first; only empty cgroups can go (every process in them was stopped above).
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || log "could not remove every cgroup under $dir"
  done
}

down() {
  STOPPED=()
  drain
  stop_process kubelet 20
  if find_admin_kubeconfig recorded && admin get --raw /readyz >/dev/null 2>&1; then
    admin delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  force_containers
  stop_process containerd 20
  stop_shims
  stop_pod_processes
  # The kubelet's container log links (/var/log/containers is fixed in the kubelet) that point into our logs.
  local link
  for link in /var/log/containers/*.log; do
    if [[ -L $link && $(readlink "$link") == "$ROOT/pod-logs/"* ]]; then rm -f "$link"; fi
  done
  if [[ $(cat "$RUN/var-log-containers-before" 2>/dev/null) == no ]]; then rmdir /var/log/containers 2>/dev/null || true; fi
  unmount_under "$ROOT/kubelet" "$ROOT/containerd" "$RUN"
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    # Host ends of pod interfaces left by a forced stop; deleting one end deletes its pair.
    local port
    for port in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
      ip link delete "$port" 2>/dev/null || true
    done
    ip link delete "$BRIDGE" 2>/dev/null || log "could not delete the bridge $BRIDGE"
  fi
  restore_host
  cgroups_down
  # State goes, so that the next `up` starts clean; the logs stay for a look after a failure, and the pause
  # image is rebuilt only when its source changes.
  rm -rf "$ROOT/containerd" "$ROOT/kubelet" "$ROOT/pod-logs" "$ROOT/cni/networks" "$ROOT/opt" "$PKI" "$RUN"
  log "stopped: ${STOPPED[*]:-nothing was running}"
}

case ${1:-} in
  check) check ;;
  build) build ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 check|build|up|down" >&2; exit 2 ;;
esac
