"""`python -m mlgit_serving.batch --input PATH --output PATH [--shard INDEX/COUNT]`: the batch runner in the image.

Exit codes: 0 every input done (or already done), 1 some input failed or the run could not go on, 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .errors import BatchError
from .runner import Shard, run_batch


def shard_from_environment(environ: Mapping[str, str]) -> Shard:
    """An Indexed Job's pod: JOB_COMPLETION_INDEX (set by Kubernetes) of MLGIT_BATCH_SHARDS; else the whole."""
    text = f"{environ.get('JOB_COMPLETION_INDEX', '0')}/{environ.get('MLGIT_BATCH_SHARDS', '1')}"
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise ValueError(f"{exc} (from JOB_COMPLETION_INDEX and MLGIT_BATCH_SHARDS)") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlgit_serving.batch",
        description="Run the model over every input file and write one output per input (docs/batch.md).",
        epilog="Exit codes: 0 all done, 1 some input failed or the run could not go on, 2 usage.",
    )
    parser.add_argument("--input", required=True, help="folder or s3://bucket/prefix of .npz, .json and image files")
    parser.add_argument("--output", required=True, help="folder or s3://bucket/prefix; <stem>.npz per input")
    parser.add_argument(
        "--shard",
        help="INDEX/COUNT: every COUNT-th sorted input from INDEX (default: $JOB_COMPLETION_INDEX/"
        "$MLGIT_BATCH_SHARDS, else 0/1)",
    )
    parser.add_argument("--model-repository", type=Path, help="default: $MLGIT_SERVING_MODEL_REPOSITORY, else /models")
    parser.add_argument("--model", help="the model's name (default: the repository's only model)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        shard = Shard.parse(args.shard) if args.shard else shard_from_environment(os.environ)
    except ValueError as exc:
        parser.error(str(exc))
    repository = args.model_repository or Path(os.environ.get("MLGIT_SERVING_MODEL_REPOSITORY", "/models"))
    try:
        summary = run_batch(repository, args.input, args.output, model=args.model, shard=shard)
    except BatchError as exc:
        print(f"error: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 1
    print(summary.line(), file=sys.stderr)
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
