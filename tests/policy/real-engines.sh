#!/usr/bin/env bash
# Build the real policy engines, OPA and conftest, from the Go module proxy at pinned versions, once
# per machine, and say where they are:
#
#   bash tests/policy/real-engines.sh        prints MLGIT_TEST_OPA=<path> and MLGIT_TEST_CONFTEST=<path>
#
# stdout carries only those two lines (tests/run.sh exports them); progress goes to stderr.
# Each binary is cached under $MLGIT_GO_TOOLS_CACHE (default /var/cache/mlgit/go-tools) in a folder
# named tool-version, so a second run only checks that the binaries run (well under a second) and a
# version bump builds the new one beside the old.
#
# Go's module and build caches go to $CACHE/go/{mod,build}, not to Go's defaults in ~/go and
# ~/.cache: like tests/cluster/*.sh, everything a test build leaves on the machine lies under
# /var/cache/mlgit, where it can be measured (about 1.6 GB of modules and 1.2 GB of build cache) and
# removed in one place. Both only speed up a rebuild after a version bump: `rm -rf $CACHE/go` frees
# them and breaks nothing.
set -euo pipefail

OPA_MODULE=github.com/open-policy-agent/opa
OPA_VERSION=v1.22.3
CONFTEST_MODULE=github.com/open-policy-agent/conftest
# The newest release whose go.mod asks for no more than the machines' Go 1.26.8 (v0.71.1 says
# `go 1.26.8`; its `toolchain go1.27.1` line is only a preference). It embeds OPA v1.21.1.
CONFTEST_VERSION=v0.71.1
CACHE="${MLGIT_GO_TOOLS_CACHE:-/var/cache/mlgit/go-tools}"

log() { printf '[real-engines.sh] %s\n' "$*" >&2; }
die() { printf '[real-engines.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# Go's own installer puts it in /usr/local/go, which a non-login shell may not have on PATH.
command -v go >/dev/null 2>&1 || [[ ! -x /usr/local/go/bin/go ]] || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || die "go not found on PATH: OPA and conftest are built from source and need Go >= 1.26.8. \
Install Go and run this again; without the engines the real-engine policy tests skip (and fail under CI)."

# reports VERSION BINARY ARGS...: the binary runs and names VERSION (without the v) when asked
reports() {
  local version=${1#v} binary=$2
  shift 2
  [[ -x $binary ]] && "$binary" "$@" 2>/dev/null | grep -qF "$version"
}

# install_tool NAME PACKAGE VERSION LDFLAGS CHECK_ARGS...: prints the cached binary's path
install_tool() {
  local name=$1 package=$2 version=$3 ldflags=$4
  shift 4
  local dir="$CACHE/$name-$version" start tmp
  local binary="$dir/bin/$name"
  if reports "$version" "$binary" "$@"; then
    log "$name $version cached at $binary"
    printf '%s\n' "$binary"
    return
  fi
  mkdir -p "$CACHE"
  # Built into a scratch folder and renamed into place: an interrupted build never leaves a binary
  # that looks cached.
  tmp=$(mktemp -d "$CACHE/.build-$name.XXXXXX")
  start=$(date +%s)
  log "building $name $version (go install $package@$version; minutes on a cold machine)"
  # CGO_ENABLED=0: a static binary with no C toolchain involved. GOTOOLCHAIN=local: never fetch
  # another Go; a version whose go.mod needs a newer one fails here, loudly, instead.
  if ! CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$tmp/bin" go install -ldflags="$ldflags" "$package@$version" >&2; then
    rm -rf "$tmp"
    die "go install $package@$version failed (output above)"
  fi
  reports "$version" "$tmp/bin/$name" "$@" || { rm -rf "$tmp"; die "$name $version was built but does not run or report its version"; }
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "built $name $version in $(($(date +%s) - start)) s: $binary ($(du -h "$binary" | cut -f1))"
  printf '%s\n' "$binary"
}

mkdir -p "$CACHE" 2>/dev/null || die "cannot create $CACHE (run as root, or set MLGIT_GO_TOOLS_CACHE to a writable folder)"
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
# Two runs at once (tests/run.sh and a developer) must not build the same binary twice.
exec 8>"$CACHE/.lock"
flock -w 1800 8 || die "another real-engines.sh holds $CACHE/.lock for over 30 min"

# OPA reads its version from the module build info by itself; conftest needs it stamped (else "dev").
opa=$(install_tool opa "$OPA_MODULE" "$OPA_VERSION" "" version)
conftest=$(install_tool conftest "$CONFTEST_MODULE" "$CONFTEST_VERSION" \
  "-X $CONFTEST_MODULE/internal/version.Version=${CONFTEST_VERSION#v}" --version)
printf 'MLGIT_TEST_OPA=%s\n' "$opa"
printf 'MLGIT_TEST_CONFTEST=%s\n' "$conftest"
