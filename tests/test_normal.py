"""The prediction path's own normal CDF (``netbayes.normal.ndtr``) against SciPy's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr as scipy_ndtr

from netbayes.normal import _EDGE, _STEP, ndtr


def test_absolute_error_everywhere() -> None:
    # a dense grid (not on the Taylor grid: the step is not a multiple of 1/64) plus the grid's
    # own points, midpoints between them (|h| largest) and the tail edge
    x = np.concatenate(
        [
            np.linspace(-40.0, 40.0, 2_000_003),
            np.arange(-_EDGE, _EDGE + _STEP, _STEP),
            np.arange(-_EDGE, _EDGE, _STEP) + _STEP / 2,
            [-_EDGE, _EDGE, np.nextafter(-_EDGE, -1), np.nextafter(_EDGE, 1), 0.0, -0.0],
        ]
    )
    got, want = ndtr(x), scipy_ndtr(x)
    assert np.max(np.abs(got - want)) <= 2.3e-16  # SciPy's own error is ~1 ulp


@pytest.mark.parametrize(
    ("lo", "hi", "rel"),
    [(-8.5, 0.0, 3e-14), (-37.0, -8.5, 3e-13), (0.0, 40.0, 4.5e-16)],
)
def test_relative_error_by_region(lo: float, hi: float, rel: float) -> None:
    x = np.linspace(lo, hi, 400_001)
    got, want = ndtr(x), scipy_ndtr(x)
    assert np.all(want > 0)
    assert np.max(np.abs(got / want - 1.0)) < rel


def test_against_math_erfc_at_random_points() -> None:
    # an independent reference: math.erfc, correctly rounded to within an ulp
    rng = np.random.default_rng(20261207)
    x = rng.normal(scale=3.0, size=5000)
    want = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x])
    assert np.max(np.abs(ndtr(x) - want)) <= 2.3e-16


def test_special_values_shape_and_type() -> None:
    got = ndtr(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0]))
    assert np.isnan(got[0])
    assert got[1:].tolist() == [1.0, 0.0, 0.5, 0.5]
    assert isinstance(ndtr(0.3), np.float64)
    assert ndtr(0.3) == pytest.approx(scipy_ndtr(0.3), abs=2.3e-16)
    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)
    assert ndtr(x).shape == (2, 3, 4)
    assert ndtr(np.empty((0, 3))).shape == (0, 3)
    assert np.array_equal(ndtr(x[:, ::2, :]), ndtr(np.ascontiguousarray(x[:, ::2, :])))
    # symmetric: Phi(x) + Phi(-x) = 1
    y = np.linspace(-8.5, 8.5, 10_001)
    assert np.max(np.abs(ndtr(y) + ndtr(-y) - 1.0)) <= 4.5e-16


def test_monotone() -> None:
    # strictly where Phi is away from 1; within half an ulp of 1 where it rounds there
    x = np.linspace(-9.0, 6.0, 1_000_001)
    assert np.all(np.diff(ndtr(x)) >= 0.0)
    y = np.linspace(6.0, 9.0, 100_001)
    assert np.all(np.diff(ndtr(y)) >= -np.spacing(0.5))


def test_out_may_be_the_input() -> None:
    x = np.linspace(-12.0, 12.0, 50_000).reshape(5, -1)  # more than one block, both tails
    x[0, 3] = np.nan
    want = ndtr(x)
    v = x.copy()
    got = ndtr(v, out=v)
    assert got is v
    assert np.array_equal(got, want, equal_nan=True)
    with pytest.raises(ValueError, match="out=ndarray of shape \\(3,\\) and dtype float64"):
        ndtr(x, out=np.empty(3))


def test_out_may_be_a_strided_view_of_the_input() -> None:
    buf = np.linspace(-10.0, 10.0, 3 * 4 * 7).reshape(3, 4, 7)
    want = scipy_ndtr(buf[:, 1])
    v = buf[:, 1]  # not contiguous
    got = ndtr(v, out=v)
    assert got is v
    assert np.max(np.abs(buf[:, 1] - want)) <= 2.3e-16
    assert np.array_equal(buf[:, 0], np.linspace(-10.0, 10.0, 84).reshape(3, 4, 7)[:, 0])
