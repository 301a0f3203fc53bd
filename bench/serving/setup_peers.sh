#!/usr/bin/env bash
# Creates one virtual environment per peer server under $BENCH_PEERS (default /tmp/bench-peers), with pinned
# versions, plus the ghz gRPC load generator. Idempotent: a venv whose pins have not changed is kept.
#
#   bash bench/serving/setup_peers.sh            # every peer (about 5 minutes on a fresh machine)
#   bash bench/serving/setup_peers.sh kserve     # one peer
#
# Why each pin: MLServer 1.7.1's inference worker dies with uvloop >= 0.22; nvidia-pytriton's Python backend
# stub fails under pyenv's 3.11.7 (`_thread.RLock ... _recursion_count`), so it gets Debian's /usr/bin/python3
# (needs python3-venv). Every peer runs the onnxruntime that mlgit-serving runs, so the model work is equal.
set -euo pipefail

ROOT="${BENCH_PEERS:-/tmp/bench-peers}"
PYTHON="${PEER_PYTHON:-python3}"
ORT="onnxruntime==1.32.0"
declare -A PINS=(
  [mlserver]="mlserver==1.7.1 uvloop==0.21.0 $ORT"
  [kserve]="kserve==0.21.0 $ORT"
  [bentoml]="bentoml==1.4.40 $ORT"
  [fastapi]="fastapi==0.165.0 uvicorn[standard]==0.54.0 numpy==2.4.6 $ORT"
  [pytriton]="nvidia-pytriton==0.7.0 $ORT"
)
GHZ="github.com/bojand/ghz/cmd/ghz@v0.121.0"

peer_python() {
  if [[ "$1" == pytriton ]]; then echo /usr/bin/python3; else echo "$PYTHON"; fi
}

setup_peer() {
  local peer="$1" venv="$ROOT/$1"
  local pins="${PINS[$peer]:?unknown peer $peer (known: ${!PINS[*]})}"
  if [[ -f "$venv/.pins" && "$(cat "$venv/.pins")" == "$pins" ]]; then
    echo "$peer: up to date ($venv)"
    return
  fi
  rm -rf "$venv"
  "$(peer_python "$peer")" -m venv "$venv"
  # shellcheck disable=SC2086 # the pins are a word list on purpose
  "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
  "$venv/bin/pip" freeze --disable-pip-version-check >"$venv/.freeze"  # what the pins pulled in, for the record
  echo "$pins" >"$venv/.pins"
  echo "$peer: installed $pins"
}

setup_ghz() {
  if [[ -x "$ROOT/bin/ghz" ]]; then
    echo "ghz: up to date ($ROOT/bin/ghz)"
  elif command -v go >/dev/null; then
    GOBIN="$ROOT/bin" CGO_ENABLED=0 go install "$GHZ"
    echo "ghz: installed $GHZ"
  else
    echo "ghz: skipped (no go toolchain): the gRPC cells will be skipped" >&2
  fi
}

mkdir -p "$ROOT"
if [[ $# -eq 0 ]]; then
  set -- "${!PINS[@]}" ghz
fi
for peer in "$@"; do
  if [[ "$peer" == ghz ]]; then setup_ghz; else setup_peer "$peer"; fi
done
