"""The committed gRPC stubs are what grpcio-tools makes of the committed proto (regenerated and compared)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "serving_runtime"
PROTO = Path("mlgit_serving/proto/grpc_predict_v2.proto")
GENERATED = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py")


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    # The same command serving_runtime/README.md gives, run on a copy so that the paths in the stubs agree.
    (tmp_path / PROTO).parent.mkdir(parents=True)
    shutil.copy(RUNTIME / PROTO, tmp_path / PROTO)
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "grpc_tools.protoc", "-I", str(tmp_path)]
    command += [f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", str(tmp_path / PROTO)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    for name in GENERATED:
        committed = (RUNTIME / PROTO.parent / name).read_text()
        assert (out / PROTO.parent / name).read_text() == committed, (
            f"{PROTO.parent / name} is stale: regenerate the stubs (serving_runtime/README.md, gRPC)"
        )
