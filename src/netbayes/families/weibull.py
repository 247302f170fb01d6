r"""The Weibull family: :math:`S(t) = \exp\{-(t/\lambda)^k\}`.

On the log scale :math:`\log T = \log\lambda + \varepsilon/k` with :math:`\varepsilon = \log E`,
:math:`E \sim \mathrm{Exp}(1)` (the standard minimum-Gumbel law), so the difference of two
errors is logistic. Every quantity has a closed form: the cumulative hazard
:math:`(t/\lambda)^k`, the median :math:`\lambda(\ln 2)^{1/k}`, the truncated quantile
:math:`\lambda\{(L/\lambda)^k - \log(1 - u)\}^{1/k}`. The PyTensor terms are in
:mod:`netbayes.families._weibull_pt` (loaded lazily).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netbayes.families.base import SurvivalFamily

__all__ = ["WEIBULL", "WeibullFamily"]


class WeibullFamily(SurvivalFamily):
    """Weibull AFT family (shape ``k``, scale ``lam``); closed forms throughout."""

    name = "weibull"
    description = "Weibull AFT: S(t) = exp(-(t/lambda)^k)"

    # -- standard error law --------------------------------------------------------------------
    def sf0(self, z: np.ndarray) -> np.ndarray:
        return np.exp(-np.exp(np.asarray(z, float)))

    def cdf0(self, z: np.ndarray) -> np.ndarray:
        return -np.expm1(-np.exp(np.asarray(z, float)))

    def logpdf0(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, float)
        return z - np.exp(z)

    def ppf0(self, p: np.ndarray) -> np.ndarray:
        return np.log(-np.log1p(-np.asarray(p, float)))

    def logsf0_pt(self, z: Any) -> Any:
        import pytensor.tensor as pt

        return -pt.exp(z)

    def logcdf0_pt(self, z: Any) -> Any:
        from netbayes.families._weibull_pt import _log1mexp_neg_from_log

        return _log1mexp_neg_from_log(z)

    def logpdf0_pt(self, z: Any) -> Any:
        import pytensor.tensor as pt

        return z - pt.exp(z)

    def ppf0_pt(self, p: Any) -> Any:
        import pytensor.tensor as pt

        return pt.log(-pt.log1p(-p))

    def diff_cdf_pt(self, x: Any) -> Any:
        import pytensor.tensor as pt

        return pt.sigmoid(x)

    # -- NumPy closed forms --------------------------------------------------------------------
    def sf(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """:math:`\\exp(-(t/\\lambda)^k)` (1 for :math:`t \\le 0`)."""
        t = np.asarray(t, float)
        return np.exp(-np.power(np.maximum(t, 0.0) / lam, k))

    def logsf_np(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """:math:`-(t/\\lambda)^k` (exact far into the tail)."""
        return -self.cumhaz(t, k, lam)

    def cumhaz(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """:math:`(t/\\lambda)^k`."""
        return np.power(np.maximum(np.asarray(t, float), 0.0) / lam, k)

    def hazard(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """:math:`(k/\\lambda)(t/\\lambda)^{k-1}`."""
        t = np.asarray(t, float)
        with np.errstate(divide="ignore"):
            return (
                np.asarray(k, float) / lam * np.power(np.maximum(t, 0.0) / lam, np.asarray(k) - 1.0)
            )

    def median(self, k: Any, lam: Any) -> np.ndarray:
        """:math:`\\lambda(\\ln 2)^{1/k}`."""
        return lam * np.power(math.log(2.0), 1.0 / k)

    def quantile(self, p: Any, k: Any, lam: Any) -> np.ndarray:
        """:math:`\\lambda\\{-\\log(1-p)\\}^{1/k}`."""
        return lam * np.power(-np.log1p(-np.asarray(p, float)), 1.0 / np.asarray(k, float))

    def rmst(self, tau: Any, k: Any, lam: Any) -> np.ndarray:
        """:math:`\\lambda\\,\\Gamma(1 + 1/k)\\,P\\{1/k, (\\tau/\\lambda)^k\\}`, with :math:`P` the
        regularised lower incomplete gamma function (0 for :math:`\\tau \\le 0`)."""
        from scipy.special import gamma, gammainc

        k = np.asarray(k, float)
        x = np.power(np.maximum(np.asarray(tau, float), 0.0) / lam, k)
        return lam * gamma(1.0 + 1.0 / k) * gammainc(1.0 / k, x)

    def sample(
        self, rng: np.random.Generator, k: Any, lam: Any, size: tuple[int, ...]
    ) -> np.ndarray:
        """:math:`\\lambda E^{1/k}`, :math:`E \\sim \\mathrm{Exp}(1)` (``rng.weibull(1.0)``)."""
        return lam * rng.weibull(1.0, size=size) ** (1.0 / k)

    def unit_sample(self, rng: np.random.Generator, k: Any, size: Any) -> np.ndarray:
        """``rng.weibull(k, size)``."""
        return rng.weibull(k, size)

    def truncated_quantile(self, u: Any, k: Any, lam: Any, lower: Any) -> np.ndarray:
        """:math:`\\lambda\\{(L/\\lambda)^k - \\log(1-u)\\}^{1/k}`."""
        return lam * ((lower / lam) ** k - np.log1p(-np.asarray(u, float))) ** (1 / k)

    def truncated_sample(
        self, rng: np.random.Generator, k: Any, lam: Any, lower: Any, size: tuple[int, ...]
    ) -> np.ndarray:
        """Inverse cumulative hazard: :math:`\\lambda\\{(L/\\lambda)^k + E\\}^{1/k}`."""
        h = np.power(lower / lam, k)
        return lam * np.power(h + rng.exponential(size=size), 1.0 / k)

    # -- PyTensor closed forms -----------------------------------------------------------------
    def logsf(self, t: Any, k: Any, lam: Any) -> Any:
        from netbayes.families._weibull_pt import weibull_logsf

        return weibull_logsf(t, k, lam)

    def logcdf(self, t: Any, k: Any, lam: Any) -> Any:
        from netbayes.families._weibull_pt import weibull_logcdf

        return weibull_logcdf(t, k, lam)

    def logpdf(self, t: Any, k: Any, lam: Any) -> Any:
        from netbayes.families._weibull_pt import weibull_logpdf

        return weibull_logpdf(t, k, lam)

    def censored_loglik(self, t: Any, event: Any, k: Any, lam: Any) -> Any:
        from netbayes.families._weibull_pt import censored_weibull_loglik

        return censored_weibull_loglik(t, event, k, lam)

    def median_pt(self, k: Any, lam: Any) -> Any:
        return lam * math.log(2) ** (1 / k)

    def truncated_quantile_pt(self, u: Any, k: Any, lam: Any, lower: Any) -> Any:
        """``lower = 0`` (no truncation) gives the plain quantile with finite gradients: the
        gradient of ``(0/lam)**k`` in ``lam`` is 0 * inf = NaN for k < 1, which made the
        sampler diverge on studies without a selection rule. Positive bounds: unchanged."""
        from pytensor.graph.basic import Variable

        if isinstance(lower, Variable):
            import pytensor.tensor as pt

            pos = pt.gt(lower, 0)
            h_thr = pt.switch(pos, (pt.switch(pos, lower, 1.0) / lam) ** k, 0.0)
        else:
            low = np.asarray(lower, float)
            pos = low > 0
            h_thr = (lower / lam) ** k if pos.all() else (np.where(pos, low, 1.0) / lam) ** k * pos
        return lam * (h_thr - np.log1p(-np.asarray(u, float))) ** (1 / k)

    def km_median_logp(self, median: Any, n: Any, k: Any, lam: Any, lower: Any = None) -> Any:
        from netbayes.families._weibull_pt import km_median_order_stat_logp

        return km_median_order_stat_logp(median, n, k, lam, lower=lower)


WEIBULL = WeibullFamily()
"""The Weibull family (the default of :class:`netbayes.SurvivalModel`)."""
