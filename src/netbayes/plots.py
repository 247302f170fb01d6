"""Plots, each with a twin that returns the data behind it. NumPy/matplotlib only (no PyMC)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "kaplan_meier",
    "km_overlay_data",
    "pit_histogram_data",
    "plot_km_overlay",
    "plot_law",
    "plot_pit_histogram",
    "plot_prior_posterior",
    "plot_survival_curve",
    "plot_type_forest",
    "plot_validation",
    "plot_validation_check",
    "prior_posterior_data",
    "prior_posterior_table",
    "survival_curve_data",
    "type_forest_data",
    "validation_plot_data",
]


_FIGURE: Any = None


def _figure_class() -> Any:
    """A :class:`matplotlib.figure.Figure` that Jupyter shows when it is returned (a PNG
    ``_repr_png_``), even where pyplot was never imported; created once, on first use."""
    global _FIGURE
    if _FIGURE is None:
        from io import BytesIO

        from matplotlib.figure import Figure

        class NetbayesFigure(Figure):
            """A bare figure (no pyplot state, no backend switch) that renders in notebooks."""

            def _repr_png_(self) -> bytes:
                buf = BytesIO()
                self.savefig(buf, format="png", dpi=100)
                return buf.getvalue()

        _FIGURE = NetbayesFigure
    return _FIGURE


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """``(figure, axes)``: the caller's axes, or a new bare figure (:func:`_figure_class`)."""
    if ax is not None:
        return ax.figure, ax
    fig = _figure_class()(figsize=figsize)
    return fig, fig.add_subplot()


LABELS = {
    "beta_x": "prior-PFS elasticity β_x (salvage PFS ∝ prior PFS^β_x)",
    "beta_gbq": "cumulative-activity effect β_GBq (log time per 10 GBq)",
}


def _normal_prior(priors: Any, name: str) -> tuple[float, float]:
    prior = priors[name]
    if prior.dist != "normal":
        raise ValueError(f"params: {name!r} has a {prior.dist} prior; expected a normal one")
    return float(prior.mu), float(prior.sigma)


def prior_posterior_table(
    draws: dict[str, np.ndarray], priors: Any, params: tuple[str, ...] = ("beta_x", "beta_gbq")
) -> pd.DataFrame:
    """Tabulate prior and posterior of normal-prior parameters side by side.

    Parameters
    ----------
    draws : dict of str to numpy.ndarray
        Posterior draws (first axis = draw).
    priors : netbayes.priors.PriorSet
        The priors the model was fitted with (each ``params`` entry with a normal prior).
    params : tuple of str
        Parameters to tabulate.

    Returns
    -------
    pandas.DataFrame
        ``parameter``, prior mean/sd and 95% equal-tailed interval, posterior mean/sd and 95%
        ETI, and ``sd_ratio`` = posterior sd / prior sd (near 1: the data said little).
    """
    rows = []
    for p in params:
        m, s = _normal_prior(priors, p)
        d = np.asarray(draws[p]).ravel()
        lo, hi = np.quantile(d, [0.025, 0.975])
        rows.append(
            (
                p,
                m,
                s,
                m - 1.959964 * s,
                m + 1.959964 * s,
                float(d.mean()),
                float(d.std(ddof=1)),
                float(lo),
                float(hi),
                float(d.std(ddof=1) / s),
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "parameter",
            "prior_mean",
            "prior_sd",
            "prior_eti95_lower",
            "prior_eti95_upper",
            "posterior_mean",
            "posterior_sd",
            "posterior_eti95_lower",
            "posterior_eti95_upper",
            "sd_ratio",
        ],
    )


def prior_posterior_data(
    draws: dict[str, np.ndarray],
    priors: Any,
    params: tuple[str, ...] = ("beta_x", "beta_gbq"),
    n_points: int = 200,
) -> pd.DataFrame:
    """Return the curves of :func:`plot_prior_posterior`: prior density and posterior KDE.

    Returns
    -------
    pandas.DataFrame
        Long format: ``parameter``, ``x``, ``prior_density``, ``posterior_density``.
    """
    frames = []
    for p in params:
        m, s = _normal_prior(priors, p)
        d = np.asarray(draws[p]).ravel()
        lo = min(m - 3.5 * s, np.quantile(d, 0.001))
        hi = max(m + 3.5 * s, np.quantile(d, 0.999))
        x = np.linspace(lo, hi, n_points)
        frames.append(
            pd.DataFrame(
                {
                    "parameter": p,
                    "x": x,
                    "prior_density": stats.norm.pdf(x, m, s),
                    "posterior_density": stats.gaussian_kde(d)(x),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def plot_prior_posterior(
    draws: dict[str, np.ndarray],
    priors: Any,
    params: tuple[str, ...] = ("beta_x", "beta_gbq"),
    ax: Any = None,
) -> Any:
    """Plot prior (dashed) against posterior (solid) density, one panel per parameter.

    ``ax``: one axes per parameter to draw into (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = prior_posterior_data(draws, priors, params)
    own = ax is None
    if own:
        fig = _figure_class()(figsize=(5.2 * len(params), 3.6))
        panels = list(fig.subplots(1, len(params), squeeze=False)[0])
    else:
        panels = list(np.ravel(ax))
        if len(panels) != len(params):
            raise ValueError(f"ax has {len(panels)} axes; expected {len(params)} (one per "
                             "parameter)")  # fmt: skip
        fig = panels[0].figure
    for ax, p in zip(panels, params, strict=True):
        g = data[data["parameter"] == p]
        ax.plot(g["x"], g["prior_density"], "--", color="0.45", label="prior")
        ax.plot(g["x"], g["posterior_density"], color="C0", label="posterior")
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
        ax.set_xlabel(LABELS.get(p, p))
        ax.set_ylabel("density")
        ax.legend(frameon=False)
    if own:
        fig.suptitle("Prior against posterior: how much the published data say")
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# patient survival curve
# ---------------------------------------------------------------------------------------------
def survival_curve_data(prediction: Any, population: Any | None = None) -> pd.DataFrame:
    """The data of :func:`plot_survival_curve`: S(t) with its band per curve.

    Parameters
    ----------
    prediction : netbayes.predict.Prediction
        A patient's (or patients') prediction.
    population : netbayes.predict.Prediction, optional
        A reference prediction drawn underneath (e.g. the same covariates with the tumour
        type drawn from the population, or the average retreated patient).

    Returns
    -------
    pandas.DataFrame
        ``curve`` (``"patient <label>"``, or ``"population: patient <label>"``),
        ``t_months``, ``median``, ``mean`` and the interval columns of the prediction's
        convention.
    """
    frames = [prediction.curve.assign(curve="patient " + prediction.curve["patient"].astype(str))]
    if population is not None:
        c = population.curve
        frames.append(c.assign(curve="population: patient " + c["patient"].astype(str)))
    out = pd.concat(frames, ignore_index=True)
    return out[["curve", "t_months", "median", "mean", *prediction.interval.columns]]


def plot_survival_curve(
    prediction: Any, population: Any | None = None, path: str | None = None, ax: Any = None
) -> Any:
    """A patient's posterior survival curve S(t) with its credible band.

    Parameters
    ----------
    prediction, population
        See :func:`survival_curve_data`.
    path : str, optional
        Save the figure there too.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = survival_curve_data(prediction, population)
    iv = prediction.interval
    lo, hi = iv.columns
    ep = prediction.endpoint.upper()
    own = ax is None
    fig, ax = _axes(ax, (6.4, 4.2))
    curves = list(dict.fromkeys(data["curve"]))
    for i, name in enumerate(curves):
        g = data[data["curve"] == name]
        pop = name.startswith("population")
        color = "0.55" if pop else f"C{i}"
        ax.fill_between(g["t_months"], g[lo], g[hi], color=color, alpha=0.15 if pop else 0.25,
                        lw=0)  # fmt: skip
        ax.plot(g["t_months"], g["median"], color=color, ls="--" if pop else "-",
                label=f"{name} (posterior median, {iv.text} band)")  # fmt: skip
    ax.axhline(0.5, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("months since the first cycle of the line")
    ax.set_ylabel(f"probability {ep}-free" if ep == "PFS" else "probability alive")
    ax.set_ylim(0, 1.01)
    ax.set_xlim(0, float(data["t_months"].max()))
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"Predicted {ep}\n{prediction.sentence()}", fontsize=10)
    if own:
        fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


_LAW_AXIS = {
    "survival": ("months", "probability {ep}-free"),
    "hazard": ("months", "hazard of {what}, per month"),
    "cumhaz": ("months", "cumulative hazard of {what}"),
    "rmst": ("horizon tau, months", "restricted mean {ep} up to tau, months"),
    "quantile": ("share with the event, p", "time by which a share p had {what}, months"),
}


def plot_law(
    prediction: Any,
    kind: str = "hazard",
    grid: Any = None,
    patient: Any = None,
    ax: Any = None,
    path: str | None = None,
) -> Any:
    """Any summary of a predicted survival law over a grid, with its credible band: the
    hazard, the cumulative hazard, S(t), the RMST as a function of its horizon, or the
    quantile function (:mod:`netbayes.predict.outputs`).

    Parameters
    ----------
    prediction : netbayes.predict.Prediction or netbayes.predict.StandardisedPrediction
    kind : {"hazard", "cumhaz", "survival", "rmst", "quantile"}
    grid : array-like, optional
        Times (months), horizons or probabilities; default 0.5-60 months (0.02-0.98 for a
        quantile).
    patient : label or list of labels, optional
        Whose curve (default: every patient, or the population); one band each.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes (default: a new figure).
    path : str, optional
        Save the figure there too.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if kind not in _LAW_AXIS:
        raise ValueError(f"kind={kind!r} is not allowed; expected one of {', '.join(_LAW_AXIS)}")
    if grid is None:
        grid = np.linspace(0.02, 0.98, 49) if kind == "quantile" else np.linspace(0.5, 60, 120)
    tab = getattr(prediction, kind)(grid, patient)
    col = {"rmst": "tau_months", "quantile": "p"}.get(kind, "t_months")
    lo, hi = prediction.interval.columns
    unit_col = tab.columns[0]  # "patient" or "population"
    own = ax is None
    fig, ax = _axes(ax, (6.4, 4.2))
    for i, (who, g) in enumerate(tab.groupby(unit_col, sort=False)):
        ax.fill_between(g[col], g[lo], g[hi], color=f"C{i}", alpha=0.2, lw=0)
        band = prediction.interval.text
        name = "standardised population" if unit_col == "population" else f"patient {who}"
        ax.plot(g[col], g["median"], color=f"C{i}",
                label=f"{name} (posterior median, {band} band)")  # fmt: skip
    ep = prediction.endpoint.upper()
    what = "progression" if ep == "PFS" else "death"
    xlab, ylab = _LAW_AXIS[kind]
    ax.set_xlabel(xlab)
    ax.set_ylabel(ylab.format(ep=ep, what=what))
    ax.set_xlim(float(np.min(grid)), float(np.max(grid)))
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=8)
    if own:
        fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


# ---------------------------------------------------------------------------------------------
# a user's cohort: Kaplan-Meier over the posterior band
# ---------------------------------------------------------------------------------------------
def kaplan_meier(time: Any, event: Any) -> pd.DataFrame:
    """The Kaplan-Meier estimate of a cohort's survival (right-censored times).

    Parameters
    ----------
    time : array-like of float
        Follow-up times, months (finite, >= 0).
    event : array-like of {0, 1}
        1 = the event (progression or death), 0 = censored.

    Returns
    -------
    pandas.DataFrame
        One row per distinct time (with a first row at 0): ``t_months``, ``at_risk`` (just
        before t), ``events``, ``censored`` and ``survival`` (the estimate just after t).

    Raises
    ------
    ValueError
        ``time`` and ``event`` differ in length, are empty, or hold a bad value (named).
    """
    t = np.asarray(time, dtype=float).ravel()
    e_raw = np.asarray(event).ravel()
    if t.size == 0 or t.size != e_raw.size:
        raise ValueError(
            f"time and event must be non-empty and of equal length, got {t.size} and {e_raw.size}"
        )
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        bad = t[~np.isfinite(t) | (t < 0)][0]
        raise ValueError(f"time={bad.item()!r} is not allowed; expected finite months >= 0")
    if not np.all(np.isin(e_raw, (0, 1))):
        bad = e_raw[~np.isin(e_raw, (0, 1))][0]
        raise ValueError(f"event={bad.item()!r} is not allowed; expected 1 (event) or 0 (censored)")
    e = e_raw.astype(int)
    ut, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=e, minlength=ut.size)
    c = np.bincount(inv, weights=1 - e, minlength=ut.size)
    n = t.size - np.r_[0, np.cumsum(d + c)[:-1]]
    s = np.cumprod(1.0 - d / n)
    return pd.DataFrame(
        {
            "t_months": np.r_[0.0, ut],
            "at_risk": np.r_[t.size, n].astype(int),
            "events": np.r_[0, d].astype(int),
            "censored": np.r_[0, c].astype(int),
            "survival": np.r_[1.0, s],
        }
    ).drop_duplicates("t_months", keep="last", ignore_index=True)


def km_overlay_data(
    prediction: Any, time: Any, event: Any, patient: Any = None, n_grid: int = 121
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data of :func:`plot_km_overlay`: the posterior band of S(t) and the cohort's KM.

    Parameters
    ----------
    prediction : netbayes.predict.StandardisedPrediction or netbayes.predict.Prediction
        For a cohort, ``Predictor.standardise`` of its covariates (the population-averaged
        curve); a :class:`~netbayes.predict.Prediction` of one patient also works.
    time, event
        The cohort's follow-up (months) and event indicators (:func:`kaplan_meier`).
    patient : label, optional
        Which patient of a several-patient :class:`~netbayes.predict.Prediction`.
    n_grid : int
        Points of the posterior curve, from 0 to the longest follow-up.

    Returns
    -------
    band : pandas.DataFrame
        ``t_months``, ``median`` and the interval bounds of S(t).
    km : pandas.DataFrame
        :func:`kaplan_meier` of the cohort.
    """
    km = kaplan_meier(time, event)
    grid = np.linspace(0.0, max(float(km["t_months"].max()), 1.0), int(n_grid))
    units = list(prediction._law_units())
    if patient is None and len(units) > 1:
        raise ValueError(
            f"the prediction holds {len(units)} patients; pass patient=<label> or, for a cohort, "
            "use Predictor.standardise(df) (the population-averaged curve)"
        )
    band = prediction.survival(grid, units[0] if patient is None else patient)
    lo, hi = prediction.interval.columns
    return band[["t_months", "median", lo, hi]].reset_index(drop=True), km


def plot_km_overlay(
    prediction: Any,
    time: Any,
    event: Any,
    patient: Any = None,
    ax: Any = None,
    path: str | None = None,
    label: str = "observed (Kaplan-Meier)",
) -> Any:
    """A cohort's Kaplan-Meier curve over the posterior band of its predicted survival.

    The band is the posterior interval of the (standardised) survival function, i.e. of the
    population the cohort was drawn from; the KM curve of n patients scatters around it by
    sampling error as well (about :math:`\\sqrt{S(1-S)/n}` without censoring), so a KM step
    partly outside the band is not by itself a misfit. Censored times are ticked.

    Parameters
    ----------
    prediction, time, event, patient
        See :func:`km_overlay_data`.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes (default: a new figure).
    path : str, optional
        Save the figure there too.
    label : str
        Legend label of the KM curve.

    Returns
    -------
    matplotlib.figure.Figure
    """
    band, km = km_overlay_data(prediction, time, event, patient)
    iv = prediction.interval
    lo, hi = iv.columns
    ep = prediction.endpoint.upper()
    own = ax is None
    fig, ax = _axes(ax, (6.4, 4.2))
    ax.fill_between(band["t_months"], band[lo], band[hi], color="C0", alpha=0.25, lw=0,
                    label=f"predicted ({iv.text} band)")  # fmt: skip
    ax.plot(band["t_months"], band["median"], color="C0", label="predicted (posterior median)")
    ax.step(km["t_months"], km["survival"], where="post", color="k", lw=1.3,
            label=f"{label}, n = {int(km['at_risk'].iloc[0])}")  # fmt: skip
    cens = km[km["censored"] > 0]
    ax.plot(cens["t_months"], cens["survival"], "|", color="k", ms=7, label="censored")
    ax.set_xlabel("months since the first cycle of the line")
    ax.set_ylabel(f"probability {ep}-free" if ep == "PFS" else "probability alive")
    ax.set_ylim(0, 1.01)
    ax.set_xlim(0, float(band["t_months"].max()))
    ax.legend(frameon=False, fontsize=8)
    if own:
        fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


# ---------------------------------------------------------------------------------------------
# tumour-type forest
# ---------------------------------------------------------------------------------------------
def type_forest_data(
    predictor: Any,
    *,
    line: str = "R-PRRT",
    prior_pfs_months: float = 36.0,
    prior_gbq: float | None = None,
    planned_gbq: float | None = None,
    interval: Any = None,
) -> pd.DataFrame:
    """Median PFS (or OS) per tumour type for a reference patient, with intervals.

    Parameters
    ----------
    predictor : netbayes.predict.Predictor
    line, prior_pfs_months, prior_gbq, planned_gbq
        The reference patient. Activities default to the Rotterdam medians of the I-PRRT and
        R-PRRT phases (``calibration_constants``); prior PFS to the model's reference 36.
    interval : Interval or float, optional
        Interval convention (default 95% ETI).

    Returns
    -------
    pandas.DataFrame
        ``tumour_type``, ``median``, ``mean`` and the interval columns of the median.
    """
    from netbayes.models.survival import calibration_constants
    from netbayes.vocab import TUMOUR_TYPES

    c = calibration_constants()
    prior_gbq = c["gbq_iprrt_phase"] if prior_gbq is None else prior_gbq
    planned_gbq = c["gbq_rprrt_phase"] if planned_gbq is None else planned_gbq
    df = pd.DataFrame(
        {
            "tumour_type": list(TUMOUR_TYPES),
            "line": line,
            "prior_pfs_months": prior_pfs_months,
            "prior_gbq": prior_gbq,
            "planned_gbq": planned_gbq,
        },
        index=list(TUMOUR_TYPES),
    )
    pred = predictor.patients(df, interval=interval)
    lo, hi = pred.interval.columns
    meds = [pred.median(t) for t in pred.patients.index]
    out = pd.DataFrame(
        {
            "tumour_type": list(pred.patients.index),
            "median": [m.median for m in meds],
            "mean": [m.mean for m in meds],
            lo: [m.lower for m in meds],
            hi: [m.upper for m in meds],
        }
    )
    out.attrs.update(interval=pred.interval.text, endpoint=pred.endpoint, line=line)
    return out


def plot_type_forest(predictor: Any, path: str | None = None, ax: Any = None, **kwargs: Any) -> Any:
    """Forest plot of median PFS by tumour type (see :func:`type_forest_data`); ``ax``: draw
    into these axes (default: a new figure). Returns the figure."""
    data = type_forest_data(predictor, **kwargs)
    lo, hi = (c for c in data.columns if c.endswith(("_lower", "_upper")))
    own = ax is None
    fig, ax = _axes(ax, (6.4, 3.6))
    y = np.arange(len(data))[::-1]
    ax.hlines(y, data[lo], data[hi], color="C0", lw=2)
    ax.plot(data["median"], y, "o", color="C0")
    ax.set_yticks(y, data["tumour_type"])
    ep = data.attrs["endpoint"].upper()
    ax.set_xlabel(f"median {ep} after {data.attrs['line']}, months ({data.attrs['interval']})")
    ax.set_title(f"Median {ep} by tumour type (reference patient)")
    ax.set_xlim(left=0)
    if own:
        fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


# ---------------------------------------------------------------------------------------------
# published against predicted
# ---------------------------------------------------------------------------------------------
def validation_plot_data(table: pd.DataFrame) -> pd.DataFrame:
    """The data of :func:`plot_validation`: the validation table with a short label per row."""
    out = table.copy()
    out["label"] = (
        out["figure"]
        .str.replace(r",? (median, )?months$", "", regex=True)
        .str.replace(", count", "", regex=False)
    )
    return out


def _check_unit(g: pd.DataFrame) -> str:
    """The x-axis label of one check's figures."""
    fig = g["figure"].astype(str)
    if fig.str.endswith("months").all():
        return "months"
    if "cycle" in " ".join(g["check"].astype(str)).lower():
        return "count (treatment cycles)"
    return "count (patients)"


def _draw_check(ax: Any, g: pd.DataFrame, fontsize: float) -> int:
    """One check's rows into ``ax``; returns the number inside."""
    y = np.arange(len(g))[::-1]
    ax.hlines(y, g["pi95_lower"], g["pi95_upper"], color="0.6", lw=2.5)
    ax.plot(g["predicted_median"], y, "|", color="0.2", ms=8)
    inside = g["inside"].to_numpy(bool)
    ax.plot(g["published"][inside], y[inside], "o", color="C0", ms=4)
    ax.plot(g["published"][~inside], y[~inside], "o", color="C3", ms=5)
    held = ~g["in_likelihood"].to_numpy(bool)
    if held.any():
        ax.plot(g["published"][held], y[held], "o", mfc="none", mec="k", ms=7)
    ax.set_yticks(y, g["label"], fontsize=fontsize)
    ax.set_xlabel(_check_unit(g), fontsize=8)
    ax.set_xlim(left=min(0.0, float(np.nanmin(g["pi95_lower"]))))
    return int(inside.sum())


def plot_validation_check(
    table: pd.DataFrame, check: str, ax: Any = None, path: str | None = None
) -> Any:
    """One check of the validation table: its published figures against their 95%
    predictive intervals, sized to its rows, with the unit on the x axis.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`netbayes.validation.validation_table` output.
    check : str
        A value of its ``check`` column (e.g. ``"Table 5 PFS median"``).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes (default: a new figure).
    path : str, optional
        Save the figure there too.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = validation_plot_data(table)
    g = data[data["check"] == check]
    if g.empty:
        raise ValueError(
            f"check={check!r} is not allowed; expected one of "
            f"{', '.join(dict.fromkeys(data['check']))}"
        )
    own = ax is None
    fig, ax = _axes(ax, (7.0, max(2.2, 0.2 * len(g) + 1.2)))
    n_in = _draw_check(ax, g, fontsize=7)
    ax.set_title(f"{check}: {n_in}/{len(g)} inside the 95% predictive interval", fontsize=8.5)
    if own:
        fig.text(0.01, 0.005, "grey: 95% predictive interval (| its median); dot: published "
                 "(red = outside; ringed = held out of the likelihood)", fontsize=6.5)  # fmt: skip
        fig.tight_layout(rect=(0, 0.03, 1, 1))
    if path:
        fig.savefig(path, dpi=120)
    return fig


def plot_validation(table: pd.DataFrame, path: str | None = None) -> Any:
    """Published figures (dots; red if outside) against their 95% predictive intervals.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`netbayes.validation.validation_table` output.
    path : str, optional
        Save the figure there too.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = validation_plot_data(table)
    checks = list(dict.fromkeys(data["check"]))
    heights = [max(2.0, 0.16 * (data["check"] == c).sum() + 1.0) for c in checks]
    fig = _figure_class()(figsize=(8.0, sum(heights)))
    axes = fig.subplots(len(checks), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, c in zip(axes[:, 0], checks, strict=True):
        g = data[data["check"] == c]
        n_in = _draw_check(ax, g, fontsize=6)
        ax.set_title(f"{c}: {n_in}/{len(g)} inside the 95% predictive interval", fontsize=9)
    fig.text(0.01, 0.002, "grey: 95% predictive interval (| its median); dot: published "
             "(red = outside; ringed = held out of the likelihood)", fontsize=7)  # fmt: skip
    fig.tight_layout(rect=(0, 0.01, 1, 1))
    if path:
        fig.savefig(path, dpi=110)
    return fig


def pit_histogram_data(table: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """The data of :func:`plot_pit_histogram`: figures per PIT bin and endpoint.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`netbayes.checks.loo.loo_table` output (columns ``endpoint`` and ``pit``).
    bins : int
        Equal-width bins on [0, 1].

    Returns
    -------
    pandas.DataFrame
        ``endpoint``, ``bin_lower``, ``bin_upper``, ``count``, ``expected`` (figures per bin
        under uniform PITs), ``ks_p``, ``chi2_p`` (the endpoint's uniformity tests).
    """
    from netbayes.checks.psis import pit_summary

    rows = []
    edges = np.linspace(0.0, 1.0, bins + 1)
    for e in dict.fromkeys(table["endpoint"]):
        s = pit_summary(table.loc[table["endpoint"] == e, "pit"].to_numpy(float), bins=bins)
        for i, c in enumerate(s.counts):
            rows.append((e, edges[i], edges[i + 1], c, s.expected, s.ks_p, s.chi2_p))
    return pd.DataFrame(
        rows, columns=["endpoint", "bin_lower", "bin_upper", "count", "expected", "ks_p", "chi2_p"]
    )


def plot_pit_histogram(
    table: pd.DataFrame, ax: Any = None, bins: int = 5, path: str | None = None
) -> Any:
    """Leave-one-out PIT histograms per endpoint against the uniform expectation.

    One panel per endpoint: the figures per PIT bin (bars), the count expected under uniform
    PITs (line) with its central 95% binomial band (grey), and the endpoint's uniformity
    p-values in the title.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`netbayes.checks.loo.loo_table` output.
    ax : matplotlib.axes.Axes or sequence of Axes, optional
        One axes per endpoint (in the table's order); default a new figure with a row of them.
    bins : int
        Equal-width bins on [0, 1].
    path : str, optional
        Save the figure there too.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = pit_histogram_data(table, bins)
    endpoints = list(dict.fromkeys(data["endpoint"]))
    if ax is None:
        fig = _figure_class()(figsize=(3.2 * len(endpoints), 2.9))
        axes = list(fig.subplots(1, len(endpoints), squeeze=False)[0])
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != len(endpoints):
            raise ValueError(f"ax: {len(axes)} axes; expected one per endpoint ({endpoints})")
        fig = axes[0].figure
    for a, e in zip(axes, endpoints, strict=True):
        g = data[data["endpoint"] == e]
        n = int(g["count"].sum())
        lo, hi = stats.binom.ppf([0.025, 0.975], n, 1.0 / bins)
        a.axhspan(lo, hi, color="0.88", zorder=0)
        width = float(g["bin_upper"].iloc[0] - g["bin_lower"].iloc[0])
        a.bar(g["bin_lower"], g["count"], width=width, align="edge", color="C0", ec="white")
        a.axhline(float(g["expected"].iloc[0]), color="k", lw=1, ls="--")
        a.set_xlim(0, 1)
        a.set_xlabel("leave-one-out PIT", fontsize=8)
        a.set_title(f"{e}: {n} figures\nKS p = {g['ks_p'].iloc[0]:.2f}, "
                    f"chi-square p = {g['chi2_p'].iloc[0]:.2f}", fontsize=8)  # fmt: skip
        a.tick_params(labelsize=7)
    axes[0].set_ylabel("figures per bin", fontsize=8)
    if ax is None:
        fig.text(0.01, 0.01, "dashed: expected under uniform PITs; grey: its central 95% "
                 "binomial band", fontsize=7)  # fmt: skip
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    if path:
        fig.savefig(path, dpi=120)
    return fig
