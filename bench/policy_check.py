"""Benchmark: checking every environment (and the pipeline) of an example against the policies.

Times the policy work itself: compile mlgit's policies once, then evaluate every input document of
the example (dev, staging, prod, review, pipeline), median of N runs; and, for context, building
those input documents (`kubectl kustomize` per environment). Target (issue 4): compile + evaluate
under 0.5 s on the 2-core development machine.

    python bench/policy_check.py [--example iris-classifier] [--runs 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from mlgit.config.load import load_project
from mlgit.policy.check import evaluate
from mlgit.policy.engine import PolicySet
from mlgit.policy.inputs import environment_input, environment_names, pipeline_input
from mlgit.policy.settings import PlatformSettings
from mlgit.resources import shipped_dir
from mlgit.scaffold import InitOptions, init_repository

DIGEST = "sha256:" + "ab" * 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="iris-classifier")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = init_repository(InitOptions(target=Path(tmp) / args.example, example=args.example))
        project = load_project(repo)
        image = f"{project.config.image.repository}@{DIGEST}"
        start = time.perf_counter()
        targets = [environment_input(project, env, image) for env in environment_names(project, None)]
        targets.append(pipeline_input(project)[0])
        build = time.perf_counter() - start
        compiles, evaluations, totals = [], [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            policies = PolicySet([shipped_dir("policies")])
            compiled = time.perf_counter()
            result = evaluate(policies, targets, project.config.policy, dt.date.today(), PlatformSettings())
            done = time.perf_counter()
            assert not result.findings, [f.message for f in result.findings]
            compiles.append(compiled - start)
            evaluations.append(done - compiled)
            totals.append(done - start)
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"example {args.example}: {len(targets)} targets ({', '.join(t.name for t in targets)}), "
        f"{len(policies.policies)} policies, {sum(len(t.document.get('resources', [])) for t in targets)} resources"
    )
    print(f"build inputs (kustomize, once): {build:.3f} s")
    print(f"compile  median {statistics.median(compiles):.3f} s  min {min(compiles):.3f} s")
    print(
        f"evaluate median {statistics.median(evaluations):.3f} s  min {min(evaluations):.3f} s "
        f"({statistics.median(evaluations) / len(targets) * 1000:.1f} ms per target)"
    )
    print(f"total    median {statistics.median(totals):.3f} s  min {min(totals):.3f} s  (target < 0.5 s)")


if __name__ == "__main__":
    main()
