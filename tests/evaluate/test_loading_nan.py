"""A NaN stored in a float mask is reported, although SimpleITK reads it back as 0."""

from __future__ import annotations

import numpy as np
import pytest

from bench.errors import InputError
from bench.evaluate.loading import read_mask
from bench.io import write_image
from tests.factories import TINY_GEOMETRY


def test_nan_in_a_float_mask_names_the_file(tmp_path):
    mask = np.zeros(TINY_GEOMETRY.shape_zyx, np.float32)
    mask[1, 1, 1] = np.nan
    path = tmp_path / "case.nii.gz"
    write_image(mask, TINY_GEOMETRY, path)
    with pytest.raises(InputError, match="mask has NaN/Inf values") as error:
        read_mask(path, "case")
    assert str(path) in str(error.value)
