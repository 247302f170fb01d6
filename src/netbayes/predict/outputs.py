r"""Every summary of a predicted survival law, from the law's draws (NumPy only).

A prediction keeps, per patient (or per standardised population), the survival law of every
posterior draw: the shape :math:`k`, the scales :math:`\lambda_j` and the weights :math:`w_j`
of its mixture components (one component for a patient of a known tumour type; several for a
coarse type, a 188Re-HEDP patient without a prior PFS, or a population). :class:`LawOutputs`
turns those into the summary types of flexsurv's ``summary(type=...)`` and survextrap's
``survival()``/``hazard()``/``rmst()`` with credible intervals, or into their draws:

========================  ==============================================  ==================
method                    quantity (per draw)                             unit
========================  ==============================================  ==================
``survival(t)``           :math:`S(t) = \sum_j w_j S_j(t)`                probability
``hazard(t)``             :math:`h(t) = \sum_j w_j f_j(t) / S(t)`          per month
``cumhaz(t)``             :math:`H(t) = -\log S(t)`                       (none)
``rmst(tau)``             :math:`\int_0^\tau S(t)\,dt = \sum_j w_j          months
                          \mathrm{RMST}_j(\tau)`
``quantile(p)``           :math:`F^{-1}(p)`, the time by which a share    months
                          :math:`p` has had the event (``p=0.5``: the
                          median)
========================  ==============================================  ==================

Each family computes these in closed form where one exists (the Weibull RMST through the
regularised incomplete gamma function, the log-normal one through :math:`\Phi`); a mixture's
quantile is found by bisection. The intervals are those of the prediction (95% equal-tailed by
default) unless the call names another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from netbayes._lazy import LazyModule
from netbayes.intervals import Interval, as_interval

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from netbayes.families import SurvivalFamily
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = ["LawOutputs"]

Law = tuple[np.ndarray, np.ndarray, np.ndarray]
"""A survival law per draw: shape (draws,) or (draws, J), scales (draws, J), weights (J,)."""

_WORK_ELEMENTS = 20_000_000  # elements of one chunk's (draws, components, values) array

# kind -> (argument name, coordinate column, unit)
_KINDS: dict[str, tuple[str, str, str]] = {
    "survival": ("t", "t_months", "probability"),
    "hazard": ("t", "t_months", "per month"),
    "cumhaz": ("t", "t_months", "cumulative hazard"),
    "rmst": ("tau", "tau_months", "months"),
    "quantile": ("p", "p", "months"),
}


def _values(kind: str, values: Any) -> np.ndarray:
    """The times (or probabilities) of one call as a 1-d float array, checked."""
    arg = _KINDS[kind][0]
    a = np.atleast_1d(np.asarray(values, dtype=object))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{arg}={values!r} must be a number or a non-empty 1-d sequence")
    out = np.empty(a.size)
    for i, v in enumerate(a):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise ValueError(f"{arg}={values!r}: {v!r} is not a number")
        out[i] = float(v)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{arg}={values!r} must be finite")
    if kind == "quantile":
        if np.any((out <= 0) | (out >= 1)):
            raise ValueError(f"p={values!r} must lie strictly between 0 and 1 (0.5: the median)")
    elif kind in ("hazard", "rmst"):
        if np.any(out <= 0):
            what = "times after 0" if kind == "hazard" else "horizons after 0"
            raise ValueError(f"{arg}={values!r} must be {what} (months > 0)")
    elif np.any(out < 0):
        raise ValueError(f"{arg}={values!r} must be times >= 0 (months)")
    return out


def evaluate_law(family: SurvivalFamily, kind: str, values: np.ndarray, law: Law) -> np.ndarray:
    """One summary of a law per draw, shape (draws, len(values))."""
    k, lam, w = law
    fn = {
        "survival": family.mixture_sf_any,
        "hazard": family.mixture_hazard,
        "cumhaz": family.mixture_cumhaz,
        "rmst": family.mixture_rmst,
        "quantile": family.mixture_quantile,
    }[kind]
    # draws in chunks, so that the (draws, components, values) work arrays stay near 160 MB
    per_draw = max(1, lam.shape[1] * values.size)
    step = max(1, _WORK_ELEMENTS // per_draw)
    k = np.asarray(k, float)
    out = np.concatenate(
        [
            np.asarray(fn(values, k[a : a + step], lam[a : a + step], w), float)
            for a in range(0, lam.shape[0], step)
        ]
    )
    if not np.all(np.isfinite(out)):
        bad = values[~np.all(np.isfinite(out), axis=0)]
        raise ValueError(
            f"{kind} is not finite at {_KINDS[kind][0]}={', '.join(f'{v:g}' for v in bad)} for "
            "some posterior draws (far beyond the data); ask for earlier times"
        )
    return out


class LawOutputs:
    """Mixin: flexsurv-style summaries of predicted survival laws.

    A subclass provides ``family``, ``interval``, ``endpoint`` and ``_law_units()``: the
    labelled laws (patients, or one standardised population) in order.
    """

    family: SurvivalFamily
    interval: Interval
    endpoint: str
    chains: int
    _unit_name: str = "patient"

    def _law_units(self) -> Mapping[Any, Law]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _select(self, which: Any) -> list[Any]:
        units = self._law_units()
        if which is None:
            return list(units)
        many = isinstance(which, (list, tuple, np.ndarray, pd.Index))
        chosen = list(which) if many else [which]
        for u in chosen:
            if u not in units:
                raise KeyError(
                    f"{self._unit_name} {u!r} not found; {self._unit_name}s: {list(units)}"
                )
        return chosen

    def _output(
        self,
        kind: str,
        values: Any,
        which: Any,
        draws: bool,
        interval: Interval | float | None,
    ) -> pd.DataFrame | xr.DataArray:
        vals = _values(kind, values)
        units = self._law_units()
        chosen = self._select(which)
        arrays = [evaluate_law(self.family, kind, vals, units[u]) for u in chosen]
        _, col, unit = _KINDS[kind]
        if draws:
            import xarray as xr

            a = np.stack(arrays)
            c = self.chains
            return xr.DataArray(
                a.reshape(a.shape[0], c, a.shape[1] // c, a.shape[2]),
                dims=(self._unit_name, "chain", "draw", col),
                coords={self._unit_name: chosen, col: vals},
                name=f"{kind}_{self.endpoint}",
                attrs={"unit": unit, "endpoint": self.endpoint},
            )
        iv = self.interval if interval is None else as_interval(interval)
        lo, hi = iv.columns
        frames = []
        for u, a in zip(chosen, arrays, strict=True):
            d = iv.describe(a, axis=0)
            frames.append(
                pd.DataFrame(
                    {
                        self._unit_name: [u] * len(vals),
                        "quantity": f"{kind}_{self.endpoint}",
                        col: vals,
                        "unit": unit,
                        "median": d["median"],
                        "mean": d["mean"],
                        lo: d[lo],
                        hi: d[hi],
                    }
                )
            )
        out = pd.concat(frames, ignore_index=True)
        out.attrs["interval"] = iv.text
        return out

    def survival(
        self,
        t: float | Sequence[float],
        patient: Any = None,
        *,
        draws: bool = False,
        interval: Interval | float | None = None,
    ) -> pd.DataFrame | xr.DataArray:
        """:math:`S(t)`, the probability of being event-free at ``t`` months.

        Parameters
        ----------
        t : float or sequence of float
            Times, months (>= 0).
        patient : label or list of labels, optional
            Whose (default: every patient of the prediction, or the population).
        draws : bool
            Return the draws (an ``xarray.DataArray``: patient, chain, draw, ``t_months``)
            instead of the summary table.
        interval : Interval or float, optional
            The interval of the table (default: the prediction's).

        Returns
        -------
        pandas.DataFrame or xarray.DataArray
            The table has one row per patient and time: ``patient``, ``quantity``
            (``survival_pfs``/``survival_os``), ``t_months``, ``unit``, posterior ``median``
            and ``mean`` and the interval bounds (``eti95_lower``, ``eti95_upper`` by default).
        """
        return self._output("survival", t, patient, draws, interval)

    def hazard(
        self,
        t: float | Sequence[float],
        patient: Any = None,
        *,
        draws: bool = False,
        interval: Interval | float | None = None,
    ) -> pd.DataFrame | xr.DataArray:
        """The hazard :math:`h(t)`, events per month among those event-free at ``t`` (> 0)
        months; arguments and result as :meth:`survival`."""
        return self._output("hazard", t, patient, draws, interval)

    def cumhaz(
        self,
        t: float | Sequence[float],
        patient: Any = None,
        *,
        draws: bool = False,
        interval: Interval | float | None = None,
    ) -> pd.DataFrame | xr.DataArray:
        """The cumulative hazard :math:`H(t) = -\\log S(t)` at ``t`` months; arguments and
        result as :meth:`survival`."""
        return self._output("cumhaz", t, patient, draws, interval)

    def rmst(
        self,
        tau: float | Sequence[float],
        patient: Any = None,
        *,
        draws: bool = False,
        interval: Interval | float | None = None,
    ) -> pd.DataFrame | xr.DataArray:
        """The restricted mean survival time :math:`\\int_0^\\tau S(t)\\,dt`: the mean time
        event-free within the first ``tau`` months (> 0). Result as :meth:`survival`, with
        ``tau_months`` in place of ``t_months`` (unit: months)."""
        return self._output("rmst", tau, patient, draws, interval)

    def quantile(
        self,
        p: float | Sequence[float],
        patient: Any = None,
        *,
        draws: bool = False,
        interval: Interval | float | None = None,
    ) -> pd.DataFrame | xr.DataArray:
        """The time (months) by which a share ``p`` (between 0 and 1) has had the event,
        :math:`F^{-1}(p)`; ``p=0.5`` is the median. Result as :meth:`survival`, with ``p`` in
        place of ``t_months``."""
        return self._output("quantile", p, patient, draws, interval)
