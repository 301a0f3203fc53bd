"""The benchmark's markdown: one table of every cell, then issue 17's targets, each met or MISSED.

A result is a dict: model, system, kind ("raw", "ceiling", "mlgit", "peer"), encoding, concurrency,
rows (per request), req_s, rows_s, p50_ms, p99_ms, errors and, for servers, cpu_us_per_req.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

Result = dict[str, Any]


def table(results: list[Result]) -> list[str]:
    lines = [
        "| model | system | body | conc. | rows/req | req/s | rows/s | p50 ms | p99 ms | errors | server CPU us/req |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cpu = f"{r['cpu_us_per_req']:.0f}" if "cpu_us_per_req" in r else ""
        lines.append(
            f"| {r['model']} | {r['system']} | {r['encoding']} | {r['concurrency']} | {r.get('rows', '')} | "
            f"{r['req_s']:.0f} | {r.get('rows_s', 0):.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.2f} | "
            f"{r['errors']} | {cpu} |"
        )
    return lines


def _best(results: list[Result], keep: Callable[[Result], bool], key: str = "req_s") -> Result | None:
    return max((r for r in results if keep(r)), key=lambda r: r[key], default=None)


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _versus_peers(results: list[Result], model: str, target: float) -> str:
    def cell(kind: str) -> Callable[[Result], bool]:
        return lambda r: (
            r["kind"] == kind
            and r["model"] == model
            and r["encoding"] == "JSON"
            and r["concurrency"] == 32
            and r["rows"] == 1
            and r["errors"] == 0
        )

    ours, peer = _best(results, cell("mlgit")), _best(results, cell("peer"))
    name = f"{model.upper()} JSON conc. 32 >= {target}x the best peer"
    if ours is None or peer is None:
        return f"{name}: not measured (mlgit {'ran' if ours else 'missing'}, peers {'ran' if peer else 'missing'})"
    ratio = ours["req_s"] / peer["req_s"]
    return (
        f"{name}: {ours['req_s']:.0f} ({ours['system']}) vs {peer['req_s']:.0f} ({peer['system']}) req/s = "
        f"{ratio:.1f}x: {_verdict(ratio >= target)}"
    )


def targets(results: list[Result], cold_starts: list[float]) -> list[str]:
    lines = [_versus_peers(results, "mlp", 3), _versus_peers(results, "cnn", 2.5)]
    raw = {(r["model"], r["rows"]): r for r in results if r["kind"] == "raw"}
    cnn_binary = [r for r in results if r["kind"] == "mlgit" and r["model"] == "cnn" and r["encoding"] == "binary"]
    for rows, share, raw_rows, concurrency in ((32, 0.8, 32, None), (1, 0.4, 1, 32)):
        limit = raw[("cnn", raw_rows)]["rows_s"]
        best = _best(
            cnn_binary,
            lambda r, rows=rows, c=concurrency: r["rows"] == rows and c in (None, r["concurrency"]),
            "rows_s",
        )
        name = f"CNN binary, {rows}-row requests{'' if concurrency is None else f', conc. {concurrency}'}"
        name += f" >= {share:.0%} of raw onnxruntime batch {raw_rows} ({limit:.0f} rows/s)"
        if best is None:
            lines.append(f"{name}: not measured")
            continue
        got = best["rows_s"] / limit
        lines.append(
            f"{name}: {best['rows_s']:.0f} rows/s ({best['system']}, {best['encoding']}, conc. "
            f"{best['concurrency']}) = {got:.0%}: {_verdict(got >= share)}"
        )
    floor = raw[("mlp", 1)]["p50_ms"]
    ours_c1 = [
        r
        for r in results
        if r["kind"] == "mlgit" and "REST" in r["system"] and r["model"] == "mlp" and r["concurrency"] == 1
    ]
    if ours_c1:
        best, worst = (f(r["p50_ms"] for r in ours_c1) - floor for f in (min, max))
        lines.append(
            f"MLP REST conc. 1 p50 over raw onnxruntime batch 1 <= 1 ms: {best:.3f} ms best, {worst:.3f} ms worst: "
            f"{_verdict(worst <= 1)}"
        )
    if cold_starts:
        cold = statistics.median(cold_starts)
        lines.append(f"cold start to ready < 2 s (median of {len(cold_starts)}): {cold:.2f} s: {_verdict(cold < 2)}")
    return lines


def render(results: list[Result], cold_starts: list[float], notes: list[str], machine: str) -> str:
    return "\n".join(
        [
            f"**Machine**: {machine}",
            "",
            *table(results),
            "",
            *(f"- {line}" for line in targets(results, cold_starts)),
            *([""] + [f"- {note}" for note in notes] if notes else []),
        ]
    )
