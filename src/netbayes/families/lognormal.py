r"""The log-normal AFT family: :math:`\log T \sim N(\log\lambda, 1/k^2)`.

The error law is the standard normal, so :math:`\lambda` is the median and :math:`1/k` the SD
of log time; the difference of two errors is :math:`N(0, 2)`. The hazard rises and then falls,
unlike the Weibull's monotone one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netbayes.families.base import SurvivalFamily

__all__ = ["LOGNORMAL", "LogNormalFamily"]

# 0-d float64 arrays: a bare Python float in a PyTensor expression may become a float32 constant
_LOG_SQRT_2PI = np.array(0.5 * math.log(2.0 * math.pi))
_SQRT2 = np.array(math.sqrt(2.0))


def _special() -> Any:
    """:mod:`scipy.special`, imported on first use: it costs a quarter of a second, which a
    prediction from a Weibull model (the default) need not pay."""
    import scipy.special

    return scipy.special


class LogNormalFamily(SurvivalFamily):
    """Log-normal AFT family: shape ``k`` is the precision of log time, ``lam`` the median."""

    name = "lognormal"
    description = "log-normal AFT: log T ~ N(log lambda, 1/k^2)"

    def sf0(self, z: np.ndarray) -> np.ndarray:
        return _special().ndtr(-np.asarray(z, float))

    def cdf0(self, z: np.ndarray) -> np.ndarray:
        return _special().ndtr(np.asarray(z, float))

    def logpdf0(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, float)
        return -0.5 * z * z - _LOG_SQRT_2PI

    def ppf0(self, p: np.ndarray) -> np.ndarray:
        return _special().ndtri(np.asarray(p, float))

    def rmst(self, tau: Any, k: Any, lam: Any) -> np.ndarray:
        """:math:`\\tau S(\\tau) + \\lambda e^{\\sigma^2/2}\\,\\Phi\\{(\\log\\tau - \\log\\lambda -
        \\sigma^2)/\\sigma\\}` with :math:`\\sigma = 1/k` (:math:`E\\{\\min(T, \\tau)\\}`; 0 for
        :math:`\\tau \\le 0`)."""
        tau = np.asarray(tau, float)
        sig = 1.0 / np.asarray(k, float)
        te = np.maximum(tau, 0.0)
        with np.errstate(divide="ignore"):
            z = (np.log(te) - np.log(lam) - sig**2) / sig
        return te * self.sf(te, k, lam) + lam * np.exp(0.5 * sig**2) * _special().ndtr(z)

    @staticmethod
    def _log_ndtr_pt(x: Any) -> Any:
        """Stable :math:`\\log\\Phi(x)`: ``erfcx`` in the lower tail, ``log1p`` above 0."""
        import pytensor.tensor as pt

        lower, upper = pt.lt(x, -1.0), pt.gt(x, 0.0)
        x_lo = pt.switch(lower, x, -1.0)
        x_mid = pt.switch(lower | upper, 0.0, x)
        x_hi = pt.switch(upper, x, 0.0)
        tail = pt.log(0.5 * pt.erfcx(-x_lo / _SQRT2)) - 0.5 * x_lo * x_lo
        body = pt.log(0.5 * pt.erfc(-x_mid / _SQRT2))
        top = pt.log1p(-0.5 * pt.erfc(x_hi / _SQRT2))  # log(1 - Phi(-x)), accurate near 0
        return pt.switch(lower, tail, pt.switch(upper, top, body))

    def logsf0_pt(self, z: Any) -> Any:
        return self._log_ndtr_pt(-z)

    def logcdf0_pt(self, z: Any) -> Any:
        return self._log_ndtr_pt(z)

    def logpdf0_pt(self, z: Any) -> Any:
        return -0.5 * z * z - _LOG_SQRT_2PI

    def ppf0_pt(self, p: Any) -> Any:
        import pytensor.tensor as pt

        return _SQRT2 * pt.erfinv(2.0 * p - 1.0)

    def diff_cdf_pt(self, x: Any) -> Any:
        import pytensor.tensor as pt

        return 0.5 * pt.erfc(-x / 2.0)

    def logsf_np(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """:math:`\\log\\Phi(-z)` (``log_ndtr``: accurate in the upper tail)."""
        return _special().log_ndtr(-self._z(t, k, lam))


LOGNORMAL = LogNormalFamily()
"""The log-normal AFT family."""
