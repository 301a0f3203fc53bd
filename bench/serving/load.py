"""Load generators (wrk for HTTP, ghz for gRPC) and the server process whose CPU a cell is charged.

Servers run on SERVER_CORE, the load generator on LOAD_CORE (`taskset`), so they do not compete.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

SERVER_CORE, LOAD_CORE = "0", "1"
WRK_SCRIPT = """
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
local header_length = os.getenv("BENCH_HEADER_LENGTH")
if header_length ~= nil and header_length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header_length
end
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    url: str,
    body: Path | None,
    content_type: str,
    header_length: int | None,
    connections: int,
    duration: int,
    lua: Path | None,
) -> dict[str, Any]:
    """wrk on the load core; with a Lua script it POSTs `body`, without one it GETs."""
    env = {
        **os.environ,
        "BENCH_BODY": str(body),
        "BENCH_CONTENT_TYPE": content_type,
        "BENCH_HEADER_LENGTH": "" if header_length is None else str(header_length),
    }
    script = ["-s", str(lua)] if lua is not None else []
    command = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    done = subprocess.run([*command, "--latency", *script, url], capture_output=True, text=True, env=env, check=False)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk against {url} failed ({done.returncode}): {(out + done.stderr)[-500:]}")
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, Any]:
    """wrk --latency's report as numbers."""
    # No latency lines when not one request completed; wrk pads values in seconds with a space (`1.75s `).
    latency = {k: _ms(v) for k, v in re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE)}
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "req_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50_ms": latency.get("50", float("nan")),
        "p99_ms": latency.get("99", float("nan")),
        "errors": socket_errors + (int(non_2xx.group(1)) if non_2xx else 0),
    }


def run_ghz(ghz: Path, target: str, protoset: Path, data: Path, concurrency: int, duration: int) -> dict[str, Any]:
    """ghz on the load core: unary ModelInfer calls over `concurrency` connections, one stream each."""
    command = [
        *("taskset", "-c", LOAD_CORE, str(ghz), "--insecure", "--cpus", "1"),
        *("--protoset", str(protoset), "--call", "inference.GRPCInferenceService/ModelInfer"),
        *("-B", str(data), "-c", str(concurrency), "--connections", str(concurrency)),
        *("-z", f"{duration}s", "--timeout", "10s", "-O", "json", target),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ghz against {target} failed ({done.returncode}): {(done.stdout + done.stderr)[-500:]}")
    summary = json.loads(done.stdout)
    percentiles = {p["percentage"]: p["latency"] / 1e6 for p in summary["latencyDistribution"] or []}
    ok = summary["statusCodeDistribution"].get("OK", 0)
    # ghz closes its connections at the deadline and counts the calls in flight on them as errors.
    closed = sum(n for error, n in (summary["errorDistribution"] or {}).items() if "closed network connection" in error)
    return {
        "req_s": ok / (summary["total"] / 1e9),
        "requests": ok,
        "p50_ms": percentiles.get(50, float("nan")),
        "p99_ms": percentiles.get(99, float("nan")),
        "errors": summary["count"] - ok - closed,
    }


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of `root` and every live descendant (BentoML, PyTriton and worker processes
    serve from children), plus what reaped children left in root's counters."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        own = int(fields[11]) + int(fields[12])
        reaped = int(fields[13]) + int(fields[14]) if int(entry.name) == root else 0
        stats[int(entry.name)] = (int(fields[1]), own + reaped)
    family, grew = {root}, True
    while grew:
        grew = False
        for pid, (parent, _) in stats.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    total = sum(ticks for pid, (_, ticks) in stats.items() if pid in family)
    return total / os.sysconf("SC_CLK_TCK")


class Server:
    """A server process (and its children) pinned to the server core, ready once `ready_url` answers 200."""

    def __init__(
        self,
        command: list[str],
        ready_url: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log: Path | None = None,
        ready_timeout: float = 120,
    ) -> None:
        self.started = time.perf_counter()
        self.log = log
        output = log.open("wb") if log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the children with it
        )
        with httpx.Client() as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{command[:3]} exited with {self.process.returncode}{self._log_tail()}")
                try:
                    if client.get(ready_url).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - self.started > ready_timeout:
                    self.stop()
                    raise RuntimeError(f"{command[:3]} not ready after {ready_timeout} s{self._log_tail()}")
                time.sleep(0.005)
        self.cold_start_s = time.perf_counter() - self.started

    def _log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "; its log ends:\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])

    def cpu_seconds(self) -> float:
        """CPU time of the server's processes: unlike req/s, barely moved by other load on the machine."""
        return tree_cpu_seconds(self.process.pid)

    def measure(self, *wrk_args: Any) -> dict[str, Any]:
        """run_wrk(*wrk_args) against this server, with the server's CPU microseconds per request."""
        return self.charge(lambda: run_wrk(*wrk_args))

    def charge(self, load: Any) -> dict[str, Any]:
        """Run `load()` (returning run_wrk's or run_ghz's numbers) and add the server CPU per request."""
        before = self.cpu_seconds()
        numbers = load()
        numbers["cpu_us_per_req"] = (self.cpu_seconds() - before) / max(numbers["requests"], 1) * 1e6
        return numbers

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):  # children that outlived the leader (a supervisor's workers)
            os.killpg(self.process.pid, signal.SIGKILL)
