"""What authentication costs on the inference fast path: the MLP of bench.py, JSON body, served by
mlgit-serving with MLGIT_SERVING_AUTH_MODE none, api-key and oidc (RS256 token, JWKS from a local server),
wrk posting with the Authorization header. Reports req/s and, less moved by other load on the machine,
the server's CPU time per request. Server on core 0, wrk on core 1, as in bench.py.

    python bench/serving/auth_overhead.py [--duration 5] [--rounds 2] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import onnx
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bodies import check_ok, oip_bodies
from load import Server, run_wrk
from models import mlp_model
from peers import free_port

from bench import write_ours

LUA = """
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
"""
API_KEY = "bench-0123456789abcdef0123456789abcdef"


def serve_jwks(jwk: dict[str, Any]) -> str:
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/jwks.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    key = rsa.generate_private_key(65537, 2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": "bench", "alg": "RS256"}
    jwks_url = serve_jwks(jwk)
    issuer, audience = "https://idp.bench.invalid", "bench"
    token = jwt.encode(
        {"iss": issuer, "aud": audience, "sub": "bench-client", "exp": int(time.time()) + 3600},
        key,
        algorithm="RS256",
        headers={"kid": "bench"},
    )
    modes: dict[str, tuple[dict[str, str], str]] = {
        "none": ({}, ""),
        "api-key": ({"MLGIT_SERVING_AUTH_MODE": "api-key", "MLGIT_SERVING_API_KEYS": API_KEY}, f"Bearer {API_KEY}"),
        "oidc": (
            {
                "MLGIT_SERVING_AUTH_MODE": "oidc",
                "MLGIT_SERVING_OIDC_ISSUER": issuer,
                "MLGIT_SERVING_OIDC_AUDIENCE": audience,
                "MLGIT_SERVING_OIDC_JWKS_URL": jwks_url,
            },
            f"Bearer {token}",
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_path = work / "mlp.onnx"
        onnx.save(mlp_model(np.random.default_rng(0)), model_path)
        repo = work / "repo"
        write_ours(repo, {"mlp": model_path})
        body_path, content_type, _ = oip_bodies(work, "mlp", np.random.default_rng(1).random((1, 64), "f4"))["JSON"]
        lua = work / "post.lua"
        lua.write_text(LUA)
        results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            for mode, (env, authorization) in modes.items():
                port = free_port()
                server = Server(
                    [sys.executable, "-m", "mlgit_serving", "--model-repository", str(repo), "--port", str(port)],
                    f"http://127.0.0.1:{port}/v2/health/ready",
                    env=env,
                )
                url = f"http://127.0.0.1:{port}/v2/models/mlp/infer"
                try:
                    if authorization:
                        refused = httpx.post(
                            url, content=body_path.read_bytes(), headers={"Content-Type": content_type}
                        )
                        assert refused.status_code == 401, refused.text
                        ok = httpx.post(
                            url,
                            content=body_path.read_bytes(),
                            headers={"Content-Type": content_type, "Authorization": authorization},
                        )
                        assert ok.status_code == 200, ok.text
                    else:
                        check_ok(url, (body_path, content_type, None))
                    os.environ["BENCH_AUTHORIZATION"] = authorization
                    before = server.cpu_seconds()
                    numbers = run_wrk(url, body_path, content_type, None, args.connections, args.duration, lua)
                    requests = numbers["req_s"] * args.duration
                    numbers["cpu_us_per_req"] = (server.cpu_seconds() - before) / max(requests, 1) * 1e6
                    results[mode].append(numbers)
                finally:
                    server.stop()
        print("| auth mode | req/s (each round) | p50 ms | p99 ms | errors | server CPU us/req (each round) |")
        print("|---|---|---:|---:|---:|---|")
        for mode, rounds in results.items():
            rates = " / ".join(f"{r['req_s']:.0f}" for r in rounds)
            cpu = " / ".join(f"{r['cpu_us_per_req']:.0f}" for r in rounds)
            p50, p99 = min(r["p50_ms"] for r in rounds), min(r["p99_ms"] for r in rounds)
            print(f"| {mode} | {rates} | {p50:.3f} | {p99:.2f} | {sum(r['errors'] for r in rounds)} | {cpu} |")


if __name__ == "__main__":
    main()
