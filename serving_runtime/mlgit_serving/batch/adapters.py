"""From an input file to the model's input arrays, and from a file's outputs to what is written for it.

Inputs, by suffix (case ignored):
- `.npz`: one array per model input, named as in the signature, of the input's exact numpy dtype (float32 for
  FP32...; strings for BYTES) and a shape the signature accepts; no pickled objects; no other arrays; sizes
  read from the .npy headers and capped (MLGIT_BATCH_MAX_FILE_BYTES) before anything is inflated.
- `.json`: an Open Inference Protocol v2 request body, decoded and checked by the server's own code
  (validation.decode_request), so a file is accepted exactly when the server would accept it as a request.
- images, through the model's adapter (model_settings.ImageAdapter): `.png`, `.jpg`/`.jpeg`, `.fits`/`.fit`/
  `.fts`, when the adapter lists the format. One image is one row.
Outputs: `<stem>.npz` with one array per model output, and `<stem>.mask.png` for an image when the adapter
declares a mask output.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from pathlib import PurePosixPath
from types import ModuleType
from typing import IO, Any

import numpy as np

from ..codec import split_body
from ..errors import BadRequest
from ..model_settings import ImageAdapter, ImageGeometry, TensorSpec
from ..signature import Signature, Tensor
from ..validation import decode_request
from .errors import BadFile, BatchError
from .fits import read_fits_image

SUFFIXES = {
    ".npz": "npz",
    ".json": "json",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
}
IMAGE_KINDS = ("png", "jpeg", "fits")
PILLOW_FORMATS = {"PNG": "png", "JPEG": "jpeg"}
MASK_SUFFIX = ".mask.png"
MAX_FILE_BYTES_VARIABLE = "MLGIT_BATCH_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 256 * 2**20  # a .npz's arrays, uncompressed, summed: checked before any is inflated
_IMAGES_HINT = "pip install 'mlgit-serving[images]' (the model image has it)"


def _spec(tensor: Tensor) -> TensorSpec:
    shape = None if tensor.shape is None else list(tensor.shape)
    return TensorSpec(name=tensor.name, datatype=tensor.datatype, shape=shape)


def _pillow() -> ModuleType:
    try:
        from PIL import Image
    except ImportError:
        raise BatchError("PNG and JPEG inputs need Pillow, which is not installed", _IMAGES_HINT) from None
    return Image


def output_names(name: str, kind: str, mask: bool) -> list[str]:
    """The files written for input `name`: all must exist for it to count as done."""
    stem = str(PurePosixPath(name).with_suffix(""))
    return [f"{stem}.npz", *([stem + MASK_SUFFIX] if mask and kind in IMAGE_KINDS else [])]


class InputReader:
    """Turns one input file into the model's inputs; BadFile says what is wrong with a file."""

    def __init__(self, signature: Signature, adapter: ImageAdapter | None) -> None:
        self.signature = signature
        self.adapter = adapter
        self.geometry: ImageGeometry | None = None
        self.max_file_bytes = max_file_bytes()
        if adapter is not None:
            try:
                self.geometry = adapter.geometry(
                    [_spec(t) for t in signature.inputs.values()], [_spec(t) for t in signature.outputs.values()]
                )
            except ValueError as exc:
                raise BatchError(f"model-settings.json: {exc}", "fix model.adapter in mlgit.yaml") from None

    def kind(self, name: str) -> str | None:
        """npz, json, png, jpeg or fits; None for a file this model takes no input from."""
        kind = SUFFIXES.get(PurePosixPath(name).suffix.lower())
        if kind in IMAGE_KINDS and (self.adapter is None or kind not in self.adapter.formats):
            return None
        return kind

    def read(self, kind: str, data: bytes) -> dict[str, np.ndarray]:
        if kind == "npz":
            return self._npz(data)
        if kind == "json":
            try:
                parsed, binary = split_body(data, None)
                return decode_request(parsed, binary, self.signature).inputs
            except BadRequest as exc:
                raise BadFile(exc.message) from None
        return self._image(kind, data)

    def _npz(self, data: bytes) -> dict[str, np.ndarray]:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise BadFile("not a .npz file: not a (complete) zip archive, which numpy.savez writes")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = {name.removesuffix(".npy"): name for name in archive.namelist()}  # as np.load names them
                expected = list(self.signature.inputs)
                missing = [n for n in expected if n not in members]
                extra = [n for n in members if n not in self.signature.inputs]
                if missing or extra:
                    problem = (
                        f"missing input(s) {missing}" if missing else f"array(s) {extra} are not inputs of the model"
                    )
                    raise BadFile(
                        f"{problem}: the file has {list(members)}, the model takes one array per input {expected}"
                    )
                # Every array's header before any array's data: a small file may inflate to gigabytes.
                total = 0
                for name in expected:
                    with archive.open(members[name]) as member:
                        total += _npy_bytes(name, member)
                    if total > self.max_file_bytes:
                        raise BadFile(
                            f"its arrays hold {total} bytes (as far as {name!r}) uncompressed, over the limit of "
                            f"{self.max_file_bytes} per file ({MAX_FILE_BYTES_VARIABLE})"
                        )
                arrays = {}
                for name in expected:
                    with archive.open(members[name]) as member:
                        arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
        except BadFile:
            raise
        except Exception as exc:  # zipfile, zlib and numpy's format errors: all mean the same to the user
            raise BadFile(f"not a readable .npz file: {exc}") from None
        return {name: _checked(arrays[name], spec) for name, spec in self.signature.inputs.items()}

    def _image(self, kind: str, data: bytes) -> dict[str, np.ndarray]:
        adapter, geometry = self.adapter, self.geometry
        assert adapter is not None and geometry is not None  # kind() names no image format without an adapter
        others = [n for n in self.signature.inputs if n != geometry.input]
        if others:
            raise BadFile(f"an image feeds only {geometry.input!r}; the model also takes {others}: use .npz or .json")
        if kind == "fits":
            values = read_fits_image(data)[..., np.newaxis]  # physical values, as they are
            _check_size(values.shape[1], values.shape[0], geometry)
        else:
            pixels = _decode_picture(data, adapter.formats, geometry)
            channels = pixels.reshape(*pixels.shape[:2], -1)
            values = (channels * adapter.scale - np.asarray(adapter.mean)) / np.asarray(adapter.std)
        row = values.transpose(2, 0, 1) if adapter.layout == "NCHW" else values
        spec = self.signature.inputs[geometry.input]
        return {geometry.input: row[np.newaxis].astype(spec.dtype)}


def max_file_bytes() -> int:
    text = os.environ.get(MAX_FILE_BYTES_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_FILE_BYTES
    if not text.isdigit() or int(text) == 0:
        raise BatchError(f"{MAX_FILE_BYTES_VARIABLE}={text!r}: not a positive number of bytes")
    return int(text)


def _npy_bytes(name: str, member: IO[bytes]) -> int:
    """The bytes array `name` of a .npz takes once read, from its .npy header alone; object arrays refused."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise BadFile(f"array {name!r}: .npy format version {version} is not read (1.0 and 2.0 are)")
    if dtype.hasobject:
        raise BadFile(f"array {name!r} holds Python objects (dtype {dtype}): pickled data is not read")
    return math.prod(shape) * dtype.itemsize


def _checked(array: np.ndarray, spec: Tensor) -> np.ndarray:
    if spec.datatype == "BYTES":
        if array.dtype.kind not in "US":
            raise BadFile(f"array {spec.name!r} is {array.dtype}; the model takes strings (BYTES)")
        array = array.astype(str).astype(object)
    elif array.dtype != spec.dtype:
        raise BadFile(
            f"array {spec.name!r} is {array.dtype}; the model takes {spec.dtype} ({spec.datatype}): save it with "
            f".astype('{spec.dtype.name}')"
        )
    if spec.shape is not None and (
        array.ndim != len(spec.shape) or any(w not in (-1, g) for w, g in zip(spec.shape, array.shape, strict=True))
    ):
        raise BadFile(
            f"array {spec.name!r} has shape {list(array.shape)}; the model takes {list(spec.shape)} (-1: any size)"
        )
    return array


def _check_size(width: int, height: int, geometry: ImageGeometry) -> None:
    if geometry.width not in (None, width) or geometry.height not in (None, height):
        wanted = f"{geometry.width or 'any'}x{geometry.height or 'any'}"
        raise BadFile(
            f"the image is {width}x{height} pixels (width x height); the model takes {wanted}: resize it first "
            "(images are never resized here)"
        )


def _decode_picture(data: bytes, formats: list[str], geometry: ImageGeometry) -> np.ndarray:
    """PNG or JPEG pixels as [H, W] (grey) or [H, W, 3] (RGB), values as stored (0-255, 0-65535 for 16 bits)."""
    image_module: Any = _pillow()
    try:
        with image_module.open(io.BytesIO(data)) as image:
            found = PILLOW_FORMATS.get(image.format or "")
            if found not in formats:
                raise BadFile(f"the file holds a {image.format} image; the model's adapter accepts {formats}")
            _check_size(*image.size, geometry)  # before decoding a large picture at all
            image.load()
            if geometry.channels == 3:
                return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
            grey = ("L", "I;16", "I;16B", "I;16L", "I", "F")  # kept at their own depth; colour becomes luma
            return np.asarray(image if image.mode in grey else image.convert("L"))
    except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as exc:
        raise BadFile(f"not a readable image: {exc}") from None


def encode_outputs(outputs: dict[str, np.ndarray]) -> bytes:
    """One array per output in an uncompressed .npz (strings as numpy strings: a .npz loads without pickle)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{name: a.astype(str) if a.dtype == object else a for name, a in outputs.items()})
    return buffer.getvalue()


def encode_mask(row: np.ndarray, adapter: ImageAdapter) -> bytes:
    """One row of the mask output ([1, H, W], [H, W, 1] or [H, W]) as an 8-bit PNG: above threshold 255, else 0."""
    assert adapter.output is not None
    plane = row.reshape(row.shape[-2:]) if row.ndim == 2 or adapter.layout == "NCHW" else row[..., 0]
    pixels = np.where(plane > adapter.output.threshold, 255, 0).astype(np.uint8)
    buffer = io.BytesIO()
    _pillow().fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
