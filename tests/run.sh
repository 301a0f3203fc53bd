#!/usr/bin/env bash
# Install what the test suite needs, start the real components it talks to, then run it.
#
#   bash tests/run.sh                     everything (this is what CI's .ci/run calls)
#   bash tests/run.sh -k registry -x      arguments go to pytest unchanged
#   MLGIT_SKIP_INTEGRATION_SETUP=1 bash tests/run.sh -m 'not integration'
#                                         quick unit run: pip install, ruff and pytest only
#
# Idempotent: every step first checks whether its work is already done (packages installed,
# dockerd and the registry answering, base image present and running), so a second run takes seconds.
# Sourcing the file (`source tests/run.sh`) defines the steps without running anything: the tests of
# this script (tests/test_run_sh.py) call its functions one at a time.
# Meant for Debian 12 as root (see /work/shared/ENVIRONMENT.md); a failing step stops the run
# with a message saying what failed and where its log is.
#
# What the tests get (also the defaults tests/fixtures_integration.py falls back to):
#   MLGIT_TEST_REGISTRY=127.0.0.1:5000                 local registry (plain HTTP)
#   MLGIT_TEST_BASE_IMAGE=local/python:3.11-slim       base image in dockerd
#   MLGIT_TEST_REGISTRY_BASE_IMAGE=127.0.0.1:5000/local/python:3.11-slim   the same, for buildah
#   MLGIT_TEST_DOCKER_CLI=/usr/bin/docker              Debian client (BuildKit without buildx)
#   MLGIT_TEST_KUBECTL=/usr/bin/kubectl                (or kubectl on PATH; unset when there is none)
#   MLGIT_TEST_BUILDAH=/usr/bin/buildah
#   MLGIT_GITLAB_CI_LOCAL=<repo>/.cache/node/node_modules/.bin/gitlab-ci-local
#   MLGIT_TEST_CRDS=/var/cache/mlgit/crds/<key>       CRDs generated from their projects' Go types
#   MLGIT_TEST_OPA, MLGIT_TEST_CONFTEST                 built from the Go module proxy (/var/cache/mlgit/go-tools)
#   MLGIT_TEST_KUBECONFIG=/tmp/mlgit-control-plane/admin.kubeconfig   the control plane built from source
#   MLGIT_TEST_POD_ADDRESS, MLGIT_TEST_POD_LOG          where its fake nodes forward pod ports, their pods' log
# The last four need Go (the machines have it); without Go, outside CI, their tests are skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"                   # Debian's own (PEP 668): .venv instead (python_env)
CACHE_DIR="$ROOT/.cache"                      # git-ignored, per checkout
SYSTEM_CACHE=/var/cache/mlgit                 # per machine, survives a fresh clone
DOCKER_SOCK=/var/run/docker.sock
DOCKERD_LOG=/var/log/mlgit-dockerd.log
REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_DIR=/var/lib/mlgit-test-registry
REGISTRY_LOG=/var/log/mlgit-test-registry.log
BASE_IMAGE=local/python:3.11-slim
GITLAB_CI_LOCAL_VERSION=4.73.0                # 4.74+ needs Node 22; the machines have Node 20
NODE_PREFIX="$CACHE_DIR/node"
GITLAB_CI_LOCAL="$NODE_PREFIX/node_modules/.bin/gitlab-ci-local"
KUBECTL_DEFAULT=/usr/bin/kubectl
KUBECTL=$KUBECTL_DEFAULT                      # check_kubectl: the one found, or empty
DOCKER=/usr/bin/docker                        # /usr/local/bin/docker is a newer client without buildx
APT_PACKAGES=(docker.io docker-registry buildah mmdebstrap rsync wrk iproute2 git curl ca-certificates
              xz-utils gzip procps python3-venv
              containerd runc containernetworking-plugins iptables gcc libc6-dev  # the real node
              chromium chromium-driver  # tests/ui: the /ui/ page in a real headless browser
              prometheus)  # tests/monitoring: promtool checks and unit-tests the rendered alert rules
# The base image recipe (ENVIRONMENT.md). Its hash names the cached tarball, so editing it rebuilds.
# shellcheck disable=SC2016,SC2054  # "$1" is mmdebstrap's, the commas are --include's
MMDEBSTRAP_ARGS=(--variant=apt --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
                 --include=python3,python3-venv,ca-certificates
                 '--customize-hook=chroot "$1" python3 -m venv /opt/venv' bookworm -)
IMPORT_CHANGE='ENV PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# ---------------------------------------------------------------------------------------------
# logging and step timing
STEP_TIMES=()
CURRENT_STEP=""
RUN_START=$(date +%s.%N)
log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[run.sh] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
step() {  # step NAME FUNCTION: runs FUNCTION, logs and records how long it took
  local name=$1 start
  shift
  start=$(date +%s.%N)
  log "==> $name"
  CURRENT_STEP=$name
  "$@"
  CURRENT_STEP=""
  STEP_TIMES+=("$(printf '%7ss  %s' "$(elapsed "$start")" "$name")")
  log "<== $name ($(elapsed "$start") s)"
}
summary() {
  local rc=$?
  if ((${#STEP_TIMES[@]})); then
    log "setup steps:"
    printf '    %s\n' "${STEP_TIMES[@]}" >&2
    log "setup total: $(elapsed "$RUN_START") s"
  fi
  # shellcheck disable=SC2016  # the quotes are inside a double-quoted string
  ((rc == 0)) || log "setup FAILED${CURRENT_STEP:+ in step '$CURRENT_STEP'} (exit $rc)"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.25 s until it succeeds
wait_for() {
  local timeout=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || { log "$what did not answer within ${timeout}s"; return 1; }
    sleep 0.25
  done
}
in_ci() { [[ -n ${CI:-} && ${CI,,} != @(0|false|no) ]]; }
QUICK_LOOP="MLGIT_SKIP_INTEGRATION_SETUP=1 bash tests/run.sh -m 'not integration'"
need_root() {
  ((EUID == 0)) || die "$1 needs root (run as root, or install/start it yourself).
    For the quick unit loop without docker, registry or apt: $QUICK_LOOP"
}
tail_log() { [[ -f $1 ]] && { log "last lines of $1:"; tail -n 25 "$1" >&2; }; return 0; }

# ---------------------------------------------------------------------------------------------
apt_packages() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    log "all apt packages present"
    return
  fi
  need_root "apt-get install ${missing[*]}"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local apt_log=/var/log/mlgit-apt.log
  apt-get update -qq -o DPkg::Lock::Timeout=300 </dev/null >"$apt_log" 2>&1 || { tail_log "$apt_log"; die "apt-get update failed"; }
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 "${missing[@]}" </dev/null >>"$apt_log" 2>&1 \
    || { tail_log "$apt_log"; die "apt-get install ${missing[*]} failed (log: $apt_log)"; }
}

# Debian's own python3 refuses `pip install` (PEP 668) and has no pip without python3-pip: then the packages
# go into a virtualenv in .venv, as in the README's Quick start. An active virtualenv, pyenv's Python (the CI
# machines) or PIP_BREAK_SYSTEM_PACKAGES=1 (a throwaway CI container) is used as it is.
externally_managed() {
  "$PYTHON" -c 'import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.isfile(marker) else 1)'
}
python_env() {
  [[ -z ${VIRTUAL_ENV:-} && -z ${PIP_BREAK_SYSTEM_PACKAGES:-} ]] && externally_managed || return 0
  if [[ ! -x $ROOT/.venv/bin/python ]]; then
    log "$PYTHON is externally managed (PEP 668): making a virtualenv in .venv"
    "$PYTHON" -m venv "$ROOT/.venv" || die "$PYTHON -m venv failed (Debian: apt-get install python3-venv)"
  fi
  PYTHON=$ROOT/.venv/bin/python
  log "using $PYTHON"
}

python_packages() {
  local targets=(-e ".[test]") key stamp="$CACHE_DIR/pip-install.stamp"
  python_env
  if [[ -f serving_runtime/pyproject.toml ]]; then
    targets+=(-e ./serving_runtime)
  else
    log "serving_runtime/pyproject.toml does not exist yet: skipping the serving runtime"
  fi
  # Reinstall only when a pyproject.toml or the interpreter changed (editable: code is read in place).
  local files=(pyproject.toml)
  [[ -f serving_runtime/pyproject.toml ]] && files+=(serving_runtime/pyproject.toml)
  key=$(cat "${files[@]}" | sha256sum | cut -c1-16)
  key="$key $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  if [[ -f $stamp && "$(cat "$stamp")" == "$key" ]] && "$PYTHON" -c 'import mlgit' 2>/dev/null; then
    log "python packages up to date (${stamp#"$ROOT"/})"
    return
  fi
  "$PYTHON" -m pip install -q --progress-bar off --root-user-action=ignore "${targets[@]}" || die "pip install ${targets[*]} failed"
  mkdir -p "$CACHE_DIR"
  printf '%s\n' "$key" >"$stamp"
}

gitlab_ci_local() {
  local have=""
  if [[ -x $GITLAB_CI_LOCAL ]]; then
    have=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
      "$NODE_PREFIX/node_modules/gitlab-ci-local/package.json" 2>/dev/null || true)
  fi
  if [[ $have == "$GITLAB_CI_LOCAL_VERSION" ]]; then
    log "gitlab-ci-local $have present"
    return
  fi
  command -v npm >/dev/null || die "npm not found: gitlab-ci-local needs Node 20 and npm"
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error \
    "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION" </dev/null >/dev/null \
    || die "npm install gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION failed"
  "$GITLAB_CI_LOCAL" --version >/dev/null || die "$GITLAB_CI_LOCAL does not run"
}

docker_answers() { curl -fsS --noproxy '*' --max-time 3 --unix-socket "$DOCKER_SOCK" http://localhost/_ping; }
dockerd_running() { pgrep -x dockerd >/dev/null; }
# The socket is there but this user may not talk to it (a laptop, not root, not in group docker).
docker_socket_denied() { [[ -S $DOCKER_SOCK ]] && ! [[ -r $DOCKER_SOCK && -w $DOCKER_SOCK ]]; }

docker_engine() {
  if docker_answers >/dev/null 2>&1; then
    log "docker engine answers on $DOCKER_SOCK"
    return
  fi
  if docker_socket_denied; then  # waiting would not help: say so at once
    die "permission denied on $DOCKER_SOCK ($(stat -c '%U:%G %A' "$DOCKER_SOCK"); you are $(id -un), groups: $(id -Gn)).
    Add yourself to its group and log in again (sudo usermod -aG $(stat -c %G "$DOCKER_SOCK") $(id -un)), or run as root.
    For the quick unit loop without docker: $QUICK_LOOP"
  fi
  if dockerd_running; then  # never start a second dockerd: it would fight the first over docker0
    log "a dockerd is running but not answering yet: waiting for it"
    wait_for 60 dockerd docker_answers || { tail_log "$DOCKERD_LOG"; die "the running dockerd does not answer"; }
    return
  fi
  need_root "starting dockerd"
  local driver pid
  for driver in overlay2 vfs; do
    log "starting dockerd --storage-driver=$driver (log: $DOCKERD_LOG)"
    # 9>&-: the daemon must not inherit the setup lock, or it holds it for as long as it runs.
    setsid dockerd --iptables=false --storage-driver="$driver" </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
    pid=$!
    local deadline=$(($(date +%s) + 60))
    while ! docker_answers >/dev/null 2>&1; do
      kill -0 "$pid" 2>/dev/null || break  # exited: try the next driver
      (($(date +%s) < deadline)) || { tail_log "$DOCKERD_LOG"; die "dockerd (pid $pid) did not answer in 60 s"; }
      sleep 0.25
    done
    if docker_answers >/dev/null 2>&1; then
      log "dockerd pid $pid answers ($driver)"
      return
    fi
    log "dockerd --storage-driver=$driver exited"
    tail_log "$DOCKERD_LOG"
  done
  die "dockerd would not start with overlay2 nor vfs (see $DOCKERD_LOG)"
}

registry_answers() { curl -fsS --noproxy '*' --max-time 3 "http://$REGISTRY_ADDR/v2/"; }

local_registry() {
  if registry_answers >/dev/null 2>&1; then
    log "registry answers on $REGISTRY_ADDR"
    return
  fi
  local config="$REGISTRY_DIR/config.yml" pid
  if pgrep -f "docker-registry serve $config" >/dev/null; then
    log "the registry is running but not answering yet: waiting for it"
    wait_for 30 registry registry_answers || { tail_log "$REGISTRY_LOG"; die "the running registry does not answer"; }
    return
  fi
  need_root "starting the registry"
  mkdir -p "$REGISTRY_DIR/storage"
  cat >"$config" <<EOF
# written by tests/run.sh
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/storage
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  log "starting docker-registry on $REGISTRY_ADDR (log: $REGISTRY_LOG)"
  setsid docker-registry serve "$config" </dev/null >>"$REGISTRY_LOG" 2>&1 9>&- &  # not the setup lock
  pid=$!
  local deadline=$(($(date +%s) + 30))
  until registry_answers >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { tail_log "$REGISTRY_LOG"; die "docker-registry exited (is $REGISTRY_ADDR taken?)"; }
    (($(date +%s) < deadline)) || { tail_log "$REGISTRY_LOG"; die "docker-registry did not answer in 30 s"; }
    sleep 0.25
  done
  log "registry pid $pid answers"
}

# A tag proves nothing: a half-imported base under the right name has no /bin/sh and fails every build
# late. The base must start a shell and its venv's python with ssl and venv.
BASE_IMAGE_CHECK='import ssl, venv, sys; assert sys.prefix == "/opt/venv", sys.prefix'
image_runs() {
  timeout 120 "$DOCKER" run --rm --network none "$1" /bin/sh -c "python3 -c '$BASE_IMAGE_CHECK'"
}
have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
drop_broken_image() {  # drop_broken_image WHY: removes $BASE_IMAGE so that it is loaded or built again
  log "WARNING: $BASE_IMAGE $1 but does not run (no /bin/sh or no working python3): removing it"
  "$DOCKER" rmi -f "$BASE_IMAGE" >/dev/null || die "docker rmi -f $BASE_IMAGE failed"
}

base_image() {
  local recipe cache tmp
  recipe=$(printf '%s\n' "${MMDEBSTRAP_ARGS[@]}" "$IMPORT_CHANGE" | sha256sum | cut -c1-12)
  cache="$SYSTEM_CACHE/local-python-3.11-slim-$recipe.tar.gz"
  if have_image "$BASE_IMAGE"; then
    if image_runs "$BASE_IMAGE" >/dev/null 2>&1; then
      log "$BASE_IMAGE present in dockerd and runs"
    else
      drop_broken_image "is present in dockerd"
    fi
  fi
  if ! have_image "$BASE_IMAGE" && [[ -s $cache ]]; then
    log "loading $BASE_IMAGE from $cache"
    if gzip -dc "$cache" | "$DOCKER" load -q >/dev/null && image_runs "$BASE_IMAGE" >/dev/null 2>&1; then
      log "loaded and checked"
    else
      log "WARNING: the cached $cache is broken: deleting it"
      rm -f "$cache"
      have_image "$BASE_IMAGE" && drop_broken_image "was loaded from the cache"
    fi
  fi
  if ! have_image "$BASE_IMAGE"; then
    need_root "mmdebstrap"
    mkdir -p "$SYSTEM_CACHE"
    tmp=$(mktemp -d "$SYSTEM_CACHE/build.XXXXXX")
    log "building $BASE_IMAGE with mmdebstrap (about a minute; log: $tmp/mmdebstrap.log)"
    # Into a file first: a root filesystem truncated by a failed mmdebstrap must never be imported.
    mmdebstrap "${MMDEBSTRAP_ARGS[@]}" </dev/null >"$tmp/rootfs.tar" 2>"$tmp/mmdebstrap.log" \
      || { tail_log "$tmp/mmdebstrap.log"; die "mmdebstrap failed (log kept in $tmp)"; }
    log "root filesystem built ($(du -h "$tmp/rootfs.tar" | cut -f1)), importing"
    "$DOCKER" import -c "$IMPORT_CHANGE" "$tmp/rootfs.tar" "$BASE_IMAGE" >/dev/null || die "docker import failed"
    image_runs "$BASE_IMAGE" || die "$BASE_IMAGE was built but does not run (see above; files kept in $tmp)"
    log "imported and checked, caching"
    "$DOCKER" save "$BASE_IMAGE" | gzip -1 >"$tmp/image.tar.gz" || die "docker save failed"
    mv "$tmp/image.tar.gz" "$cache"
    rm -rf "$tmp"
    log "cached as $cache ($(du -h "$cache" | cut -f1))"
  fi
  # buildah cannot see dockerd's images: it takes the base from the registry.
  local remote="$REGISTRY_ADDR/$BASE_IMAGE" pushed
  pushed=$(curl -fsSI --noproxy '*' --max-time 5 \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/${BASE_IMAGE%%:*}/manifests/${BASE_IMAGE##*:}" 2>/dev/null \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }' || true)
  if [[ -n $pushed ]] && "$DOCKER" image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$BASE_IMAGE" \
    | grep -qxF "${remote%:*}@$pushed"; then
    log "$remote already in the registry ($pushed)"
    return
  fi
  "$DOCKER" tag "$BASE_IMAGE" "$remote"
  "$DOCKER" push -q "$remote" >/dev/null || die "docker push $remote failed"
  log "pushed $remote"
}

# kubectl comes with the machine image (Debian bookworm's kubernetes-client is 1.20, too old), so a
# machine may lack it: then say which tests are skipped (tests/fixtures_integration.py skips them, in
# CI too) instead of stopping the whole run. MLGIT_TEST_KUBECTL, else /usr/bin/kubectl, else PATH.
KUBECTL_TESTS="tests/manifests, tests/policy, tests/cluster, promote, canary analysis and the pipeline jobs (NEEDS_KUBECTL in tests/fixtures_integration.py; pytest's summary lists each one)"
find_kubectl() {
  if [[ -n ${MLGIT_TEST_KUBECTL:-} ]]; then
    [[ -x $MLGIT_TEST_KUBECTL ]] && printf '%s\n' "$MLGIT_TEST_KUBECTL"
  elif [[ -x $KUBECTL_DEFAULT ]]; then
    printf '%s\n' "$KUBECTL_DEFAULT"
  else
    command -v kubectl
  fi
}

check_kubectl() {
  local found version
  if found=$(find_kubectl); then
    version=$("$found" version --client 2>&1) || die "$found version --client failed: $version"
    KUBECTL=$found
    log "${version%%$'\n'*} at $KUBECTL"
  else
    KUBECTL=""
    log "WARNING: kubectl not found (${MLGIT_TEST_KUBECTL:+MLGIT_TEST_KUBECTL=$MLGIT_TEST_KUBECTL, }$KUBECTL_DEFAULT, PATH)."
    log "WARNING: these tests will be SKIPPED$(in_ci && echo " (even under CI)"): $KUBECTL_TESTS."
    log "WARNING: install kubectl 1.27 or newer (kustomize built in) to run them."
  fi
}

# The Go-built components. Without Go they are skipped with a warning outside CI; CI must have them.
have_go() {
  command -v go >/dev/null && return 0
  in_ci && die "go not found: CI builds the control plane, the CRDs and OPA/conftest from source"
  log "WARNING: go not found: the tests of $1 will be SKIPPED (install Go >= 1.26, then run this again)"
  return 1
}

# export_lines TEXT: export each NAME=value line of a script's output that names a test variable
export_lines() {
  local line
  while IFS= read -r line; do
    [[ $line =~ ^(MLGIT_TEST_[A-Z_]+|KUBECONFIG)=(.*)$ ]] || continue
    if [[ ${BASH_REMATCH[1]} == KUBECONFIG ]]; then
      export MLGIT_TEST_KUBECONFIG="${BASH_REMATCH[2]}"
    else
      export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
    fi
  done <<<"$1"
}

crds() {  # CRD schemas generated from cert-manager's, Gateway API's and prometheus-operator's Go types
  [[ -n ${MLGIT_TEST_CRDS:-} ]] && { log "MLGIT_TEST_CRDS=$MLGIT_TEST_CRDS (given)"; return; }
  have_go "the CRD schemas" || return 0
  local out
  out=$(bash tests/cluster/crds.sh) || die "tests/cluster/crds.sh failed (its log is above)"
  export_lines "$out"
  [[ -n ${MLGIT_TEST_CRDS:-} ]] || die "tests/cluster/crds.sh printed no MLGIT_TEST_CRDS line"
}

policy_engines() {  # OPA and conftest, for tests/policy/test_real_engines.py
  [[ -n ${MLGIT_TEST_OPA:-} && -n ${MLGIT_TEST_CONFTEST:-} ]] && { log "OPA and conftest given"; return; }
  have_go "OPA and conftest" || return 0
  local out
  out=$(bash tests/policy/real-engines.sh) || die "tests/policy/real-engines.sh failed (its log is above)"
  export_lines "$out"
  log "OPA $MLGIT_TEST_OPA, conftest $MLGIT_TEST_CONFTEST"
}

# The real Kubernetes control plane of tests/cluster, left running like dockerd (a second run reuses
# it; `bash tests/cluster/control-plane.sh down` stops it). MLGIT_TEST_KUBECONFIG given: that cluster.
control_plane() {
  [[ -n ${MLGIT_TEST_KUBECONFIG:-} ]] && { log "MLGIT_TEST_KUBECONFIG=$MLGIT_TEST_KUBECONFIG (given)"; return; }
  have_go "tests/cluster (a Kubernetes control plane)" || return 0
  if [[ -z $KUBECTL ]]; then
    log "WARNING: no kubectl: the control plane is not started and tests/cluster will be SKIPPED"
    return
  fi
  local out
  out=$(MLGIT_TEST_KUBECTL=$KUBECTL bash tests/cluster/control-plane.sh up) \
    || die "tests/cluster/control-plane.sh up failed (its log is above; component logs in /tmp/mlgit-control-plane/logs)"
  export_lines "$out"
  log "control plane ready: MLGIT_TEST_KUBECONFIG=$MLGIT_TEST_KUBECONFIG"
  # cert-manager's controller: tests/cluster/test_tls.py starts it per module, within a test's time limit.
  bash tests/cluster/cert-manager.sh build >/dev/null || die "tests/cluster/cert-manager.sh build failed (its log is above)"
  # A real kubelet and containerd (tests/cluster/test_real_node.py) change host settings while they run
  # (sysctls, iptables chains, a bridge): under CI, or where MLGIT_TEST_WITH_KUBELET=1 asks for it.
  if [[ ${MLGIT_TEST_WITH_KUBELET:-} == 1 ]] || { in_ci && [[ ${MLGIT_TEST_WITH_KUBELET:-} != 0 ]]; }; then
    export MLGIT_TEST_WITH_KUBELET=1
    bash tests/cluster/kubelet.sh build >/dev/null || die "tests/cluster/kubelet.sh build failed (its log is above)"
  else
    log "the real-node test (tests/cluster/test_real_node.py) is off: MLGIT_TEST_WITH_KUBELET=1 turns it on"
  fi
}

ruff_check() {
  "$PYTHON" -m ruff check --quiet . || die "ruff found problems (above); \`ruff check --fix .\` fixes the safe ones"
}

# The Debian client first on PATH for tests and for mlgit code that runs `docker`: it matches the
# 20.10 engine and does BuildKit builds without the buildx plugin the newer client would need.
docker_on_path() {
  [[ -x $DOCKER ]] || return 0
  [[ "$(command -v docker || true)" == "$DOCKER" ]] && return 0
  mkdir -p "$CACHE_DIR/bin"
  ln -sfn "$DOCKER" "$CACHE_DIR/bin/docker"
  export PATH="$CACHE_DIR/bin:$PATH"
}

# ---------------------------------------------------------------------------------------------
# One setup at a time per machine: two runs must not both start dockerd or build the base image.
take_setup_lock() {
  exec 9>"${TMPDIR:-/tmp}/mlgit-test-setup.lock"
  if ! flock -n 9; then
    log "another tests/run.sh is setting up: waiting for it (at most 15 min)"
    flock -w 900 9 || die "gave up waiting for ${TMPDIR:-/tmp}/mlgit-test-setup.lock"
  fi
}

export_test_environment() {
  export MLGIT_TEST_REGISTRY="${MLGIT_TEST_REGISTRY:-$REGISTRY_ADDR}"
  export MLGIT_TEST_BASE_IMAGE="${MLGIT_TEST_BASE_IMAGE:-$BASE_IMAGE}"
  export MLGIT_TEST_REGISTRY_BASE_IMAGE="${MLGIT_TEST_REGISTRY_BASE_IMAGE:-$REGISTRY_ADDR/$BASE_IMAGE}"
  export MLGIT_TEST_DOCKER_CLI="${MLGIT_TEST_DOCKER_CLI:-$DOCKER}"
  if [[ -n $KUBECTL ]]; then export MLGIT_TEST_KUBECTL="${MLGIT_TEST_KUBECTL:-$KUBECTL}"; fi
  export MLGIT_TEST_BUILDAH="${MLGIT_TEST_BUILDAH:-/usr/bin/buildah}"
  if [[ -x $GITLAB_CI_LOCAL ]]; then
    export MLGIT_GITLAB_CI_LOCAL="${MLGIT_GITLAB_CI_LOCAL:-$GITLAB_CI_LOCAL}"
  fi
}

main() {
  trap summary EXIT
  set -E
  trap 'log "failed: \`$BASH_COMMAND\` (tests/run.sh line $LINENO)"' ERR
  take_setup_lock
  if [[ ${MLGIT_SKIP_INTEGRATION_SETUP:-} == 1 ]]; then
    log "MLGIT_SKIP_INTEGRATION_SETUP=1: no apt, docker, registry, base image or npm step"
    step "python packages" python_packages
    step "kubectl" check_kubectl
  else
    step "apt packages" apt_packages
    step "python packages" python_packages
    step "gitlab-ci-local" gitlab_ci_local
    step "docker engine" docker_engine
    step "local registry" local_registry
    step "base image" base_image
    step "kubectl" check_kubectl
    step "CRDs" crds
    step "policy engines" policy_engines
    step "control plane" control_plane
  fi
  docker_on_path
  exec 9>&-  # release the setup lock: test runs may overlap
  export_test_environment

  step "ruff" ruff_check
  trap - EXIT
  summary
  log "pytest $*"
  # Exit status is pytest's own: 5 (no tests collected) fails the run like any other failure.
  exec "$PYTHON" -m pytest "$@"
}

# Run only when executed; `source tests/run.sh` just defines the functions (tests/test_run_sh.py).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
