#!/usr/bin/env bash
# Generate the CustomResourceDefinitions mlgit's manifests use, from each project's own Go API types,
# with controller-gen (sigs.k8s.io/controller-tools), at the pinned versions below.
#
#   bash tests/cluster/crds.sh                      prints MLGIT_TEST_CRDS=<dir> as its last line
#   eval "$(bash tests/cluster/crds.sh | tail -1)"  then export MLGIT_TEST_CRDS
#
# <dir> holds one CRD per file (kubectl apply --server-side -f <dir>; some exceed client-side apply's
# 256 KiB annotation limit) and nothing else but versions.txt:
#   cert-manager        every CRD of cert-manager.io and acme.cert-manager.io (Certificate, Issuer,
#                       ClusterIssuer, CertificateRequest, Order, Challenge), as cert-manager generates them
#   Gateway API         the standard channel (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant,
#                       BackendTLSPolicy, ListenerSet, TCPRoute, TLSRoute, UDPRoute): controller-gen, then
#                       tests/cluster/gateway-standard.go applies the channel's rules (see that file)
#   prometheus-operator ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1)
#   OpenShift           Route (route.openshift.io/v1): the CRD manifest the openshift/api module publishes
#                       (route/v1/zz_generated.crd-manifests/routes.crd.yaml). OpenShift's own generator
#                       (feature-gated fields, its markers) made it, controller-gen cannot; the module is
#                       downloaded as a Go module (`go mod download`) and the file copied into the cache only.
#
# Go modules are used as Go modules: a throwaway module (go.mod written here, `go mod tidy`) requires the
# pinned versions, builds controller-gen from it and generates from the API packages it resolves. Nothing
# is taken out of a module archive, and nothing generated is committed. The result is cached under
# $MLGIT_CRDS_CACHE (default /var/cache/mlgit/crds)/<key>, key = hash of this script and
# gateway-standard.go (so of every version and of the recipe): a second run prints the same directory at
# once. Go's module and build caches stay at Go's defaults. Logs go to stderr.
# Measured on a 2-core machine (busy with a Kubernetes build): cold, with empty Go caches, 200 s (80 s of
# CPU) and +490 MB module cache, +280 MB build cache, 2.3 MB of CRDs; with warm Go caches (after a pin or
# recipe change) 16 s; cached: 0.02 s.
set -euo pipefail

# Pins. The API modules decide the Kubernetes libraries by minimum version selection (k8s.io/* v0.37.x,
# from prometheus-operator): controller-tools v0.23 is the release built against those.
CONTROLLER_TOOLS_VERSION=v0.23.0
CERT_MANAGER_VERSION=v1.21.2        # github.com/cert-manager/cert-manager (root module: pkg/apis)
GATEWAY_API_VERSION=v1.6.3          # sigs.k8s.io/gateway-api (v1.7 needs Go 1.27)
PROMETHEUS_OPERATOR_VERSION=v0.95.2 # github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
# github.com/openshift/api has no release tags: a pseudo-version of its master (OpenShift 4.21 development).
OPENSHIFT_API_VERSION=v0.0.0-20251020135558-286504b695bc

CERT_MANAGER=github.com/cert-manager/cert-manager
GATEWAY_API=sigs.k8s.io/gateway-api
MONITORING=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
CERT_MANAGER_PACKAGES=("$CERT_MANAGER/pkg/apis/certmanager/v1" "$CERT_MANAGER/pkg/apis/acme/v1")
# Every version package of the standard kinds: a CRD lists all its versions (alpha ones unserved).
GATEWAY_API_PACKAGES=("$GATEWAY_API/apis/v1" "$GATEWAY_API/apis/v1beta1" "$GATEWAY_API/apis/v1alpha2"
                      "$GATEWAY_API/apis/v1alpha3")
MONITORING_PACKAGES=("$MONITORING/v1")
# The v1 package also defines Prometheus, Alertmanager, ...: the tests use these two only.
MONITORING_CRDS=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${MLGIT_CRDS_CACHE:-/var/cache/mlgit/crds}"
GO_MIN_MINOR=26 # the API modules' go.mod say go 1.26.0

log() { printf '[crds.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[crds.sh] ERROR: %s\n' "$*" >&2; exit 1; }
quiet() { # quiet COMMAND...: its output goes to $BUILD_LOG, shown only when it fails
  "$@" >>"$BUILD_LOG" 2>&1 || { tail -n 30 "$BUILD_LOG" >&2; die "\`$*\` failed (log: $BUILD_LOG)"; }
}

KEY=$(cat "${BASH_SOURCE[0]}" "$HERE/gateway-standard.go" | sha256sum | cut -c1-16)
OUT="$CACHE_ROOT/$KEY"
if [[ -f $OUT/versions.txt ]]; then
  log "cached: $OUT"
  echo "MLGIT_TEST_CRDS=$OUT"
  exit 0
fi

command -v go >/dev/null || die "go not found: generating the CRDs needs Go >= 1.$GO_MIN_MINOR on PATH (https://go.dev/dl/)"
# GOTOOLCHAIN=local: never let the go command fetch another toolchain behind our back.
export GOTOOLCHAIN=local
go_version=$(go env GOVERSION)
if ! [[ $go_version =~ ^go1\.([0-9]+) ]] || ((BASH_REMATCH[1] < GO_MIN_MINOR)); then
  die "$(command -v go) is $go_version: generating the CRDs needs Go >= 1.$GO_MIN_MINOR"
fi

mkdir -p "$CACHE_ROOT" 2>/dev/null || die "cannot create $CACHE_ROOT: run as root, or point MLGIT_CRDS_CACHE at a writable folder"
# One generation at a time per machine (tests/run.sh and tests/cluster/control-plane.sh may both call this).
exec 8>"$CACHE_ROOT/.lock"
flock -w 1800 8 || die "gave up waiting for $CACHE_ROOT/.lock"
if [[ -f $OUT/versions.txt ]]; then # made by whoever held the lock
  echo "MLGIT_TEST_CRDS=$OUT"
  exit 0
fi

START=$(date +%s)
BUILD_LOG="$CACHE_ROOT/build.log" # of the last generation; kept for a look after a failure
: >"$BUILD_LOG"
WORK=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/mod/gateway-standard" "$WORK/raw/gateway-api" "$WORK/raw/monitoring" "$WORK/out"
cd "$WORK/mod"

log "module: controller-tools $CONTROLLER_TOOLS_VERSION, cert-manager $CERT_MANAGER_VERSION," \
  "gateway-api $GATEWAY_API_VERSION, prometheus-operator $PROMETHEUS_OPERATOR_VERSION (in $WORK/mod)"
quiet go mod init mlgit.invalid/crds
# Blank imports keep the API packages in the module through `go mod tidy`; controller-gen loads them from here.
{
  echo "// Package apis pins the API packages whose CRDs tests/cluster/crds.sh generates."
  echo "package apis"
  echo
  echo "import ("
  printf '\t_ "%s"\n' "${CERT_MANAGER_PACKAGES[@]}" "${GATEWAY_API_PACKAGES[@]}" "${MONITORING_PACKAGES[@]}"
  echo ")"
} >apis.go
cp "$HERE/gateway-standard.go" gateway-standard/main.go
quiet go get -tool "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
quiet go get "$CERT_MANAGER@$CERT_MANAGER_VERSION" "$GATEWAY_API@$GATEWAY_API_VERSION" \
  "$MONITORING@$PROMETHEUS_OPERATOR_VERSION"
quiet go mod tidy
# tidy must not have moved a pin (a newer requirement elsewhere in the graph would): say so if it did.
for pin in "sigs.k8s.io/controller-tools $CONTROLLER_TOOLS_VERSION" "$CERT_MANAGER $CERT_MANAGER_VERSION" \
  "$GATEWAY_API $GATEWAY_API_VERSION" "$MONITORING $PROMETHEUS_OPERATOR_VERSION"; do
  [[ "$(go list -m "${pin% *}")" == "$pin" ]] || die "go mod tidy selected $(go list -m "${pin% *}"), not ${pin#* }"
done

log "building controller-gen and gateway-standard"
quiet go build -o "$WORK/bin/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen
quiet go build -o "$WORK/bin/gateway-standard" ./gateway-standard

controller_gen() { # controller_gen OUT_DIR PACKAGE...: one CRD file per kind in OUT_DIR
  local dir=$1
  shift
  quiet "$WORK/bin/controller-gen" crd "${@/#/paths=}" "output:crd:dir=$dir"
}

log "generating cert-manager CRDs"
controller_gen "$WORK/out" "${CERT_MANAGER_PACKAGES[@]}"
log "generating Gateway API CRDs, standard channel"
controller_gen "$WORK/raw/gateway-api" "${GATEWAY_API_PACKAGES[@]}"
quiet "$WORK/bin/gateway-standard" "$WORK/raw/gateway-api" "$WORK/out"
log "generating prometheus-operator CRDs"
controller_gen "$WORK/raw/monitoring" "${MONITORING_PACKAGES[@]}"
for crd in "${MONITORING_CRDS[@]}"; do
  cp "$WORK/raw/monitoring/$crd" "$WORK/out/"
done

log "copying the Route CRD of openshift/api $OPENSHIFT_API_VERSION"
openshift_api=$(go mod download -json "github.com/openshift/api@$OPENSHIFT_API_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[[ -n $openshift_api ]] || die "go mod download github.com/openshift/api@$OPENSHIFT_API_VERSION gave no module directory"
cp "$openshift_api/route/v1/zz_generated.crd-manifests/routes.crd.yaml" "$WORK/out/route.openshift.io_routes.yaml"
chmod 644 "$WORK/out/route.openshift.io_routes.yaml" # the module cache is read-only

for kind in Certificate Issuer ClusterIssuer CertificateRequest Order Challenge Gateway GatewayClass HTTPRoute \
  GRPCRoute ReferenceGrant ServiceMonitor PrometheusRule Route; do
  grep -lqx "    kind: $kind" "$WORK"/out/*.yaml || die "no CRD of kind $kind was generated"
done
{
  echo "# CRDs generated by tests/cluster/crds.sh (key $KEY) with $go_version"
  go list -m sigs.k8s.io/controller-tools "$CERT_MANAGER" "$GATEWAY_API" "$MONITORING" k8s.io/apiextensions-apiserver
  echo "github.com/openshift/api $OPENSHIFT_API_VERSION"
} >"$WORK/out/versions.txt"
rm -rf "$OUT" # a partial copy left by hand; never one of ours (they appear whole, by mv)
mv "$WORK/out" "$OUT"
log "generated $(find "$OUT" -name '*.yaml' | wc -l) CRDs in $(($(date +%s) - START)) s: $OUT"
echo "MLGIT_TEST_CRDS=$OUT"
