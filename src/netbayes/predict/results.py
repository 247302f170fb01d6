"""Prediction results: :class:`Prediction` (tables, draws and typed accessors) and
:class:`CohortPrediction`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from netbayes._lazy import LazyModule
from netbayes.intervals import Interval
from netbayes.predict.outputs import Law, LawOutputs

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path


__all__ = ["CohortPrediction", "Estimate", "Prediction"]


def _describe(interval: Interval, draws: np.ndarray) -> dict[str, float]:
    return {k: float(v) for k, v in interval.describe(np.asarray(draws, float)).items()}


def _missing(v: Any) -> bool:
    """None or a float NaN (what pandas shows as missing in a float column)."""
    return v is None or (isinstance(v, (float, np.floating)) and bool(np.isnan(v)))


def _text(v: Any) -> str:
    """A cell of a pandas ``string`` column as ``astype(str)`` gives it (None is ``<NA>``)."""
    return "<NA>" if v is None else str(v)


SUMMARY_COLUMNS = ("patient", "quantity", "t_months", "cell_line", "unit", "median", "mean")
"""The leading columns of a prediction's summary; the interval's bounds follow."""


def summary_frame(rows: list[dict[str, Any]], interval: Interval) -> pd.DataFrame:
    """The summary table of a prediction from its rows (``cell_line`` a ``string`` column)."""
    lo, hi = interval.columns
    out = pd.DataFrame(rows)[[*SUMMARY_COLUMNS, lo, hi]]
    out["cell_line"] = out["cell_line"].astype("string")
    return out


def share_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The prior-share table of a prediction from its rows (``cell_line`` a ``string``
    column)."""
    out = pd.DataFrame(rows)
    out["cell_line"] = out["cell_line"].astype("string")
    return out


def parameter_frame(rows: list[dict[str, Any]], sources: Mapping[str, str]) -> pd.DataFrame:
    """The prior-parameters table (:meth:`Predictor.prior_parameters`) from its rows, the
    source of each model's priors in ``attrs["prior_source"]``."""
    out = pd.DataFrame(rows)
    out.attrs["prior_source"] = dict(sources)
    return out


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """One predicted quantity of one patient: posterior median, mean and interval.

    Attributes
    ----------
    quantity : str
        What it is (``median_pfs``, ``p_pfs_gt``, ``p_grade3plus``, ...).
    median, mean, lower, upper : float
        Posterior median and mean, and the interval bounds.
    interval : netbayes.intervals.Interval
        The interval convention of ``lower`` and ``upper``.
    unit : str
        ``"months"`` or ``"probability"``.
    """

    quantity: str
    median: float
    mean: float
    lower: float
    upper: float
    interval: Interval
    unit: str

    def to_dict(self) -> dict[str, float]:
        """``median``, ``mean`` and the bounds under the interval's column names."""
        lo, hi = self.interval.columns
        return {"median": self.median, "mean": self.mean, lo: self.lower, hi: self.upper}


@dataclass
class Prediction(LawOutputs):
    """Posterior predictions for one or more patients: summaries and raw draws of one call.

    Besides the tables below, every summary of each patient's predicted survival law is one
    call away, with credible intervals or as draws (:mod:`netbayes.predict.outputs`):
    :meth:`survival`, :meth:`hazard`, :meth:`cumhaz`, :meth:`rmst` and :meth:`quantile`.

    Attributes
    ----------
    patients : pandas.DataFrame
        The validated inputs, one row per patient (index = patient label), plus
        ``extrapolation`` (why the prediction extrapolates; empty if it does not).
    summary : pandas.DataFrame
        Tidy table, one row per patient and quantity: ``patient``, ``quantity``
        (``median_pfs``, ``p_pfs_gt``, ``p_grade3plus``; ``os`` instead of ``pfs`` for OS),
        ``t_months`` (for ``p_*_gt``), ``cell_line`` (for ``p_grade3plus``: the three cell lines
        and ``any``), ``unit``, posterior ``median`` and ``mean``, and the interval bounds named
        by the interval (``eti95_lower``, ``eti95_upper`` by default).
    curve : pandas.DataFrame
        :math:`S(t)` on the time grid: ``patient``, ``t_months``, ``median``, ``mean`` and the
        interval bounds.
    interval : netbayes.intervals.Interval
        The interval convention of the columns.
    endpoint : str
        ``"pfs"`` or ``"os"``.
    arrays : dict of str to numpy.ndarray
        The draws behind the tables (see :attr:`draws`).
    centre : str
        The centre predicted for (``"new"``, ``"typical"`` or a study label).
    centre_note : str
        What that means, in words (e.g. "a new centre (the between-centre spread included)").
    prior_share : pandas.DataFrame or None
        The prior share of every answer (:mod:`netbayes.predict.share`): ``patient``,
        ``quantity``, ``t_months``, ``cell_line`` (as in :attr:`summary`), ``scale`` (``log``
        for a median, ``logit`` for a probability), ``share`` (the fraction of the answer's
        posterior variance that comes from prior-dominated parameters) and ``parameters``
        (a dict: each prior-dominated parameter alone and its share). See
        :meth:`prior_share_of`.
    prior_parameters : pandas.DataFrame or None
        The parameters behind the answers with their prior and posterior SD, kind of prior
        and whether they are prior-dominated (:meth:`Predictor.prior_parameters`).
    family : netbayes.families.SurvivalFamily
        The survival family of the posterior.
    laws : dict
        Per patient, the survival law of every draw (shape, scales and weights of its mixture
        components), behind :meth:`survival`, :meth:`rmst` and the other law summaries.
    """

    interval: Interval
    endpoint: str
    arrays: dict[str, np.ndarray] = field(repr=False)
    coords: dict[str, Any] = field(repr=False)
    centre: str = "new"
    centre_note: str = ""
    family: Any = None
    laws: dict[Any, Law] = field(default_factory=dict, repr=False)
    chains: int = 1
    tox_chains: int = 1
    # the tables as plain records; the data frames above are made from them on first access,
    # so that a prediction that prints (``netbayes predict``) never imports pandas
    _labels: list[Any] = field(default_factory=list, repr=False)
    _inputs: dict[str, list[Any]] = field(default_factory=dict, repr=False)
    _summary: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _curve: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _shares: list[dict[str, Any]] | None = field(default=None, repr=False)
    _parameters: tuple[list[dict[str, Any]], dict[str, str]] | None = field(
        default=None, repr=False
    )

    @cached_property
    def patients(self) -> pd.DataFrame:
        """The validated inputs, one row per patient (see the class docstring)."""
        return pd.DataFrame(self._inputs, index=pd.Index(self._labels, name="patient"))

    @cached_property
    def summary(self) -> pd.DataFrame:
        """The tidy table of every answer (see the class docstring)."""
        return summary_frame(self._summary, self.interval)

    @cached_property
    def curve(self) -> pd.DataFrame:
        """:math:`S(t)` on the time grid (see the class docstring)."""
        return pd.concat([pd.DataFrame(c) for c in self._curve], ignore_index=True)

    @cached_property
    def prior_share(self) -> pd.DataFrame | None:
        """The prior share of every answer (see the class docstring)."""
        return None if self._shares is None else share_frame(self._shares)

    @cached_property
    def prior_parameters(self) -> pd.DataFrame | None:
        """The parameters behind the answers (see the class docstring)."""
        return None if self._parameters is None else parameter_frame(*self._parameters)

    def _input(self, patient: Any = None) -> dict[str, Any]:
        """The validated inputs of ``patient`` (default: the first), as :attr:`patients` has
        them: column name to value."""
        i = self._labels.index(self._patient_id(patient))
        # Python scalars, as a row of the mixed-type data frame gives them
        return {k: v[i].item() if isinstance(v[i], np.generic) else v[i]
                for k, v in self._inputs.items()}  # fmt: skip

    def _law_units(self) -> dict[Any, Law]:
        if not self.laws or self.family is None:
            raise ValueError("this prediction keeps no survival laws (made without a Predictor)")
        return self.laws

    @cached_property
    def draws(self) -> xr.Dataset:
        """The raw posterior draws as an ``xarray.Dataset``, chains kept.

        Variables: ``survival`` (patient, chain, draw, t_months), ``median_<endpoint>_months``
        (patient, chain, draw), ``p_<endpoint>_gt`` (patient, chain, draw, t_prob) and, with
        a toxicity posterior, ``p_grade3plus`` (patient, tox_chain, tox_draw, cell_line). The
        survival and toxicity posteriors are separate fits, hence separate chain and draw
        dimensions. ArviZ's diagnostics work on the survival variables as they are (e.g.
        ``arviz.ess(p.draws["median_pfs_months"])``); plain draws without chains are one
        chain. :attr:`arrays` holds the same draws with the chains stacked.
        """
        import xarray as xr

        e = self.endpoint
        dims = {
            "survival": ("patient", "chain", "draw", "t_months"),
            f"median_{e}_months": ("patient", "chain", "draw"),
            f"p_{e}_gt": ("patient", "chain", "draw", "t_prob"),
            "p_grade3plus": ("patient", "tox_chain", "tox_draw", "cell_line"),
        }
        data = {}
        for k, v in self.arrays.items():
            c = self.tox_chains if k == "p_grade3plus" else self.chains
            data[k] = (dims[k], v.reshape(v.shape[0], c, v.shape[1] // c, *v.shape[2:]))
        coords = {k: v for k, v in self.coords.items() if k in _used_dims(dims, self.arrays)}
        return xr.Dataset(data, coords=coords,
                          attrs={"endpoint": e, "interval": self.interval.text})  # fmt: skip

    def _patient_id(self, patient: Any) -> Any:
        pid = self._labels[0] if patient is None else patient
        if pid not in self._labels:
            raise KeyError(f"patient {pid!r} not found; patients: {list(self._labels)}")
        return pid

    def _estimates(self, quantity: str, patient: Any) -> list[dict[str, Any]]:
        pid = self._patient_id(patient)
        return [r for r in self._summary if r["patient"] == pid and r["quantity"] == quantity]

    def _estimate(self, row: Mapping[str, Any]) -> Estimate:
        lo, hi = self.interval.columns
        return Estimate(
            str(row["quantity"]),
            float(row["median"]),
            float(row["mean"]),
            float(row[lo]),
            float(row[hi]),
            self.interval,
            str(row["unit"]),
        )

    def median(self, patient: Any = None) -> Estimate:
        """The median PFS (or OS) in months of ``patient`` (default: the first patient)."""
        return self._estimate(self._estimates(f"median_{self.endpoint}", patient)[0])

    def event_free_times(self, patient: Any = None) -> tuple[float, ...]:
        """The times (months) at which :meth:`p_event_free` was predicted."""
        rows = self._estimates(f"p_{self.endpoint}_gt", patient)
        return tuple(float(r["t_months"]) for r in rows)

    def p_event_free(self, t: float, patient: Any = None) -> Estimate:
        """P(PFS > t) (or OS > t) of ``patient`` at a predicted time ``t`` (months).

        Raises
        ------
        KeyError
            If ``t`` is not one of :meth:`event_free_times` (ask for it with ``times=``).
        """
        rows = self._estimates(f"p_{self.endpoint}_gt", patient)
        hit = [r for r in rows if np.isclose(float(r["t_months"]), float(t))]
        if not hit:
            times = ", ".join(f"{r['t_months']:g}" for r in rows)
            raise KeyError(
                f"t={t!r} was not predicted; predicted times: {times} (pass times=[...])"
            )
        return self._estimate(hit[0])

    def cell_lines(self, patient: Any = None) -> tuple[str, ...]:
        """The cell lines with a grade >= III risk (empty without a toxicity posterior)."""
        return tuple(str(r["cell_line"]) for r in self._estimates("p_grade3plus", patient))

    def p_grade3plus(self, cell_line: str = "any", patient: Any = None) -> Estimate:
        """P(grade >= III) of ``cell_line`` (``"any"``: any of the three) for ``patient``.

        Raises
        ------
        ValueError
            If the prediction has no toxicity posterior, or ``cell_line`` is not a cell line.
        """
        rows = self._estimates("p_grade3plus", patient)
        if not rows:
            raise ValueError("this prediction has no toxicity posterior (no grade >= III risks)")
        hit = [r for r in rows if str(r["cell_line"]) == cell_line]
        if not hit:
            raise ValueError(
                f"cell_line={cell_line!r} is not allowed; expected one of "
                f"{', '.join(str(r['cell_line']) for r in rows)}"
            )
        return self._estimate(hit[0])

    def sentence(self, patient: Any = None, digits: int = 1) -> str:
        """A results sentence for the median, e.g. ``"median PFS after R-PRRT 14.2 months
        (95% ETI 11.0-17.9)"``.

        Parameters
        ----------
        patient : label, optional
            Patient label (default: the first patient).
        digits : int
            Decimals.
        """
        pid = self._patient_id(patient)
        med = self.median(pid)
        line = self._input(pid)["line"]
        what = f"median {self.endpoint.upper()} after {line}"
        return self.interval.sentence(
            what, med.median, med.lower, med.upper, unit="months", digits=digits
        )

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-compatible data (the ``netbayes predict --json`` layout,
        schema ``netbayes.predict/2``: the same keys for PFS and OS, ``endpoint`` says which).
        """
        out: dict[str, Any] = {
            "endpoint": self.endpoint,
            "centre": {"choice": self.centre, "meaning": self.centre_note},
            "interval": {"kind": self.interval.kind, "prob": self.interval.prob},
            "patients": [],
        }
        for pid in self._labels:
            prow = self._input(pid)
            out["patients"].append(
                {
                    "patient": pid if isinstance(pid, (int, str)) else str(pid),
                    "input": {
                        k: (None if _missing(prow[k]) else prow[k])
                        for k in ("tumour_type", "line", "prior_pfs_months", "prior_gbq")
                    }
                    | {"planned_gbq": float(prow["planned_gbq"])},
                    "extrapolation": list(prow["extrapolation_notes"]),
                    "median_months": self.median(pid).to_dict(),
                    "p_event_free": [
                        {"t_months": t, **self.p_event_free(t, pid).to_dict()}
                        for t in self.event_free_times(pid)
                    ],
                    "p_grade3plus": (
                        {c: self.p_grade3plus(c, pid).to_dict() for c in self.cell_lines(pid)}
                        or None
                    ),
                }
            )
            if self._shares is not None:
                out["patients"][-1]["prior_share"] = self._share_dict(pid)
        if self._parameters is not None:
            from netbayes.predict.share import MOSTLY_PRIOR, PRIOR_DOMINATED_RATIO

            rows, sources = self._parameters
            out["prior_share"] = {
                "sd_ratio_threshold": PRIOR_DOMINATED_RATIO,
                "warn_above": MOSTLY_PRIOR,
                "prior_source": dict(sources),
                "prior_dominated": [
                    {
                        "model": r["model"],
                        "parameter": r["parameter"],
                        "prior": r["prior"],
                        "kind": r["kind"],
                        "sd_ratio": float(r["sd_ratio"]),
                    }
                    for r in rows
                    if r["prior_dominated"]
                ],
            }
        return out

    def prior_share_of(self, quantity: str, patient: Any = None, **where: Any) -> float:
        """The prior share of one answer (:mod:`netbayes.predict.share`): ``quantity`` as in
        :attr:`summary` (``median_pfs``, ``p_pfs_gt`` with ``t_months=``, ``p_grade3plus``
        with ``cell_line=``).

        Raises
        ------
        KeyError
            No such answer (the message lists the answers there are).
        """
        if self._shares is None:
            raise KeyError("this prediction has no prior share")
        pid = self._patient_id(patient)
        hit = [r for r in self._shares if r["patient"] == pid and r["quantity"] == quantity]
        for k, v in where.items():
            if k == "t_months":
                hit = [r for r in hit if np.isclose(float(r[k]), float(v))]
            else:
                hit = [r for r in hit if _text(r.get(k)) == str(v)]
        if len(hit) != 1:
            have = sorted({str(r["quantity"]) for r in self._shares})
            raise KeyError(
                f"no single answer quantity={quantity!r} {where}; quantities: {', '.join(have)} "
                "(p_*_gt takes t_months=, p_grade3plus cell_line=)"
            )
        return float(hit[0]["share"])

    def _share_records(self) -> list[dict[str, Any]]:
        """The rows of :attr:`prior_share` as dictionaries (empty without a prior share)."""
        return [dict(r) for r in self._shares or ()]

    def _share_dict(self, pid: Any) -> dict[str, Any]:
        """The ``prior_share`` entry of a patient in :meth:`to_dict`."""
        assert self._shares is not None
        e = self.endpoint

        def one(r: Mapping[str, Any]) -> dict[str, Any]:
            return {"share": float(r["share"]), "scale": r["scale"],
                    "parameters": {k: float(v) for k, v in r["parameters"].items()}}  # fmt: skip

        out: dict[str, Any] = {}
        for r in self._shares:
            if r["patient"] != pid:
                continue
            if r["quantity"] == f"p_{e}_gt":
                out.setdefault("p_event_free", []).append({"t_months": float(r["t_months"]),
                                                           **one(r)})  # fmt: skip
            elif r["quantity"] == "p_grade3plus":
                out.setdefault(r["quantity"], {})[_text(r["cell_line"])] = one(r)
            else:
                out["median_months"] = one(r)
        return out


def _used_dims(dims: Mapping[str, tuple[str, ...]], arrays: Mapping[str, Any]) -> set[str]:
    return {d for k in arrays for d in dims[k]}


@dataclass
class CohortPrediction:
    """Predicted Kaplan-Meier median of a cohort of n patients, with its predictive interval.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row: ``line``, ``n``, ``quantity`` (``km_median_<endpoint>``), ``unit``, ``median``,
        ``mean`` and the interval bounds (a *predictive* interval: posterior uncertainty plus
        the sampling variation of a cohort of n).
    km_medians : numpy.ndarray
        The simulated cohorts' KM medians, one per posterior draw used.
    type_counts : dict of str to int
        Patients per fine tumour type (or new type) in the simulated cohort.
    interval : netbayes.intervals.Interval
    centre, centre_note : str
        The centre predicted for, and what that means (as in :class:`Prediction`).
    prior_share : float
        The part of the predictive variance of the log KM median that comes from parameters
        whose posterior is essentially their prior (``docs/prior_share.md``; also the
        summary's ``prior_share`` column); a
        :class:`~netbayes.predict.share.PriorDominatedWarning` above 0.5.
    prior_share_parameters : dict of str to float
        The share of each prior-dominated parameter element alone.
    """

    summary: pd.DataFrame
    km_medians: np.ndarray
    type_counts: dict[str, int]
    interval: Interval
    centre: str = "new"
    centre_note: str = ""
    prior_share: float = 0.0
    prior_share_parameters: dict[str, float] = field(default_factory=dict)

    def sentence(self, digits: int = 1) -> str:
        """E.g. ``"predicted KM median PFS of 168 patients after R-PRRT 14.0 months (95% ETI
        11.1-17.2)"``."""
        r = self.summary.iloc[0]
        lo, hi = self.interval.columns
        what = (
            f"predicted KM median {r['quantity'].split('_')[-1].upper()} of {r['n']} patients "
            f"after {r['line']}"
        )
        return self.interval.sentence(what, r["median"], r[lo], r[hi], "months", digits)


@dataclass
class StandardisedPrediction(LawOutputs):
    """Population-averaged (standardised) survival of a covariate mix, from
    :meth:`Predictor.standardise`.

    Per posterior draw, the standardised survival function is the weighted average of the
    patients' survival functions, :math:`\\bar S(t) = \\sum_i \\omega_i S_i(t)` (the
    "aggregate level" of multinma's ``predict(level="aggregate")``, the marginal survival of
    flexsurv's ``standsurv``); its median, RMST, hazard and the other summaries are those of
    :math:`\\bar S`, not averages of the patients' medians. The law summaries
    (:meth:`survival`, :meth:`hazard`, :meth:`cumhaz`, :meth:`rmst`, :meth:`quantile`) take
    no patient argument beyond ``"population"``.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per answer: ``quantity`` (``median_<endpoint>``, ``p_<endpoint>_gt``,
        ``rmst_<endpoint>`` and, with a toxicity posterior, ``p_grade3plus``: the
        population-averaged risk), ``t_months`` (the time, or the RMST horizon),
        ``cell_line``, ``unit``, posterior ``median``, ``mean``, the interval bounds and
        ``prior_share`` (:mod:`netbayes.predict.share`).
    curve : pandas.DataFrame
        :math:`\\bar S(t)` on the time grid: ``t_months``, ``median``, ``mean`` and the bounds.
    patients : pandas.DataFrame
        The validated covariate mix, one row per patient of ``df``, with its ``weight``
        (normalised to sum to 1) and ``extrapolation`` notes.
    n : int
        Patients in the mix.
    interval, endpoint, centre, centre_note, family
        As in :class:`Prediction`.
    law : tuple of numpy.ndarray
        The population's law per draw: shapes and scales (draws, components), weights.
    risk_draws : numpy.ndarray or None
        Draws of the averaged grade >= III risks (toxicity draws, 4: the three cell lines and
        any), None without a toxicity posterior.
    """

    summary: pd.DataFrame
    curve: pd.DataFrame
    patients: pd.DataFrame
    n: int
    interval: Interval
    endpoint: str
    family: Any
    law: Law = field(repr=False)
    centre: str = "new"
    centre_note: str = ""
    risk_draws: np.ndarray | None = field(default=None, repr=False)
    chains: int = 1
    _unit_name = "population"

    def _law_units(self) -> dict[Any, Law]:
        return {"population": self.law}

    def median(self) -> Estimate:
        """The median of the standardised survival function, in months."""
        return self._row(f"median_{self.endpoint}")

    def _row(self, quantity: str) -> Estimate:
        r = self.summary[self.summary["quantity"] == quantity].iloc[0]
        lo, hi = self.interval.columns
        return Estimate(
            quantity, float(r["median"]), float(r["mean"]), float(r[lo]), float(r[hi]),
            self.interval, str(r["unit"]),
        )  # fmt: skip

    def sentence(self, digits: int = 1) -> str:
        """E.g. ``"standardised median PFS after R-PRRT over 3 patients 12.0 months (95% ETI
        6.5-24.2)"`` ("over a weighted mix of 3 profiles" with weights; the line is named
        when the mix has one)."""
        m = self.median()
        lines = self.patients["line"].unique()
        after = f" after {lines[0]}" if len(lines) == 1 else ""
        w = self.patients["weight"].to_numpy(float)
        over = (
            f"over {self.n} patients"
            if np.allclose(w, 1.0 / self.n)
            else f"over a weighted mix of {self.n} profiles"
        )
        what = f"standardised median {self.endpoint.upper()}{after} {over}"
        return self.interval.sentence(what, m.median, m.lower, m.upper, "months", digits)
