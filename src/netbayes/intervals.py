"""The one interval convention of netbayes: 95% equal-tailed by default, HDI on request.

Every table, plot band and sentence netbayes produces gets its interval from an
:class:`Interval`, and every column name carries its kind and level (``eti95_lower``,
``hdi90_upper``), so a number pasted into a paper always says what it is. NumPy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import numpy as np

__all__ = ["DEFAULT_INTERVAL", "Interval", "as_interval"]


def _as_float(x: float) -> float | None:
    """``float(x)``, or None for an integer beyond the float range."""
    try:
        return float(x)
    except OverflowError:
        return None


def _show(value: object) -> str:
    """``repr(value)``, also for an integer with more digits than Python prints."""
    try:
        return repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        if isinstance(value, int):
            return f"<an integer of {value.bit_length()} bits>"
        raise


@dataclass(frozen=True)
class Interval:
    """A credible (or predictive) interval convention.

    Parameters
    ----------
    prob : float
        Probability mass inside the interval, in (0, 1). Default 0.95.
    kind : {"eti", "hdi"}
        ``"eti"``: equal-tailed (quantiles ``(1-prob)/2`` and ``(1+prob)/2``), the default,
        invariant under monotone transformations (the interval of a median in months maps to
        the interval of its logarithm). ``"hdi"``: the shortest interval holding ``prob`` of
        the draws (unimodal posteriors only).
    """

    prob: float = 0.95
    kind: Literal["eti", "hdi"] = "eti"

    def __post_init__(self) -> None:
        p = _as_float(self.prob) if isinstance(self.prob, (int, float)) else None
        if p is None or not (0.0 < p < 1.0):
            raise ValueError(f"prob={_show(self.prob)} is not allowed; expected a number in (0, 1)")
        if self.kind not in ("eti", "hdi"):
            raise ValueError(f"kind={self.kind!r} is not allowed; expected 'eti' or 'hdi'")

    @property
    def percent(self) -> str:
        """The level as printed: ``"95"``, ``"89"``, ``"97.5"``; near 0 or 1 with the digits
        that tell it from 0% or 100% (``0.9999999`` is ``"99.99999"``, never ``"100"``).

        Six significant digits, more where they do not give the level back (to a relative
        1e-9, and its complement, the tails, to a relative 1e-6), so a label never rounds a
        level to another one.
        """
        p = float(self.prob)
        exact = Decimal(p)  # the level's exact binary value: no rounding in the checks
        for digits in range(6, 40):
            text = f"{100 * p:.{digits}g}" if digits < 18 else f"{100 * exact:.{digits}g}"
            q = Decimal(text) / 100
            if abs(q - exact) <= Decimal("1e-9") * exact and abs(q - exact) <= Decimal("1e-6") * (
                1 - exact
            ):
                break
        return text.replace("E", "e")

    @property
    def label(self) -> str:
        """Column-name stem, e.g. ``"eti95"`` or ``"hdi97.5"``."""
        return f"{self.kind}{self.percent}"

    @property
    def columns(self) -> tuple[str, str]:
        """Names of the lower and upper columns, e.g. ``("eti95_lower", "eti95_upper")``."""
        return (f"{self.label}_lower", f"{self.label}_upper")

    @property
    def text(self) -> str:
        """Human-readable name, e.g. ``"95% ETI"``."""
        return f"{self.percent}% {self.kind.upper()}"

    def bounds(self, draws: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the interval along ``axis`` of ``draws``.

        Raises
        ------
        ValueError
            If the draws are empty or contain NaN (an interval is never computed silently
            from missing values).
        """
        x = np.asarray(draws, dtype=float)
        if x.size == 0 or x.shape[axis] == 0:
            raise ValueError("cannot compute an interval from zero draws")
        if np.isnan(x).any():
            raise ValueError("draws contain NaN; an interval of them would be meaningless")
        if self.kind == "eti":
            q = ((1.0 - self.prob) / 2.0, (1.0 + self.prob) / 2.0)
            lo, hi = np.quantile(x, q, axis=axis)
            return lo, hi
        return _hdi(x, self.prob, axis)

    def describe(self, draws: np.ndarray, axis: int = 0) -> dict[str, np.ndarray]:
        """Posterior median, mean and the interval bounds, keyed by their column names."""
        lo, hi = self.bounds(draws, axis)
        x = np.asarray(draws, dtype=float)
        return {
            "median": np.median(x, axis=axis),
            "mean": x.mean(axis=axis),
            self.columns[0]: lo,
            self.columns[1]: hi,
        }

    def sentence(
        self, what: str, median: float, lower: float, upper: float, unit: str = "", digits: int = 1
    ) -> str:
        """A results sentence, e.g. ``"median PFS 14.2 months (95% ETI 11.0-17.9)"``."""
        u = f" {unit}" if unit else ""
        f = f"{{:.{digits}f}}"
        return f"{what} {f.format(median)}{u} ({self.text} {f.format(lower)}-{f.format(upper)})"


DEFAULT_INTERVAL = Interval()
"""95% equal-tailed: the default of every netbayes table, band and sentence."""


def as_interval(interval: Interval | float | None) -> Interval:
    """Coerce ``None`` (the default), a probability, or an :class:`Interval` to an Interval."""
    if interval is None:
        return DEFAULT_INTERVAL
    if isinstance(interval, Interval):
        return interval
    if isinstance(interval, (int, float)) and not isinstance(interval, bool):
        p = _as_float(interval)
        if p is None:  # an integer beyond the float range
            raise ValueError(
                f"interval={_show(interval)} is not allowed; expected a probability in (0, 1)"
            )
        return Interval(p)
    raise TypeError(
        f"interval={_show(interval)} is not allowed; expected an Interval, a probability in "
        "(0, 1) or None"
    )


def _hdi(x: np.ndarray, prob: float, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Shortest window of ``ceil(prob * n)`` sorted draws along ``axis``."""
    s = np.sort(np.moveaxis(x, axis, -1), axis=-1)
    n = s.shape[-1]
    k = max(1, min(n, math.ceil(prob * n)))
    width = s[..., k - 1 :] - s[..., : n - k + 1]
    i = np.argmin(width, axis=-1)[..., None]
    lo = np.take_along_axis(s, i, axis=-1)[..., 0]
    hi = np.take_along_axis(s, i + k - 1, axis=-1)[..., 0]
    return lo, hi
