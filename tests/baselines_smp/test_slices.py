"""The 2.5D input: shifted slice stacks worked out by hand, windowing, in-plane sizes."""

from __future__ import annotations

import numpy as np

from baselines.smp.config import Smp25dConfig, resolve
from baselines.smp.slices import inplane_shape, stack_neighbours, window
from bench.profiles import get_profile


def test_stack_neighbours_shifts_each_channel_and_pads_the_ends():
    volume = np.arange(4, dtype=np.float32)[None, :, None, None] * np.ones((2, 4, 1, 1))
    volume[1] += 10  # a second channel: slices 10..13
    stacked = stack_neighbours(volume, 3)
    assert stacked.shape == (6, 4, 1, 1)
    # channel 0: slices z-1, z, z+1 (edge-padded); channel 1 the same, +10
    np.testing.assert_array_equal(stacked[0, :, 0, 0], [0, 0, 1, 2])
    np.testing.assert_array_equal(stacked[1, :, 0, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(stacked[2, :, 0, 0], [1, 2, 3, 3])
    np.testing.assert_array_equal(stacked[3, :, 0, 0], [10, 10, 11, 12])
    np.testing.assert_array_equal(stacked[5, :, 0, 0], [11, 12, 13, 13])


def test_one_slice_is_the_volume_itself():
    volume = np.random.default_rng(0).normal(size=(1, 5, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(stack_neighbours(volume, 1), volume)


def test_window_maps_the_brain_window_to_minus_one_one():
    np.testing.assert_allclose(
        window(np.array([-1000, 0, 40, 80, 1000]), (0, 80)), [-1, -1, 0, 1, 1]
    )


def test_inplane_shape_keeps_the_field_of_view():
    assert inplane_shape((10, 100, 80), (5.0, 0.5, 0.5), (1.0, 1.0)) == (50, 40)
    assert inplane_shape((10, 100, 80), (5.0, 0.5, 0.5), None) == (100, 80)


def test_smoke_shrinks_only_the_encoder_demo_keeps_the_named_one():
    unet = Smp25dConfig("Unet", "resnet34", slices=3, mirrored=True)
    smoke, demo = resolve(unet, get_profile("smoke")), resolve(unet, get_profile("demo"))
    assert (smoke.arch, smoke.encoder, smoke.patch_size) == ("Unet", "resnet18", (32, 32))
    assert (demo.arch, demo.encoder, demo.in_channels) == ("Unet", "resnet34", 6)
    assert demo.inplane_spacing_mm == (3.75, 3.75)
    assert resolve(unet, get_profile("paper")).encoder == "resnet34"
