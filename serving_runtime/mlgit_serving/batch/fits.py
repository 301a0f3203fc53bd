"""The primary image of a FITS file (FITS Standard 4.0), without astropy: what radio cut-outs are stored as.

Read: the primary header's SIMPLE, BITPIX, NAXIS, NAXISn, BSCALE, BZERO and BLANK cards, then the data that
follows it (big-endian, the first axis varying fastest). Supported: BITPIX 8 (unsigned), 16, 32 (signed
integers), -32 and -64 (IEEE floats); NAXIS 2, or more when every axis past the second has length 1 (the
frequency and Stokes axes of radio images). Values are BZERO + BSCALE * stored value, as float64, with BLANK
pixels as NaN. The array is [NAXIS2, NAXIS1] (rows, columns) in storage order: row 0 is the first row stored
(the bottom one as FITS viewers show it); nothing is flipped. Extensions, random groups and tables are not read.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import BadFile

BLOCK = 2880
CARD = 80
DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", -32: ">f4", -64: ">f8"}


def _value(card: str) -> str | None:
    """A card's value as written, comment removed; None for a card without `= ` (COMMENT, HISTORY, blank)."""
    if card[8:10] != "= ":
        return None
    text = card[10:].strip()
    if text.startswith("'"):
        return text  # strings are not needed; a '/' inside one must not be taken for a comment
    return text.split("/", 1)[0].strip()


def _header(data: bytes) -> tuple[dict[str, str], int]:
    """The primary header's keyword -> value, and where its data starts."""
    cards: dict[str, str] = {}
    offset = 0
    while offset + BLOCK <= len(data):
        block = data[offset : offset + BLOCK]
        offset += BLOCK
        for start in range(0, BLOCK, CARD):
            try:
                card = block[start : start + CARD].decode("ascii")
            except UnicodeDecodeError:
                raise BadFile("not a FITS file: its header holds bytes other than ASCII") from None
            keyword = card[:8].strip()
            if not cards and keyword != "SIMPLE":
                raise BadFile("not a FITS file: it does not start with SIMPLE = T")
            if keyword == "END":
                return cards, offset
            value = _value(card)
            if value is not None and keyword not in cards:
                cards[keyword] = value
    raise BadFile("not a FITS file, or a truncated one: no END card in its header" if cards else "not a FITS file")


def _integer(cards: dict[str, str], keyword: str) -> int:
    try:
        return int(cards[keyword])
    except KeyError:
        raise BadFile(f"FITS header has no {keyword} card") from None
    except ValueError:
        raise BadFile(f"FITS header: {keyword} = {cards[keyword]!r} is not an integer") from None


def _number(cards: dict[str, str], keyword: str, default: float) -> float:
    try:
        return float(cards[keyword].replace("D", "E")) if keyword in cards else default
    except ValueError:
        raise BadFile(f"FITS header: {keyword} = {cards[keyword]!r} is not a number") from None


def read_fits_image(data: bytes) -> np.ndarray:
    """The primary HDU's image as float64 [rows, columns]; BadFile says what is wrong with any other file."""
    cards, start = _header(data)
    if cards.get("SIMPLE") != "T":
        raise BadFile("FITS header: SIMPLE is not T (the file says it does not follow the standard)")
    bitpix = _integer(cards, "BITPIX")
    if bitpix not in DTYPES:
        raise BadFile(f"FITS BITPIX {bitpix} is not supported; 8, 16, 32, -32 and -64 are")
    naxis = _integer(cards, "NAXIS")
    if naxis == 0:
        raise BadFile("the FITS primary HDU holds no image (NAXIS = 0; images in extensions are not read)")
    axes = [_integer(cards, f"NAXIS{i}") for i in range(1, naxis + 1)]
    if naxis < 2 or any(n != 1 for n in axes[2:]) or min(axes[:2]) < 1:
        raise BadFile(
            f"the FITS image has axes {axes}; only a 2-D image is read (axes past the second must have length 1)"
        )
    width, height = axes[0], axes[1]
    dtype = np.dtype(DTYPES[bitpix])
    size = width * height * dtype.itemsize
    if len(data) < start + size:
        raise BadFile(
            f"the FITS file is truncated: its {width}x{height} image needs {size} bytes, "
            f"{len(data) - start} follow the header"
        )
    raw = np.frombuffer(data, dtype=dtype, count=width * height, offset=start).reshape(height, width)
    image = raw.astype(np.float64)
    if bitpix > 0 and "BLANK" in cards:
        image[raw == _integer(cards, "BLANK")] = math.nan
    scale, zero = _number(cards, "BSCALE", 1.0), _number(cards, "BZERO", 0.0)
    if scale != 1.0 or zero != 0.0:
        image = image * scale + zero
    return image
