"""Nearest-surface distances: exact against all-pairs brute force, on random point sets."""

from __future__ import annotations

import numpy as np
import pytest

from bench.evaluate import distance

SPACINGS = [(5.0, 0.45, 0.45), (1.0, 1.0, 1.0), (0.7, 2.5, 1.3), (0.5, 3.0, 3.0), (2.0, 0.8, 3.0)]


def brute_squared(queries: np.ndarray, features: np.ndarray, spacing) -> np.ndarray:
    delta = (queries[:, :, None] - features[:, None, :]) * np.asarray(spacing)[:, None, None]
    return (delta**2).sum(axis=0).min(axis=1)


def brute_classes(queries, features, spacing, tolerances) -> np.ndarray:
    rooted = np.sqrt(brute_squared(queries, features, spacing))
    return np.array([sum(d > t for t in tolerances) for d in rooted])


def random_points(rng, n, box) -> np.ndarray:
    return np.unique(rng.integers(0, box, size=(n, 3)), axis=0).T.astype(np.int32)


def search(queries, features, spacing, tolerances=(), search_mm=distance.SEARCH_MM, shape=None):
    """`distance.directed` as the pair metrics call it: squared mm, or with tolerances the
    index of the smallest tolerance each query is within."""
    queries, features = (np.ascontiguousarray(p, np.int32) for p in (queries, features))
    if shape is None:
        shape = tuple(int(n) + 1 for n in np.maximum(queries.max(1), features.max(1)))
    limit = max(search_mm, max(tolerances, default=0) * (1 + 1e-6))
    plan = distance.search_plan(tuple(map(float, spacing)), shape, float(limit)).compiled()
    thresholds = distance.sqrt_thresholds(tuple(sorted(tolerances)))
    best = distance.directed(queries, features, plan, thresholds, np.asarray(spacing, float))
    return np.searchsorted(thresholds, best, side="left") if tolerances else best


@pytest.mark.parametrize("spacing", SPACINGS)
def test_exact_against_brute_force(spacing):
    rng = np.random.default_rng(0)
    queries = random_points(rng, 300, (12, 40, 40))
    features = random_points(rng, 60, (12, 40, 40))
    expected = brute_squared(queries, features, spacing)
    assert np.array_equal(search(queries, features, spacing), expected)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_far_queries_take_the_exact_fallback(spacing):
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
    assert np.array_equal(search(queries, features, spacing), expected)
    # A tiny search radius sends nearly everything to the fallback, inside the box too.
    assert np.array_equal(search(queries, features, spacing, search_mm=0.1), expected)
    tolerances = (0.0, 5.0, 10.0)
    classes = brute_classes(queries, features, spacing, tolerances)
    assert np.array_equal(search(queries, features, spacing, tolerances, 0.1), classes)


def test_offset_budget_truncation_stays_exact(monkeypatch):
    monkeypatch.setattr(distance, "MAX_OFFSETS", 5)
    distance.search_plan.cache_clear()
    try:
        rng = np.random.default_rng(3)
        queries = random_points(rng, 200, (8, 30, 30))
        features = random_points(rng, 30, (8, 30, 30))
        expected = brute_squared(queries, features, (1.0, 1.0, 1.0))
        assert np.array_equal(search(queries, features, (1.0, 1.0, 1.0)), expected)
    finally:
        distance.search_plan.cache_clear()


@pytest.mark.parametrize("spacing", SPACINGS)
def test_tolerance_classes_against_brute_force(spacing):
    rng = np.random.default_rng(5)
    queries, features = random_points(rng, 400, (10, 40, 40)), random_points(rng, 40, (10, 40, 40))
    tolerances = (0.0, 1.5, 5.0, 10.0)
    expected = brute_classes(queries, features, spacing, tolerances)
    assert np.array_equal(search(queries, features, spacing, tolerances), expected)


def test_tolerance_exactly_met_counts_as_within():
    # Thick slices: the surfaces one slice apart are exactly 5 mm apart.
    queries = np.array([[0], [3], [3]])
    features = np.array([[1], [3], [3]])
    assert search(queries, features, (5.0, 0.45, 0.45), (0.0, 5.0, 10.0))[0] == 1


def test_unsorted_features_from_joined_boxes():
    # Surface points of a mask cut into boxes are joined box by box, not in raster order.
    rng = np.random.default_rng(6)
    features = random_points(rng, 200, (10, 30, 30))[:, ::-1]
    queries = random_points(rng, 100, (10, 30, 30))
    expected = brute_squared(queries, features, (3.0, 1.0, 0.5))
    assert np.array_equal(search(queries, features, (3.0, 1.0, 0.5)), expected)


def test_sqrt_thresholds_are_tight():
    for t in (0.0, 0.1, 1.0, 5.0, 7.3, 10.0):
        x = distance.sqrt_thresholds((t,))[0]
        assert np.sqrt(x) <= t < np.sqrt(np.nextafter(x, np.inf))


def slab_points(rng, n, box, z) -> np.ndarray:
    """Random points on slice z only (a lesion's cap, seen from the next slice)."""
    points = random_points(rng, n, box)
    points[0] = z
    return np.unique(points, axis=1)


@pytest.mark.parametrize("spacing", [(5.0, 0.45, 0.45), (5.0, 0.9, 0.9), (2.0, 0.8, 3.0)])
def test_own_slice_without_features_is_skipped_exactly(spacing):
    # Queries on slices whose own rows hold no feature within reach: the search skips them
    # and must still find the features one or two slices away.
    rng = np.random.default_rng(7)
    features = slab_points(rng, 150, (6, 40, 40), 2)
    queries = np.concatenate(
        [slab_points(rng, 80, (6, 40, 40), z) for z in (0, 1, 3, 4)] + [features[:, :20]], axis=1
    )
    expected = brute_squared(queries, features, spacing)
    assert np.array_equal(search(queries, features, spacing), expected)
    tolerances = (0.0, 4.0, 5.0, 10.0)
    expected = brute_classes(queries, features, spacing, tolerances)
    assert np.array_equal(search(queries, features, spacing, tolerances), expected)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1e-2), (1e-2, 1e-2, 1e-2), (50.0, 0.45, 50.0)])
def test_extreme_spacings_stay_exact_and_small(spacing):
    # The search reaches no further than the grid: a fine spacing does not make it huge.
    rng = np.random.default_rng(8)
    queries, features = random_points(rng, 200, (10, 40, 40)), random_points(rng, 30, (10, 40, 40))
    plan = distance.search_plan(spacing, (10, 40, 40), distance.SEARCH_MM)
    assert plan.base.size <= distance.MAX_OFFSETS and plan.reach.max() < 40
    expected = brute_squared(queries, features, spacing)
    assert np.array_equal(search(queries, features, spacing, shape=(10, 40, 40)), expected)


def test_plan_puts_the_finest_axis_last():
    assert distance.search_plan((5.0, 0.45, 0.45), (9, 9, 9), 10.0).order.tolist() == [0, 1, 2]
    assert distance.search_plan((0.5, 1.0, 1.0), (9, 9, 9), 10.0).order.tolist() == [1, 2, 0]
    assert distance.search_plan((2.0, 0.8, 3.0), (9, 9, 9), 10.0).order.tolist() == [0, 2, 1]
