"""The FITS reader on files written by the standard (tests/batch/models.fits_bytes) and on damaged ones."""

from __future__ import annotations

import numpy as np
import pytest

from mlgit_serving.batch.errors import BadFile
from mlgit_serving.batch.fits import read_fits_image
from tests.batch.models import fits_bytes


def test_rows_and_columns_keep_their_stored_order() -> None:
    data = np.arange(12, dtype=np.float64).reshape(3, 4)  # NAXIS1 = 4 columns vary fastest, NAXIS2 = 3 rows
    np.testing.assert_array_equal(read_fits_image(fits_bytes(data, -64)), data)


def test_blank_integers_become_nan_before_scaling() -> None:
    data = np.array([[1, -32768], [3, 4]])
    image = read_fits_image(fits_bytes(data, 16, {"BLANK": -32768, "BSCALE": 2, "BZERO": 1}))
    assert np.isnan(image[0, 1])
    np.testing.assert_array_equal(image[[0, 1, 1], [0, 0, 1]], [3.0, 7.0, 9.0])


def test_a_comment_after_a_value_and_a_quoted_slash_are_read_right() -> None:
    data = fits_bytes(np.ones((2, 2)), -32, {"OBJECT": "'A/B'", "BZERO": "5 / offset"})
    np.testing.assert_array_equal(read_fits_image(data), np.full((2, 2), 6.0))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not fits at all".ljust(2880), "does not start with SIMPLE = T"),
        (fits_bytes(np.ones((2, 2)), -32)[:80] + b" " * 2800, "no END card"),
        (fits_bytes(np.ones((40, 40)), -64)[: 2880 + 100], "truncated: its 40x40 image needs 12800 bytes, 100 follow"),
        (fits_bytes(np.ones((2, 2)), -32, {"SIMPLE": "F"}), "SIMPLE is not T"),
        (fits_bytes(np.ones((2, 2)), 16, {"NAXIS": 0}), "holds no image (NAXIS = 0"),
        (b"\xff" * 2880, "bytes other than ASCII"),
    ],
)
def test_damaged_files_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(BadFile, match=message.replace("(", r"\(")):
        read_fits_image(data)
