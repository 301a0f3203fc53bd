#!/usr/bin/env bash
# bench/gpu/run.sh [CARRY_DIR]: the CNN benchmark on an NVIDIA GPU (mlgit-serving on CUDA vs raw onnxruntime
# on CUDA), on a machine without network, in under 8 minutes.
#
# CARRY_DIR (default /tmp/mlgit-gpu-carry) holds what bench/gpu/prepare.sh split into bench/gpu/carry/g*/ and
# the device calls it prints gathered there: wheel parts (onnxruntime-gpu and the runtime's dependencies for
# the machine's python3), wrk, and MANIFEST. This script joins and verifies them (sha256), installs the
# wheels into a private folder (ahead of any onnxruntime already installed), asserts that
# CUDAExecutionProvider is active, checks that mlgit-serving refuses a gpu model with CUDA hidden, and
# prints one markdown table (bench/gpu/bench_gpu.py).
#
# Exit status: 0 table printed; 1 a check failed (CUDA not active, no refusal, wrong answers);
# 2 the carried files are missing or damaged; 3 no NVIDIA GPU on this machine.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CARRY="${1:-/tmp/mlgit-gpu-carry}"
export PATH="/usr/local/nvidia/bin:$PATH"

if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "bench/gpu/run.sh: no NVIDIA GPU on this machine (nvidia-smi -L lists none); run it where one is" >&2
  exit 3
fi
if [[ ! -f "$CARRY/MANIFEST" ]]; then
  echo "bench/gpu/run.sh: $CARRY/MANIFEST is missing: carry every group bench/gpu/prepare.sh printed" >&2
  exit 2
fi

# shellcheck source=bench/gpu/parts.sh
source "$HERE/parts.sh"
WORK="$(mktemp -d /tmp/mlgit-gpu-run.XXXXXX)"
join_parts "$CARRY/MANIFEST" "$CARRY" "$WORK/files" || exit 2
python3 -m pip install --quiet --no-index --no-deps --no-compile --disable-pip-version-check \
  --target "$WORK/site" "$WORK"/files/*.whl
tar -xzf "$WORK/files/wrk.tar.gz" -C "$WORK"

# onnxruntime-gpu finds CUDA and cuDNN through the loader: point it at the NVIDIA wheels' libraries that the
# machine's Python already has (the image's PyTorch brings CUDA 13 and cuDNN 9).
NVIDIA_LIBS="$(python3 - <<'PY'
import pathlib
try:
    import nvidia
except ImportError:
    raise SystemExit(0)
dirs = {str(p.parent) for root in nvidia.__path__ for p in pathlib.Path(root).rglob("lib*.so*")}
print(":".join(sorted(dirs)))
PY
)"
export LD_LIBRARY_PATH="$WORK/wrk/lib${NVIDIA_LIBS:+:$NVIDIA_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$WORK/wrk/bin:$PATH"
export PYTHONPATH="$WORK/site:$REPO/serving_runtime${PYTHONPATH:+:$PYTHONPATH}"
wrk -v 2>&1 | head -1 >&2 || true  # wrk -v exits 1 after printing its version
exec python3 "$HERE/bench_gpu.py"
