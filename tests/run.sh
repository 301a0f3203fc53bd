#!/usr/bin/env bash
# Install what the test suite needs, start the real components it talks to, then run it.
#
#   bash tests/run.sh                     everything (this is what CI's .ci/run calls)
#   bash tests/run.sh -k registry -x      arguments go to pytest unchanged
#   MLGIT_SKIP_INTEGRATION_SETUP=1 bash tests/run.sh -m 'not integration'
#                                         quick unit run: pip install, ruff and pytest only
#
# Idempotent: every step first checks whether its work is already done (packages installed,
# dockerd and the registry answering, base image present), so a second run takes seconds.
# Meant for Debian 12 as root (see /work/shared/ENVIRONMENT.md); a failing step stops the run
# with a message saying what failed and where its log is.
#
# What the tests get (also the defaults tests/fixtures_integration.py falls back to):
#   MLGIT_TEST_REGISTRY=127.0.0.1:5000                 local registry (plain HTTP)
#   MLGIT_TEST_BASE_IMAGE=local/python:3.11-slim       base image in dockerd
#   MLGIT_TEST_REGISTRY_BASE_IMAGE=127.0.0.1:5000/local/python:3.11-slim   the same, for buildah
#   MLGIT_TEST_DOCKER_CLI=/usr/bin/docker              Debian client (BuildKit without buildx)
#   MLGIT_TEST_KUBECTL=/usr/bin/kubectl
#   MLGIT_TEST_BUILDAH=/usr/bin/buildah
#   MLGIT_GITLAB_CI_LOCAL=<repo>/.cache/node/node_modules/.bin/gitlab-ci-local
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
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
KUBECTL=/usr/bin/kubectl
DOCKER=/usr/bin/docker                        # /usr/local/bin/docker is a newer client without buildx
APT_PACKAGES=(docker.io docker-registry buildah mmdebstrap rsync wrk iproute2 git curl ca-certificates
              xz-utils gzip procps)
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
trap summary EXIT
set -E
trap 'log "failed: \`$BASH_COMMAND\` (tests/run.sh line $LINENO)"' ERR

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
need_root() { ((EUID == 0)) || die "$1 needs root (run as root, or install/start it yourself)"; }
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

python_packages() {
  local targets=(-e ".[test]") key stamp="$CACHE_DIR/pip-install.stamp"
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

docker_engine() {
  if docker_answers >/dev/null 2>&1; then
    log "docker engine answers on $DOCKER_SOCK"
    return
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

base_image() {
  local recipe cache tmp
  recipe=$(printf '%s\n' "${MMDEBSTRAP_ARGS[@]}" "$IMPORT_CHANGE" | sha256sum | cut -c1-12)
  cache="$SYSTEM_CACHE/local-python-3.11-slim-$recipe.tar.gz"
  if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE present in dockerd"
  elif [[ -s $cache ]]; then
    log "loading $BASE_IMAGE from $cache"
    gzip -dc "$cache" | "$DOCKER" load -q >/dev/null || die "docker load of $cache failed"
  else
    need_root "mmdebstrap"
    mkdir -p "$SYSTEM_CACHE"
    tmp=$(mktemp -d "$SYSTEM_CACHE/build.XXXXXX")
    log "building $BASE_IMAGE with mmdebstrap (about a minute; log: $tmp/mmdebstrap.log)"
    # Into a file first: a root filesystem truncated by a failed mmdebstrap must never be imported.
    mmdebstrap "${MMDEBSTRAP_ARGS[@]}" </dev/null >"$tmp/rootfs.tar" 2>"$tmp/mmdebstrap.log" \
      || { tail_log "$tmp/mmdebstrap.log"; die "mmdebstrap failed (log kept in $tmp)"; }
    log "root filesystem built ($(du -h "$tmp/rootfs.tar" | cut -f1)), importing"
    "$DOCKER" import -c "$IMPORT_CHANGE" "$tmp/rootfs.tar" "$BASE_IMAGE" >/dev/null || die "docker import failed"
    "$DOCKER" run --rm --network none "$BASE_IMAGE" python3 -c 'import ssl, venv, sys; assert sys.prefix == "/opt/venv"' \
      || die "$BASE_IMAGE was built but its python3 does not work"
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

check_kubectl() {
  if [[ -x $KUBECTL ]]; then
    local version
    version=$("$KUBECTL" version --client 2>&1) || die "$KUBECTL version --client failed: $version"
    log "${version%%$'\n'*} at $KUBECTL"
  else
    # Not installable from Debian bookworm (its kubernetes-client is 1.20): it comes with the machine image.
    in_ci && die "$KUBECTL not found: CI machines must have it (it comes with the machine image)"
    log "WARNING: $KUBECTL not found: tests that need kubectl will be skipped"
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
exec 9>"${TMPDIR:-/tmp}/mlgit-test-setup.lock"
if ! flock -n 9; then
  log "another tests/run.sh is setting up: waiting for it (at most 15 min)"
  flock -w 900 9 || die "gave up waiting for ${TMPDIR:-/tmp}/mlgit-test-setup.lock"
fi
if [[ ${MLGIT_SKIP_INTEGRATION_SETUP:-} == 1 ]]; then
  log "MLGIT_SKIP_INTEGRATION_SETUP=1: no apt, docker, registry, base image or npm step"
  step "python packages" python_packages
else
  step "apt packages" apt_packages
  step "python packages" python_packages
  step "gitlab-ci-local" gitlab_ci_local
  step "docker engine" docker_engine
  step "local registry" local_registry
  step "base image" base_image
  step "kubectl" check_kubectl
fi
docker_on_path
exec 9>&-  # release the setup lock: test runs may overlap

export MLGIT_TEST_REGISTRY="${MLGIT_TEST_REGISTRY:-$REGISTRY_ADDR}"
export MLGIT_TEST_BASE_IMAGE="${MLGIT_TEST_BASE_IMAGE:-$BASE_IMAGE}"
export MLGIT_TEST_REGISTRY_BASE_IMAGE="${MLGIT_TEST_REGISTRY_BASE_IMAGE:-$REGISTRY_ADDR/$BASE_IMAGE}"
export MLGIT_TEST_DOCKER_CLI="${MLGIT_TEST_DOCKER_CLI:-$DOCKER}"
export MLGIT_TEST_KUBECTL="${MLGIT_TEST_KUBECTL:-$KUBECTL}"
export MLGIT_TEST_BUILDAH="${MLGIT_TEST_BUILDAH:-/usr/bin/buildah}"
if [[ -x $GITLAB_CI_LOCAL ]]; then
  export MLGIT_GITLAB_CI_LOCAL="${MLGIT_GITLAB_CI_LOCAL:-$GITLAB_CI_LOCAL}"
fi

step "ruff" ruff_check
trap - EXIT
summary
log "pytest $*"
# Exit status is pytest's own: 5 (no tests collected) fails the run like any other failure.
exec "$PYTHON" -m pytest "$@"
