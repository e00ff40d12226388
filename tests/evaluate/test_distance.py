"""Nearest-surface distances: exact against all-pairs brute force, on every code path."""

from __future__ import annotations

import numpy as np
import pytest

import bench.evaluate.distance as distance
import bench.evaluate.exact as exact
from bench.evaluate.distance import nearest_squared_mm, tolerance_classes


def brute_squared(queries: np.ndarray, features: np.ndarray, spacing) -> np.ndarray:
    delta = (queries[:, :, None] - features[:, None, :]) * np.asarray(spacing)[:, None, None]
    return (delta**2).sum(axis=0).min(axis=1)


def random_points(rng, n, box) -> np.ndarray:
    return np.unique(rng.integers(0, box, size=(n, 3)), axis=0).T.astype(np.int32)


SPACINGS = [(5.0, 0.45, 0.45), (1.0, 1.0, 1.0), (0.7, 2.5, 1.3), (0.5, 3.0, 3.0), (2.0, 0.8, 3.0)]


@pytest.mark.parametrize("spacing", SPACINGS)
def test_exact_against_brute_force(spacing, backend):
    rng = np.random.default_rng(0)
    queries = random_points(rng, 300, (12, 40, 40))
    features = random_points(rng, 60, (12, 40, 40))
    got = nearest_squared_mm(queries, features, spacing)
    assert np.allclose(got, brute_squared(queries, features, spacing), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_far_queries_take_the_exact_fallback(spacing, backend):
    rng = np.random.default_rng(1)
    features = random_points(rng, 80, (6, 20, 20)) + 50
    queries = np.concatenate(
        [
            random_points(rng, 50, (6, 20, 20)) + 50,  # near
            random_points(rng, 50, (120, 120, 120)),  # far, on every side of the box
            random_points(rng, 20, (6, 20, 20)) + 53,  # inside the box
        ],
        axis=1,
    )
    expected = brute_squared(queries, features, spacing)
    assert np.allclose(nearest_squared_mm(queries, features, spacing), expected, rtol=1e-12)
    # A tiny search radius sends nearly everything to the fallback, including the KD-tree.
    got = nearest_squared_mm(queries, features, spacing, search_mm=0.1)
    assert np.allclose(got, expected, rtol=1e-12)


def test_kd_tree_path_is_exact(monkeypatch):
    monkeypatch.setattr(exact._kernels, "HAVE_NUMBA", False)
    monkeypatch.setattr(exact, "BRUTE_FORCE_PAIRS", 10)
    rng = np.random.default_rng(2)
    queries, features = random_points(rng, 200, (30, 30, 30)), random_points(rng, 100, (30, 30, 30))
    got = nearest_squared_mm(queries, features, (2.0, 1.0, 0.5), search_mm=0.1)
    assert np.allclose(got, brute_squared(queries, features, (2.0, 1.0, 0.5)), rtol=1e-12)


def test_offset_budget_truncation_stays_exact(monkeypatch, backend):
    monkeypatch.setattr(distance, "MAX_OFFSETS", 5)
    distance._offsets.cache_clear()
    try:
        rng = np.random.default_rng(3)
        queries, features = (
            random_points(rng, 200, (8, 30, 30)),
            random_points(rng, 30, (8, 30, 30)),
        )
        got = nearest_squared_mm(queries, features, (1.0, 1.0, 1.0))
        assert np.allclose(got, brute_squared(queries, features, (1.0, 1.0, 1.0)), rtol=1e-12)
    finally:
        distance._offsets.cache_clear()


def test_upper_bound_reports_inf_beyond_it(backend):
    rng = np.random.default_rng(4)
    queries, features = random_points(rng, 300, (10, 50, 50)), random_points(rng, 20, (10, 50, 50))
    expected = brute_squared(queries, features, (1.0, 1.0, 1.0))
    got = nearest_squared_mm(queries, features, (1.0, 1.0, 1.0), upper_mm=4.0)
    within = expected <= 16.0
    assert np.allclose(got[within], expected[within])
    assert np.isinf(got[~within]).all()


@pytest.mark.parametrize("spacing", SPACINGS)
def test_tolerance_classes_against_brute_force(spacing, backend):
    rng = np.random.default_rng(5)
    queries, features = random_points(rng, 400, (10, 40, 40)), random_points(rng, 40, (10, 40, 40))
    tolerances = (0.0, 1.5, 5.0, 10.0)
    rooted = np.sqrt(brute_squared(queries, features, spacing))
    expected = np.array([sum(d > t for t in tolerances) for d in rooted])
    assert np.array_equal(tolerance_classes(queries, features, spacing, tolerances), expected)


def test_tolerance_exactly_met_counts_as_within():
    # Thick slices: the surfaces one slice apart are exactly 5 mm apart.
    queries = np.array([[0], [3], [3]])
    features = np.array([[1], [3], [3]])
    assert tolerance_classes(queries, features, (5.0, 0.45, 0.45), (0.0, 5.0, 10.0))[0] == 1


def test_unsorted_features_from_joined_boxes(backend):
    # Surface points of a mask cut into boxes are concatenated box by box, not in raster order.
    rng = np.random.default_rng(6)
    features = random_points(rng, 200, (10, 30, 30))[:, ::-1]
    queries = random_points(rng, 100, (10, 30, 30))
    expected = brute_squared(queries, features, (3.0, 1.0, 0.5))
    got = nearest_squared_mm(queries, features, (3.0, 1.0, 0.5))
    assert np.allclose(got, expected, rtol=1e-12)


def test_sqrt_thresholds_are_tight():
    for t in (0.0, 0.1, 1.0, 5.0, 7.3, 10.0):
        x = distance._sqrt_thresholds((t,))[0]
        assert np.sqrt(x) <= t < np.sqrt(np.nextafter(x, np.inf))


def test_empty_sets(backend):
    some = np.array([[1], [2], [3]])
    none = np.zeros((3, 0), np.int32)
    assert np.isinf(nearest_squared_mm(some, none, (1, 1, 1))).all()
    assert nearest_squared_mm(none, some, (1, 1, 1)).shape == (0,)
    assert tolerance_classes(some, none, (1, 1, 1), (0.0, 5.0)).tolist() == [2]


def slab_points(rng, n, box, z) -> np.ndarray:
    """Random points on slice z only (a lesion's cap, seen from the next slice)."""
    points = random_points(rng, n, box)
    points[0] = z
    return np.unique(points, axis=1)


@pytest.mark.parametrize("spacing", [(5.0, 0.45, 0.45), (5.0, 0.9, 0.9), (2.0, 0.8, 3.0)])
def test_own_slice_without_features_is_skipped_exactly(spacing, backend):
    # Queries on slices whose own rows hold no feature within reach: the search skips them
    # and must still find the features one or two slices away.
    rng = np.random.default_rng(7)
    features = slab_points(rng, 150, (6, 40, 40), 2)
    queries = np.concatenate(
        [slab_points(rng, 80, (6, 40, 40), z) for z in (0, 1, 3, 4)] + [features[:, :20]], axis=1
    )
    expected = brute_squared(queries, features, spacing)
    assert np.allclose(nearest_squared_mm(queries, features, spacing), expected, rtol=1e-12)
    tolerances = (0.0, 4.0, 5.0, 10.0)
    rooted = np.sqrt(expected)
    classes = np.array([sum(d > t for t in tolerances) for d in rooted])
    assert np.array_equal(tolerance_classes(queries, features, spacing, tolerances), classes)


def test_a_cached_index_gives_the_same_answers(backend):
    rng = np.random.default_rng(8)
    features = random_points(rng, 200, (10, 40, 40))
    cache: dict = {}
    for seed in range(3):
        queries = random_points(np.random.default_rng(seed), 100, (10, 40, 40))
        got = nearest_squared_mm(queries, features, (3.0, 1.0, 0.5), cache=cache)
        assert np.array_equal(got, nearest_squared_mm(queries, features, (3.0, 1.0, 0.5)))
        classes = tolerance_classes(queries, features, (3.0, 1.0, 0.5), (0.0, 5.0), cache=cache)
        assert np.array_equal(
            classes, tolerance_classes(queries, features, (3.0, 1.0, 0.5), (0.0, 5.0))
        )
    assert bool(cache) == (backend == "numba")  # compiled: the index was kept


@pytest.mark.skipif(not distance._kernels.HAVE_NUMBA, reason="the compiled path")
@pytest.mark.parametrize("spacing", [(5.0, 0.45, 0.45), (1.0, 1.0, 1.0), (2.0, 3.0, 0.8)])
def test_pair_search_equals_the_four_searches(spacing):
    rng = np.random.default_rng(9)
    far = random_points(rng, 30, (4, 10, 10)) + np.array([[2], [60], [70]])  # a far "FP"
    points = (
        random_points(rng, 300, (8, 40, 40)),
        np.concatenate([random_points(rng, 250, (8, 40, 40)), far], axis=1),
        random_points(rng, 400, (9, 41, 41)),
        np.concatenate([random_points(rng, 350, (9, 41, 41)), far], axis=1),
    )
    tolerances = (0.0, 5.0, 10.0)
    found = distance.pair_distances(points, spacing, tolerances, ({}, {}, {}, {}))
    assert found is not None
    ref_vox, test_vox, ref_surf, test_surf = points
    assert np.array_equal(found[0], np.sqrt(nearest_squared_mm(ref_vox, test_vox, spacing)))
    assert np.array_equal(found[1], np.sqrt(nearest_squared_mm(test_vox, ref_vox, spacing)))
    assert np.array_equal(found[2], tolerance_classes(ref_surf, test_surf, spacing, tolerances))
    assert np.array_equal(found[3], tolerance_classes(test_surf, ref_surf, spacing, tolerances))


def test_pair_search_declines_what_it_does_not_cover(monkeypatch):
    some = random_points(np.random.default_rng(10), 50, (5, 20, 20))
    # The finest axis first: not the run axis the compiled pair search is built for.
    assert distance.pair_distances((some,) * 4, (0.5, 1.0, 1.0), (0.0, 5.0), ({},) * 4) is None
    monkeypatch.setattr(distance._kernels, "HAVE_NUMBA", False)
    assert distance.pair_distances((some,) * 4, (5.0, 1.0, 1.0), (0.0, 5.0), ({},) * 4) is None
