"""The grid tolerance and its messages, on geometry worked out by hand."""

from __future__ import annotations

import math

import pytest

from bench.data.importers.grid import (
    GRID_TOLERANCE_VOXELS,
    describe_difference,
    grid_offset,
    on_grid,
)
from bench.io import Geometry

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
IMAGE = Geometry((40, 512, 512), (0.45, 0.45, 5.0), (-115.2, -130.4, -72.5), IDENTITY)


def moved(origin=IMAGE.origin_xyz, spacing=IMAGE.spacing_xyz, direction=IDENTITY) -> Geometry:
    return Geometry(IMAGE.shape_zyx, spacing, origin, direction)


def test_offsets_in_voxels_known_on_paper():
    # 0.09 mm along x is 0.2 of a 0.45 mm voxel; 0.5 mm along z is 0.1 of a 5 mm slice
    assert grid_offset(IMAGE, moved((-115.11, -130.4, -72.5))) == pytest.approx(0.2)
    assert grid_offset(IMAGE, moved((-115.2, -130.4, -72.0))) == pytest.approx(0.1)
    # a spacing 1e-5 mm larger moves the last of 512 voxels 511e-5 mm = 0.01136 voxel
    assert grid_offset(IMAGE, moved(spacing=(0.45001, 0.45, 5.0))) == pytest.approx(511e-5 / 0.45)
    # a rotation by t about z moves the far corner (511, 511) voxels by about 511 t voxels
    t = 1e-5
    c, s = math.cos(t), math.sin(t)
    turned = moved(direction=(c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    assert grid_offset(IMAGE, turned) == pytest.approx(511 * t, rel=1e-3)
    fewer_slices = Geometry((39, 512, 512), IMAGE.spacing_xyz, IMAGE.origin_xyz, IDENTITY)
    assert grid_offset(IMAGE, fewer_slices) is None


def test_the_tolerance_is_relative_to_the_voxel_size():
    # 0.0004 mm is 0.0009 of a 0.45 mm voxel: the same grid
    assert on_grid(IMAGE, moved((-115.2004, -130.4, -72.5)))
    # 0.04 mm along z is 0.008 of a 5 mm slice but 0.089 of a 0.45 mm pixel
    assert on_grid(IMAGE, moved((-115.2, -130.4, -72.46)))
    assert not on_grid(IMAGE, moved((-115.16, -130.4, -72.5)))
    assert GRID_TOLERANCE_VOXELS == 0.01


def test_the_message_shows_the_difference():
    text = describe_difference(IMAGE, moved((-115.2004, -130.4, -72.5)))
    assert text.startswith(
        "origin (-115.20040, -130.40000, -72.50000) differs from the image's "
        "(-115.20000, -130.40000, -72.50000) by (-0.0004, 0, 0)"
    )
    assert "voxel centres up to 0.000889 voxel apart; tolerance 0.01" in text
