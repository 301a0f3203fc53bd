#!/usr/bin/env bash
# bench/gpu/prepare.sh: run HERE (with network), from anywhere in the checkout. Downloads what
# bench/gpu/run.sh needs on the GPU machine, which has no network: onnxruntime-gpu and mlgit-serving's
# dependencies as wheels for that machine's Python (3.12, x86-64; the packages its image already has are
# left out), and wrk (Debian's binary and its LuaJIT library). Splits them into parts (< 60 MiB) with a
# sha256 MANIFEST (bench/gpu/parts.sh), packs the parts into bench/gpu/carry/g1, g2, ... (git-ignored),
# each small enough to travel in one device call beside the working tree (64 MiB per call in all), and
# prints the device calls that carry them into a warm machine and run the benchmark.
#
# Exit status: 0 prepared; 1 a download failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=bench/gpu/parts.sh
source "$HERE/parts.sh"

ORT_GPU="onnxruntime-gpu==1.31.1"  # CUDA 13 + cuDNN 9, like the device image's PyTorch
MAX_PART_BYTES=$((56 * 1024 * 1024))  # < 60 MiB
CALL_BYTES=$((64 * 1024 * 1024))
STAGE=/tmp/mlgit-gpu-carry  # where the parts gather on the device machine (outside the copied tree)
# The device image's Python packages (/work/.library/device/KINDS.md, "Python packages already there"):
# carrying them again would only cost transfer. protobuf is carried all the same: the runtime's gRPC stubs
# need >= 6.33.5, newer than the image may have.
DEVICE_HAS="anyio certifi click h11 httpcore httpx idna numpy packaging sympy mpmath flatbuffers
typing-extensions uvloop prometheus-client pyyaml annotated-doc setuptools"
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)

CARRY="$HERE/carry"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$CARRY"
mkdir -p "$CARRY" "$WORK/wheels" "$WORK/files" "$WORK/parts"

# 1. Wheels: the runtime's requirements (serving_runtime/pyproject.toml, onnxruntime swapped for the GPU
# build) resolved for the device's Python, then what the device already has dropped.
mapfile -t REQUIREMENTS < <(python3 - "$REPO/serving_runtime/pyproject.toml" <<'PY'
import sys, tomllib
for requirement in tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]:
    if not requirement.startswith("onnxruntime"):
        print(requirement.split(";")[0].strip())
PY
)
python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: --python-version 3.12 \
  --implementation cp "${PLATFORMS[@]/#/--platform=}" -d "$WORK/wheels" "$ORT_GPU" "${REQUIREMENTS[@]}"
for wheel in "$WORK"/wheels/*.whl; do
  name="$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]_' '[:lower:]-')"
  if [[ " ${DEVICE_HAS//$'\n'/ } " == *" $name "* ]]; then rm "$wheel"; else mv "$wheel" "$WORK/files/"; fi
done

# 2. wrk and its LuaJIT library, from Debian's packages (glibc 2.36: runs on the newer device image).
# (as root into a private folder: apt's _apt sandbox user could not write there)
(cd "$WORK" && apt-get download -o APT::Sandbox::User=root wrk libluajit-5.1-2 >/dev/null)
for deb in "$WORK"/*.deb; do dpkg -x "$deb" "$WORK/debs"; done
mkdir -p "$WORK/wrk/bin" "$WORK/wrk/lib"
cp "$WORK/debs/usr/bin/wrk" "$WORK/wrk/bin/"
cp -P "$WORK"/debs/usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2* "$WORK/wrk/lib/"
tar -czf "$WORK/files/wrk.tar.gz" -C "$WORK" wrk

# 3. Parts as large as one call allows beside the working tree (at most 56 MiB), and MANIFEST.
# (du skips, with a non-zero status, tracked files deleted in the working tree: they do not travel either)
tree_bytes="$(cd "$REPO" && { git ls-files -z; git ls-files -z --others --exclude-standard; } |
  { du -cb --files0-from=- 2>/dev/null || true; } | tail -1 | cut -f1)"
budget=$((CALL_BYTES - tree_bytes - 4 * 1024 * 1024))
if ((budget < 8 * 1024 * 1024)); then
  echo "prepare.sh: the working tree ($tree_bytes bytes) leaves less than 8 MiB per device call" >&2
  exit 1
fi
PART_BYTES=$((budget < MAX_PART_BYTES ? budget : MAX_PART_BYTES))
for file in "$WORK"/files/*; do split_file "$file" "$PART_BYTES" "$WORK/parts"; done

# 4. Groups, each at most one call's budget: the largest parts first, the small files fill the last one.
group=1 used=0
mkdir -p "$CARRY/g1"
cp "$WORK/parts/MANIFEST" "$CARRY/g1/"
while read -r size part; do
  if ((used + size > budget)); then
    group=$((group + 1)) used=0
    mkdir -p "$CARRY/g$group"
  fi
  cp "$part" "$CARRY/g$group/"
  used=$((used + size))
done < <(find "$WORK/parts" -name '*.part*' -printf '%s %p\n' | sort -rn)

# 5. The device calls: one per group, back to back (a machine stays warm only ~30 s between calls).
echo "Prepared $group groups in $CARRY ($(du -sh "$CARRY" | cut -f1)); working tree $((tree_bytes / 1048576)) MiB."
echo "Device calls, in order, each right after the previous one returns:"
for ((i = 1; i <= group; i++)); do
  command="mkdir -p $STAGE && cp bench/gpu/carry/g$i/* $STAGE/ && ls $STAGE | wc -l"
  if ((i == group)); then command+=" && bash bench/gpu/run.sh $STAGE"; fi
  timeout=$((i == group ? 540 : 120))
  echo "  run(carry=[\"bench/gpu/carry/g$i\"], timeout_s=$timeout, command=\"$command\")"
done
