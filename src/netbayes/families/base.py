r"""The survival-family contract: an AFT location-scale law on log time.

Every family describes a time :math:`T > 0` through

.. math:: \log T = \log\lambda + \varepsilon / k,

with scale :math:`\lambda` (the accelerated-failure-time predictor acts on
:math:`\log\lambda`), shape :math:`k > 0` (larger :math:`k`: less spread on the log scale) and a
standard error law :math:`\varepsilon` that is the family's only defining choice. A family
supplies that law's survival function, log density and quantile function (:meth:`sf0`,
:meth:`logpdf0`, :meth:`ppf0`) in NumPy and (:meth:`logsf0_pt`, :meth:`logcdf0_pt`,
:meth:`logpdf0_pt`, :meth:`ppf0_pt`) in PyTensor, plus the law of the difference of two
independent errors (:meth:`diff_cdf_pt`, used by the implied rank correlation). Everything else
(survival, density, hazard, cumulative hazard, quantiles, medians, mixtures, truncated draws,
censored log-likelihoods, the order-statistic density of a published median) is derived here
once. A family may override any derived method with a closed form; :mod:`.weibull` does.

NumPy methods take arrays that broadcast; PyTensor methods (``*_pt`` and :meth:`logpdf`,
:meth:`logsf`, :meth:`logcdf`, :meth:`censored_loglik`, :meth:`km_median_logp`) import
PyTensor lazily, so the prediction path, which uses only the NumPy half, never loads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SurvivalFamily"]

_RMST_NODES = 64  # Gauss-Legendre nodes of the generic RMST


def _gauss_legendre_unit(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


class SurvivalFamily:
    """Base class of a survival family (see the module docstring).

    Attributes
    ----------
    name : str
        The registry name (``SurvivalModel(..., family=name)``).
    description : str
        One line for cards and reports.
    """

    name: str = ""
    description: str = ""

    def __repr__(self) -> str:
        return f"<survival family {self.name!r}>"

    # -- the standard error law (a family defines these) ---------------------------------------
    def sf0(self, z: np.ndarray) -> np.ndarray:
        """Survival function of the standard error law, :math:`P(\\varepsilon > z)`."""
        raise NotImplementedError

    def cdf0(self, z: np.ndarray) -> np.ndarray:
        """Distribution function of the standard error law (override where ``1 - sf0``
        loses precision in the lower tail)."""
        return 1.0 - self.sf0(z)

    def logpdf0(self, z: np.ndarray) -> np.ndarray:
        """Log density of the standard error law."""
        raise NotImplementedError

    def ppf0(self, p: np.ndarray) -> np.ndarray:
        """Quantile function of the standard error law."""
        raise NotImplementedError

    def logsf0_pt(self, z: Any) -> Any:
        """PyTensor :math:`\\log P(\\varepsilon > z)`."""
        raise NotImplementedError

    def logcdf0_pt(self, z: Any) -> Any:
        """PyTensor :math:`\\log P(\\varepsilon \\le z)`."""
        raise NotImplementedError

    def logpdf0_pt(self, z: Any) -> Any:
        """PyTensor log density of the standard error law."""
        raise NotImplementedError

    def ppf0_pt(self, p: Any) -> Any:
        """PyTensor quantile function of the standard error law."""
        raise NotImplementedError

    def diff_cdf_pt(self, x: Any) -> Any:
        """PyTensor CDF of :math:`\\varepsilon_1 - \\varepsilon_2` (independent copies)."""
        raise NotImplementedError

    # -- NumPy: derived ------------------------------------------------------------------------
    @staticmethod
    def _z(t: Any, k: Any, lam: Any) -> np.ndarray:
        t = np.asarray(t, float)
        with np.errstate(divide="ignore"):
            return np.asarray(k, float) * (np.log(np.maximum(t, 0.0)) - np.log(lam))

    def sf(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """Survival function :math:`S(t)` (1 for :math:`t \\le 0`; broadcasting)."""
        return self.sf0(self._z(t, k, lam))

    def cdf(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """Distribution function :math:`F(t) = 1 - S(t)` (0 for :math:`t \\le 0`)."""
        return self.cdf0(self._z(t, k, lam))

    def pdf(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """Density :math:`f(t) = (k / t) f_0(k(\\log t - \\log\\lambda))` (0 for t <= 0)."""
        t = np.asarray(t, float)
        z = self._z(t, k, lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.asarray(k, float) / t * np.exp(self.logpdf0(z))
        return np.where(t > 0, out, 0.0)

    def logsf_np(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """NumPy :math:`\\log S(t)` (override with a closed form where ``log(sf)`` underflows)."""
        with np.errstate(divide="ignore"):
            return np.log(self.sf(t, k, lam))

    def logpdf_np(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """NumPy :math:`\\log f(t) = \\log k - \\log t + \\log f_0(z)` (-inf for t <= 0)."""
        t = np.asarray(t, float)
        z = self._z(t, k, lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log(np.asarray(k, float)) - np.log(t) + self.logpdf0(z)
        return np.where(t > 0, out, -np.inf)

    def censored_loglik_np(self, t: Any, event: Any, k: Any, lam: Any) -> np.ndarray:
        """NumPy elementwise log-likelihood of right-censored times (event 1, censored 0):
        the same values as :meth:`censored_loglik`, for pointwise log-likelihoods (LOO)."""
        ev = np.asarray(event) != 0
        return np.where(ev, self.logpdf_np(t, k, lam), self.logsf_np(t, k, lam))

    def hazard(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """Hazard :math:`h(t) = f(t) / S(t)`, as :math:`\\exp(\\log f - \\log S)` (finite where
        both underflow; 0 for :math:`t \\le 0`)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.exp(self.logpdf_np(t, k, lam) - self.logsf_np(t, k, lam))

    def cumhaz(self, t: Any, k: Any, lam: Any) -> np.ndarray:
        """Cumulative hazard :math:`H(t) = -\\log S(t)` (``-log1p(-F)`` where F is small)."""
        z = self._z(t, k, lam)
        f, s = self.cdf0(z), self.sf0(z)
        with np.errstate(divide="ignore"):
            return np.where(f < 0.5, -np.log1p(-f), -np.log(s))

    def quantile(self, p: Any, k: Any, lam: Any) -> np.ndarray:
        """Time by which a share ``p`` has had the event: :math:`F^{-1}(p)`."""
        return np.asarray(lam, float) * np.exp(self.ppf0(np.asarray(p, float)) / k)

    def median(self, k: Any, lam: Any) -> np.ndarray:
        """Median :math:`F^{-1}(1/2)` (broadcasting)."""
        return self.quantile(0.5, k, lam)

    def sample(
        self, rng: np.random.Generator, k: Any, lam: Any, size: tuple[int, ...]
    ) -> np.ndarray:
        """Independent draws of :math:`T` (inverse CDF of uniforms)."""
        return self.quantile(rng.uniform(size=size), k, lam)

    def unit_sample(self, rng: np.random.Generator, k: Any, size: Any) -> np.ndarray:
        r"""Draws of :math:`T / \lambda` (the law at scale 1)."""
        return np.exp(self.ppf0(rng.uniform(size=size)) / k)

    def truncated_quantile(self, u: Any, k: Any, lam: Any, lower: Any) -> np.ndarray:
        """Quantile ``u`` of :math:`T` conditioned on :math:`T \\ge` ``lower``."""
        s_l = self.sf(lower, k, lam)
        return self.quantile(1.0 - s_l * (1.0 - np.asarray(u, float)), k, lam)

    def truncated_sample(
        self, rng: np.random.Generator, k: Any, lam: Any, lower: Any, size: tuple[int, ...]
    ) -> np.ndarray:
        """Draws of :math:`T` conditioned on :math:`T \\ge` ``lower``."""
        return self.truncated_quantile(rng.uniform(size=size), k, lam, lower)

    def mixture_sf(self, t: Any, k: np.ndarray, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Survival function of a mixture over components with a shared shape.

        Parameters
        ----------
        t : numpy.ndarray, shape (T,)
        k : numpy.ndarray, shape (draws,)
        lam : numpy.ndarray, shape (draws, J)
        w : numpy.ndarray, shape (J,)
            Component weights (sum to 1).

        Returns
        -------
        numpy.ndarray, shape (draws, T)
        """
        t = np.asarray(t, float)
        s = self.sf(t[None, None, :], k[:, None, None], lam[:, :, None])
        out = np.einsum("sjt,j->st", s, np.asarray(w, float))
        # weights that sum to 1 only to rounding (e.g. 24 components of w / 8) must not give
        # S(0) = 1 - 1 ulp or S > 1
        np.minimum(out, 1.0, out=out)
        out[:, t == 0] = 1.0
        return out

    def mixture_median(
        self, k: np.ndarray, lam: np.ndarray, w: np.ndarray, iters: int = 60
    ) -> np.ndarray:
        """Median of a mixture per draw, by bisection between the component medians.

        Parameters
        ----------
        k : numpy.ndarray, shape (draws,)
        lam : numpy.ndarray, shape (draws, J)
        w : numpy.ndarray, shape (J,)
            Weights; components with zero weight are ignored.
        iters : int
            Bisection steps.

        Returns
        -------
        numpy.ndarray, shape (draws,)
        """
        w = np.asarray(w, float)
        keep = w > 0
        lam, w = lam[:, keep], w[keep]
        med = self.median(k[:, None], lam)
        if lam.shape[1] == 1:
            return med[:, 0]
        lo, hi = med.min(axis=1), med.max(axis=1)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            s = (self.sf(mid[:, None], k[:, None], lam) * w).sum(axis=1)
            above = s > 0.5  # the median is later than mid
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        return 0.5 * (lo + hi)

    def rmst(self, tau: Any, k: Any, lam: Any) -> np.ndarray:
        r"""Restricted mean survival time :math:`\int_0^\tau S(t)\,dt = E\{\min(T, \tau)\}`
        (broadcasting; 0 for :math:`\tau \le 0`).

        The generic form is Gauss-Legendre quadrature after :math:`t = \tau s^2` (which
        smooths the :math:`t^k` behaviour of :math:`S` near 0); a family overrides it with a
        closed form where one exists.
        """
        tau = np.asarray(tau, float)
        s, wq = _gauss_legendre_unit(_RMST_NODES)
        tau_e = np.maximum(tau, 0.0)[..., None]
        sf = self.sf(
            tau_e * s**2, np.asarray(k, float)[..., None], np.asarray(lam, float)[..., None]
        )
        return np.sum(2.0 * tau_e * s * sf * wq, axis=-1)

    # -- mixtures (components with weights; a shape per draw or per component) ---------------
    @staticmethod
    def _mixture_args(
        k: np.ndarray, lam: np.ndarray, w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``k`` as (draws, J) (a shared shape (draws,) broadcast), ``lam`` (draws, J) and
        ``w`` (J,), components with zero weight dropped."""
        lam = np.asarray(lam, float)
        k = np.asarray(k, float)
        k = np.broadcast_to(k[:, None] if k.ndim == 1 else k, lam.shape)
        w = np.asarray(w, float)
        keep = w > 0
        return k[:, keep], lam[:, keep], w[keep]

    def mixture_pdf(self, t: Any, k: np.ndarray, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Density of a mixture, shape (draws, T); ``k`` (draws,) shared or (draws, J) per
        component, ``lam`` (draws, J), ``w`` (J,) summing to 1."""
        k, lam, w = self._mixture_args(k, lam, w)
        t = np.asarray(t, float)
        f = self.pdf(t[None, None, :], k[:, :, None], lam[:, :, None])
        return np.einsum("sjt,j->st", f, w)

    def mixture_hazard(self, t: Any, k: np.ndarray, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
        r"""Hazard of a mixture, :math:`\sum_j w_j f_j(t) / \sum_j w_j S_j(t)`, shape
        (draws, T) (arguments as :meth:`mixture_pdf`): the components' hazards averaged with
        weights :math:`w_j S_j(t) / S(t)`, formed from the log survival functions, so that it
        stays finite where every :math:`S_j` underflows."""
        k, lam, w = self._mixture_args(k, lam, w)
        t = np.asarray(t, float)
        args = (t[None, None, :], k[:, :, None], lam[:, :, None])
        logs = self.logsf_np(*args) + np.log(w)[None, :, None]
        top = np.max(logs, axis=1, keepdims=True)
        wt = np.exp(logs - np.where(np.isfinite(top), top, 0.0))
        wt /= wt.sum(axis=1, keepdims=True)
        return np.sum(wt * self.hazard(*args), axis=1)

    def mixture_sf_any(self, t: Any, k: np.ndarray, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
        """:meth:`mixture_sf` with a shape per draw (draws,) or per component (draws, J)."""
        k = np.asarray(k, float)
        if k.ndim == 1:
            return self.mixture_sf(t, k, lam, w)
        k, lam, w = self._mixture_args(k, lam, w)
        t = np.asarray(t, float)
        out = np.einsum("sjt,j->st", self.sf(t[None, None, :], k[:, :, None], lam[:, :, None]), w)
        np.minimum(out, 1.0, out=out)
        out[:, t <= 0] = 1.0
        return out

    def mixture_cumhaz(self, t: Any, k: np.ndarray, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
        r"""Cumulative hazard of a mixture, :math:`-\log\sum_j w_j S_j(t)`, computed from the
        components' log survival (exact far into the tail); shape (draws, T)."""
        k, lam, w = self._mixture_args(k, lam, w)
        t = np.asarray(t, float)
        logs = self.logsf_np(t[None, None, :], k[:, :, None], lam[:, :, None])
        logs = logs + np.log(w)[None, :, None]
        top = np.max(logs, axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            out = -(top[:, 0, :] + np.log(np.sum(np.exp(logs - top), axis=1)))
        out = np.maximum(out, 0.0)
        out[:, t <= 0] = 0.0
        return out

    def mixture_rmst(self, tau: Any, k: np.ndarray, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
        r"""Restricted mean survival time of a mixture, :math:`\sum_j w_j\,\mathrm{RMST}_j(\tau)`
        (it is linear in :math:`S`), shape (draws, T)."""
        k, lam, w = self._mixture_args(k, lam, w)
        tau = np.asarray(tau, float)
        r = self.rmst(tau[None, None, :], k[:, :, None], lam[:, :, None])
        return np.einsum("sjt,j->st", r, w)

    def mixture_quantile(
        self, p: Any, k: np.ndarray, lam: np.ndarray, w: np.ndarray, iters: int = 100
    ) -> np.ndarray:
        """Quantiles :math:`F^{-1}(p)` of a mixture per draw: safeguarded Newton steps on log
        time inside a bracket between the smallest and the largest component quantile (the
        mixture's lies between them), a bisection step wherever Newton would leave it.

        Parameters
        ----------
        p : numpy.ndarray, shape (P,)
            Probabilities in (0, 1).
        k : numpy.ndarray, shape (draws,) or (draws, J)
        lam : numpy.ndarray, shape (draws, J)
        w : numpy.ndarray, shape (J,)
        iters : int
            At most this many steps; it stops when every root is known to a relative 1e-13
            on the time scale (Newton converges in a handful of steps).

        Returns
        -------
        numpy.ndarray, shape (draws, P)
        """
        k, lam, w = self._mixture_args(k, lam, w)
        p = np.asarray(p, float)
        q = self.quantile(p[None, None, :], k[:, :, None], lam[:, :, None])  # (S, J, P)
        if lam.shape[1] == 1:
            return q[:, 0, :]
        logq = np.log(q)
        lo, hi = logq.min(axis=1), logq.max(axis=1)  # (S, P)
        x = np.einsum("sjp,j->sp", logq, w)  # start: the weighted mean of the log quantiles
        target = 1.0 - p[None, :]
        kk, ll = k[:, :, None], lam[:, :, None]
        for _ in range(iters):
            t = np.exp(x)[:, None, :]
            g = np.einsum("sjp,j->sp", self.sf(t, kk, ll), w) - target  # > 0: root is later
            lo = np.where(g > 0, x, lo)
            hi = np.where(g > 0, hi, x)
            dens = np.einsum("sjp,j->sp", self.pdf(t, kk, ll), w) * np.exp(x)  # -dS/dlog t
            with np.errstate(divide="ignore", invalid="ignore"):
                step = g / dens
            newton = x + step
            ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
            x_new = np.where(ok, newton, 0.5 * (lo + hi))
            done = np.abs(x_new - x) <= 1e-13 * np.maximum(1.0, np.abs(x))
            x = x_new
            if np.all(done | (hi - lo <= 1e-13 * np.maximum(1.0, np.abs(x)))):
                break
        return np.exp(x)

    # -- PyTensor: derived ---------------------------------------------------------------------
    @staticmethod
    def _z_pt(t: Any, k: Any, lam: Any) -> tuple[Any, Any, Any]:
        """``(t > 0, safe t, k (log t - log lam))`` with a finite untaken branch."""
        import pytensor.tensor as pt

        from netbayes.families._pt import _as_float

        t, k, lam = _as_float(t), _as_float(k), _as_float(lam)
        pos = pt.gt(t, 0.0)
        t_safe = pt.switch(pos, t, lam)
        return pos, t_safe, k * (pt.log(t_safe) - pt.log(lam))

    def logsf(self, t: Any, k: Any, lam: Any) -> Any:
        """PyTensor :math:`\\log S(t)` (0 for :math:`t \\le 0`)."""
        import pytensor.tensor as pt

        pos, _, z = self._z_pt(t, k, lam)
        return pt.switch(pos, self.logsf0_pt(z), 0.0)

    def logcdf(self, t: Any, k: Any, lam: Any) -> Any:
        """PyTensor :math:`\\log F(t)` (:math:`-\\infty` for :math:`t \\le 0`)."""
        import pytensor.tensor as pt

        pos, _, z = self._z_pt(t, k, lam)
        return pt.switch(pos, self.logcdf0_pt(z), -np.inf)

    def logpdf(self, t: Any, k: Any, lam: Any) -> Any:
        """PyTensor :math:`\\log f(t)` (:math:`-\\infty` for :math:`t \\le 0`)."""
        import pytensor.tensor as pt

        from netbayes.families._pt import _as_float

        pos, t_safe, z = self._z_pt(t, k, lam)
        return pt.switch(pos, pt.log(_as_float(k)) - pt.log(t_safe) + self.logpdf0_pt(z), -np.inf)

    def censored_loglik(self, t: Any, event: Any, k: Any, lam: Any) -> Any:
        """PyTensor elementwise log-likelihood of right-censored times (event 1, censored 0)."""
        import pytensor.tensor as pt

        event = pt.as_tensor_variable(event)
        return pt.switch(pt.neq(event, 0), self.logpdf(t, k, lam), self.logsf(t, k, lam))

    def median_pt(self, k: Any, lam: Any) -> Any:
        """PyTensor median :math:`\\lambda e^{q_0(1/2)/k}`."""
        import pytensor.tensor as pt

        return lam * pt.exp(np.asarray(self.ppf0(np.asarray(0.5)), float) / k)

    def truncated_quantile_pt(self, u: Any, k: Any, lam: Any, lower: Any) -> Any:
        """PyTensor quantile ``u`` (NumPy constants) of :math:`T \\mid T \\ge` ``lower``."""
        import pytensor.tensor as pt

        log_s = self.logsf(lower, k, lam)
        p = 1.0 - pt.exp(log_s) * (1.0 - np.asarray(u, float))
        return lam * pt.exp(self.ppf0_pt(p) / k)

    def km_median_logp(self, median: Any, n: Any, k: Any, lam: Any, lower: Any = None) -> Any:
        """PyTensor log density of an uncensored Kaplan-Meier median of ``n`` iid times.

        The :math:`\\lceil n/2 \\rceil`-th order statistic, optionally of the law truncated to
        :math:`t \\ge` ``lower`` (see
        :func:`netbayes.likelihoods.survival.km_median_order_stat_logp`).
        """
        import pytensor.tensor as pt

        from netbayes.families._pt import _as_float

        m, n = _as_float(median), _as_float(n)
        r = pt.ceil(n / 2.0)
        log_comb = pt.gammaln(n + 1.0) - pt.gammaln(r) - pt.gammaln(n - r + 1.0)
        logf = self.logpdf(m, k, lam)
        log_s = self.logsf(m, k, lam)
        if lower is None:
            log_f_cdf = self.logcdf(m, k, lam)
            valid = pt.gt(m, 0.0)
        else:
            lower = _as_float(lower)
            log_sl = self.logsf(lower, k, lam)
            valid = pt.and_(pt.gt(m, 0.0), pt.ge(m, lower))
            diff = pt.switch(valid, log_s - log_sl, -1.0)
            log_s = diff
            log_f_cdf = pt.log1mexp(pt.minimum(diff, 0.0))
            logf = logf - log_sl
        term_f = pt.switch(pt.gt(r, 1.0), (r - 1.0) * log_f_cdf, 0.0)
        term_s = pt.switch(pt.gt(n, r), (n - r) * log_s, 0.0)
        return pt.switch(valid, log_comb + term_f + term_s + logf, -np.inf)
