"""Where the batch runner reads inputs and writes outputs: a local folder or an S3 prefix (s3://bucket/prefix).

Both list names relative to their root ("sub/a.png"), read whole objects and write atomically: a local file
is written under a hidden temporary name and renamed into place, an S3 object appears whole on its PUT. So an
output that exists is complete, which is what resuming relies on (outputs present = done).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from .errors import BatchError

S3_SCHEME = "s3://"
IO_THREADS = 8  # the runner's threads that read, decode and write files (S3 requests wait on the network)


class Storage(Protocol):
    def describe(self) -> str:
        """The location as the user gave it, for messages."""
        ...

    def list(self) -> list[str]:
        """Every file's name relative to the root, hidden names (ours in flight among them) left out."""
        ...

    def read(self, name: str) -> bytes: ...

    def write(self, name: str, data: bytes) -> None: ...

    def contains(self, other: Storage) -> bool:
        """`other` lies at or under this location (so writing there would feed this location's listing)."""
        ...

    def remove_stale_temporaries(self) -> None:
        """Delete the temporary files that runs killed mid-write left (local folders; S3 has none)."""
        ...


def _hidden(name: str) -> bool:
    # "." and ".." are no hidden names but unsafe ones: listed, so that unsafe_name() reports them.
    return any(part.startswith(".") and part not in (".", "..") for part in name.split("/"))


def unsafe_name(name: str) -> str | None:
    """Why a name from a listing cannot be used as a relative path (an S3 key "in//tmp/x.npz" under "in/"
    names "/tmp/x.npz"), or None when it can: outputs are written under the same name."""
    if "\\" in name:
        return "a name with a backslash is refused"
    if name.startswith("/"):
        return "an absolute name is refused (an empty part after the prefix?)"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "a name with an empty, '.' or '..' part is refused"
    return None


# LocalStorage.write's temporary files: ".<name>.<mkstemp's 8 characters>.tmp".
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
STALE_SECONDS = 3600  # a temporary file lives for one write: one this old is a killed run's


class LocalStorage:
    def __init__(self, root: Path, *, create: bool) -> None:
        self.root = root.resolve()
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BatchError(f"cannot create the output folder {root}: {exc.strerror}") from None
        elif not self.root.is_dir():
            raise BatchError(f"input folder {root} " + ("is not a folder" if self.root.exists() else "not found"))

    def describe(self) -> str:
        return str(self.root)

    def list(self) -> list[str]:
        names = []
        for path in self.root.rglob("*"):
            name = path.relative_to(self.root).as_posix()
            if path.is_file() and not _hidden(name):
                names.append(name)
        return names

    def _path(self, name: str) -> Path:
        problem = unsafe_name(name)
        if problem:
            raise OSError(f"{name!r}: {problem}")
        return self.root / name

    def read(self, name: str) -> bytes:
        return self._path(name).read_bytes()  # an input may be a symbolic link to a file elsewhere

    def write(self, name: str, data: bytes) -> None:
        target = self._path(name)
        # The folder written into, links followed, must be inside the root (os.replace replaces a link itself).
        if not target.parent.resolve().is_relative_to(self.root):
            raise OSError(f"{name!r}: its folder lies outside {self.root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        # A hidden name in the same folder: never listed as an output, and renamed within one filesystem.
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())  # the rename must never publish a file whose data is not on disk
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide outputs from the folder's other readers
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def contains(self, other: Storage) -> bool:
        return isinstance(other, LocalStorage) and other.root.is_relative_to(self.root)

    def remove_stale_temporaries(self) -> None:
        # By age, not all: shards running at once may share the folder, and their temporaries are live.
        now = time.time()
        for path in self.root.rglob(".*.tmp"):
            try:
                if _TEMPORARY.fullmatch(path.name) and path.is_file() and now - path.stat().st_mtime > STALE_SECONDS:
                    path.unlink()
            except OSError:
                pass  # gone meanwhile, or not ours to delete: it stays hidden either way


class S3Storage:
    """An S3 prefix through boto3: endpoint from MLGIT_BATCH_S3_ENDPOINT or AWS_ENDPOINT_URL, credentials as the
    AWS SDKs read them (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, a profile, a pod's web identity)."""

    def __init__(self, url: str) -> None:
        bucket, _, prefix = url.removeprefix(S3_SCHEME).partition("/")
        if not bucket:
            raise BatchError(f"{url}: no bucket; write s3://BUCKET/PREFIX")
        self.url = url
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = _s3_client()

    def describe(self) -> str:
        return self.url

    def list(self) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        names = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.prefix) :]
                    if name and not name.endswith("/") and not _hidden(name):
                        names.append(name)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise BatchError(
                f"cannot list {self.url}: {error.get('Code', '?')}: {error.get('Message', exc)}",
                "check the bucket's name and that the credentials may list it",
            ) from None
        except BotoCoreError as exc:
            raise BatchError(f"cannot list {self.url}: {exc}", _S3_HINT) from None
        return names

    def read(self, name: str) -> bytes:
        data: bytes = self._client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        return data

    def write(self, name: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def contains(self, other: Storage) -> bool:
        return isinstance(other, S3Storage) and other.bucket == self.bucket and other.prefix.startswith(self.prefix)

    def remove_stale_temporaries(self) -> None:
        pass  # an object appears whole on its PUT: no temporaries


_S3_HINT = (
    "set the endpoint in MLGIT_BATCH_S3_ENDPOINT or AWS_ENDPOINT_URL (none: AWS itself) and the credentials in "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


def _s3_client() -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise BatchError("s3:// paths need boto3, which is not installed", "pip install 'mlgit-serving[s3]'") from None
    endpoint = os.environ.get("MLGIT_BATCH_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or None
    # As many pooled connections as the runner has reading and writing threads, plus a spare.
    return boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=IO_THREADS + 2))


def open_storage(location: str, *, output: bool) -> Storage:
    """The input (output: False) or output location; an output folder is created when missing."""
    if location.startswith(S3_SCHEME):
        return S3Storage(location)
    return LocalStorage(Path(location), create=output)
