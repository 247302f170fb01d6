r"""Paper tables on the natural scale: labelled quantities with per-row convergence.

:func:`survival_table` and :func:`toxicity_table` turn a posterior (a fit or a stored
posterior) into the numbers a paper reports, not the sampler's parameters: median PFS (or OS)
by tumour type for a reference patient, time ratios :math:`e^{\beta}` per stated unit,
shapes and between-centre SDs; grade :math:`\ge` III risks of a reference patient and the
probit dose and cohort effects. Each row carries its posterior median and interval, an
``estimate`` cell (``"12.9 (7.0–26.2)"``, an en-dash range) and the R-hat and bulk/tail ESS of
that very quantity, computed on its own chains (rank-normalised split R-hat and ESS are those
of ArviZ; a monotone transform of one parameter has that parameter's R-hat and ESS).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from netbayes import spec, vocab
from netbayes.intervals import Interval, as_interval

__all__ = ["survival_table", "toxicity_table"]

REFERENCE_SALVAGE = {"prior_pfs_months": spec.X_REF, "cumulative_gbq": spec.GBQ_REF}
"""The reference patient of the survival table's salvage medians (the model's centring)."""
REFERENCE_TOXICITY = {"line": "R-PRRT", "planned_gbq": 14.9, "prior_gbq": 29.9}
"""The reference patient of the toxicity table's risks (the README patient)."""


def _draws_and_chains(src: Any) -> tuple[dict[str, np.ndarray], int]:
    """Stacked draws (chains first) and the number of chains of a fit, a stored posterior or
    a DataTree; a mapping of draws is one chain."""
    import sys

    xr = sys.modules.get("xarray")
    if xr is not None and isinstance(src, (xr.DataTree, xr.Dataset)):
        ds = src["posterior"].to_dataset() if isinstance(src, xr.DataTree) else src
        out = {}
        for v in ds.data_vars:
            a = ds[v].transpose("chain", "draw", ...).to_numpy()
            out[str(v)] = a.reshape((-1, *a.shape[2:]))
        return out, int(ds.sizes["chain"])
    if hasattr(src, "all_draws"):
        d = src.all_draws()
        settings = getattr(src, "settings", None)
        if isinstance(settings, Mapping) and "chains" in settings:
            return d, int(settings["chains"])
        card = getattr(src, "card", None) or {}
        return d, int((card.get("sampler") or {}).get("chains", 1))
    if isinstance(src, Mapping):
        return {k: np.asarray(v, float) for k, v in src.items()}, 1
    raise TypeError(
        f"expected a FitResult, a StoredPosterior, an xarray DataTree/Dataset or a mapping of "
        f"draws, got {type(src).__name__}"
    )


def _convergence(x: np.ndarray, chains: int) -> tuple[float, float, float]:
    """R-hat, bulk ESS and tail ESS of one quantity's stacked draws (ArviZ); NaN where they
    cannot be computed (ArviZ not installed, or draws that do not split into chains)."""
    try:
        import arviz as az
        import xarray as xr
    except ImportError:
        return math.nan, math.nan, math.nan
    if chains < 1 or x.size % chains or x.size // chains < 4:
        return math.nan, math.nan, math.nan
    da = xr.DataArray(x.reshape(chains, -1), dims=("chain", "draw"))
    return (
        float(az.rhat(da)),
        float(az.ess(da, method="bulk")),
        float(az.ess(da, method="tail")),
    )


def _range(lo: float, hi: float, digits: int) -> str:
    """``"7.0–26.2"`` (an en-dash), or ``"-0.18 to 0.68"`` where a bound is negative (a dash
    next to a minus sign misreads)."""
    a, b = f"{lo:.{digits}f}", f"{hi:.{digits}f}"
    return f"{a} to {b}" if lo < 0 or hi < 0 else f"{a}\u2013{b}"


def _rows(
    items: list[tuple[str, str, str, np.ndarray, int]], iv: Interval, chains: int
) -> pd.DataFrame:
    lo_c, hi_c = iv.columns
    rows = []
    for group, quantity, unit, x, digits in items:
        x = np.asarray(x, float)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{quantity}: the posterior gives non-finite values")
        lo, hi = iv.bounds(x)
        med = float(np.median(x))
        rh, eb, et = _convergence(x, chains)
        rows.append(
            {
                "group": group,
                "quantity": quantity,
                "unit": unit,
                "median": med,
                lo_c: float(lo),
                hi_c: float(hi),
                "estimate": f"{med:.{digits}f} ({_range(float(lo), float(hi), digits)})",
                "r_hat": rh,
                "ess_bulk": eb,
                "ess_tail": et,
            }
        )
    out = pd.DataFrame(rows)
    return out


def _note(iv: Interval, chains: int, wording: str) -> str:
    kind = "equal-tailed" if iv.kind == "eti" else "highest-density"
    what = f"{iv.prob:.0%} {kind} credible interval"
    if wording == "cri":
        what = f"{iv.prob:.0%} CrI ({kind})"
    return (
        f"Posterior median and {what}. R-hat and bulk/tail ESS of each quantity over {chains} "
        f"chain{'s' if chains != 1 else ''} (targets: R-hat <= {spec.RHAT_MAX}, bulk ESS >= "
        f"{spec.ESS_MIN})."
    )


def _check_wording(wording: str) -> str:
    if wording not in ("interval", "cri"):
        raise ValueError(f"wording={wording!r} is not allowed; expected 'interval' or 'cri'")
    return wording


def survival_table(
    posterior: Any,
    *,
    endpoint: str | None = None,
    interval: Interval | float | None = None,
    family: str | None = None,
    wording: str = "interval",
) -> pd.DataFrame:
    """The survival posterior as a paper reports it: medians, time ratios, shapes, spreads.

    Parameters
    ----------
    posterior : FitResult, StoredPosterior, xarray.DataTree or mapping of draws
        A survival posterior.
    endpoint : {"pfs", "os"}, optional
        Default: the stored model type's (``survival-os`` gives OS), else PFS.
    interval : Interval or float, optional
        Default 95% equal-tailed.
    family : str, optional
        The survival family (default: the one recorded with the posterior).
    wording : {"interval", "cri"}
        How the note names the interval ("95% CrI" with ``"cri"``).

    Returns
    -------
    pandas.DataFrame
        ``group``, ``quantity`` (in words), ``unit``, ``median``, the interval bounds,
        ``estimate`` (``"12.9 (7.0–26.2)"``), ``r_hat``, ``ess_bulk``, ``ess_tail``;
        ``attrs["note"]`` says what the numbers are (rendered visibly by
        :func:`netbayes.report.format_table`).

    Notes
    -----
    Medians are for a typical centre (study effect 0) and, after R-PRRT, the reference
    patient of the model's centring: prior PFS 36 months and 44.7 GBq cumulative 177Lu.
    """
    from netbayes.families import family_of, get_family
    from netbayes.formulas import survival as F

    iv = as_interval(interval)
    _check_wording(wording)
    d, chains = _draws_and_chains(posterior)
    if endpoint is None:
        card = getattr(posterior, "card", None) or {}
        endpoint = "os" if str(card.get("model_type", "")).endswith("-os") else "pfs"
    if endpoint not in ("pfs", "os"):
        raise ValueError(f"endpoint={endpoint!r} is not allowed; expected 'pfs' or 'os'")
    fam = get_family(family if family is not None else family_of(posterior))
    missing = [v for v in F.params_for(endpoint) if v not in d]
    if missing:
        raise ValueError(f"the posterior lacks {missing} (a {endpoint.upper()} survival model's)")
    E = endpoint.upper()
    items: list[tuple[str, str, str, np.ndarray, int]] = []
    for line, what in (
        ("R-PRRT", f"Median {E} after R-PRRT"),
        ("I-PRRT", f"Median {E}, first line"),
    ):
        alpha, sigma, z = F.type_intercepts(d, line, endpoint)
        k = F.shape(d, line, endpoint)
        shift = 0.0 if line == "I-PRRT" else F.salvage_shift(d, line, 0.0, 0.0)
        group = what + (
            " (reference patient: prior PFS 36 months, 44.7 GBq cumulative; typical centre)"
            if line == "R-PRRT"
            else " (typical centre)"
        )
        for j, t in enumerate(vocab.TUMOUR_TYPES):
            med = fam.median(k, np.exp(alpha + sigma * z[:, j] + shift))
            items.append((group, t, "months", med, 1))
    ratios = [
        ("beta_gbq", "per 10 GBq more cumulative 177Lu", lambda b: np.exp(b)),
        ("beta_x", "per doubling of the prior PFS", lambda b: np.power(2.0, b)),
        ("gamma_rr", "RR-PRRT against R-PRRT", lambda b: np.exp(b)),
        ("gamma_re188", "188Re-HEDP against R-PRRT", lambda b: np.exp(b)),
    ]
    for name, what, fn in ratios:
        if name in d:
            items.append(("Time ratios (> 1: longer)", what, "ratio", fn(d[name]), 2))
    shapes = [
        ("k1_os" if endpoint == "os" else "k1", "shape, first line", "shape"),
        ("k2", "shape, salvage lines", "shape"),
        ("sigma1_os" if endpoint == "os" else "sigma1", "between-type SD, first line",
         "log time"),
        ("sigma2", "between-type SD, salvage", "log time"),
        ("tau", "between-centre SD", "log time"),
    ]  # fmt: skip
    for name, what, unit in shapes:
        if name in d:
            items.append((f"{fam.name.capitalize()} shapes and spreads", what, unit, d[name], 2))
    out = _rows(items, iv, chains)
    out.attrs["note"] = _note(iv, chains, wording)
    return out


def toxicity_table(
    posterior: Any, *, interval: Interval | float | None = None, wording: str = "interval"
) -> pd.DataFrame:
    """The toxicity posterior as a paper reports it: the reference patient's grade >= III
    risks, the probit dose and cohort effects, the activity conversion and the spreads.

    Parameters and result as :func:`survival_table` (the risks for a typical centre; the
    reference patient is :data:`REFERENCE_TOXICITY`, R-PRRT with 14.9 GBq planned after
    29.9 GBq).
    """
    from netbayes.formulas import toxicity as T
    from netbayes.predict.evaluate import _toxicity_risk

    iv = as_interval(interval)
    _check_wording(wording)
    d, chains = _draws_and_chains(posterior)
    missing = [v for v in T.PARAMS if v not in d]
    if missing:
        raise ValueError(f"the posterior lacks {missing} (a toxicity model's)")
    ref = REFERENCE_TOXICITY
    risk = _toxicity_risk({k: d[k] for k in T.PARAMS}, ref["line"], ref["planned_gbq"],
                          ref["prior_gbq"])  # fmt: skip
    group = (
        f"P(grade >= III), reference patient ({ref['line']}, {ref['planned_gbq']:g} GBq after "
        f"{ref['prior_gbq']:g} GBq; typical centre)"
    )
    items: list[tuple[str, str, str, np.ndarray, int]] = [
        (group, cl, "probability", risk[:, j], 3) for j, cl in enumerate((*vocab.CELL_LINES, "any"))
    ]
    effects = [
        ("beta_activity", "per 10 GBq planned in the line"),
        ("beta_prior", "per 10 GBq given before the line"),
        ("delta_retreated", "retreated cohort (R-/RR-PRRT) against first line"),
        ("delta_re188", "188Re-HEDP cohort against first line"),
    ]
    for name, what in effects:
        if name in d:
            items.append(("Probit shifts of the latent grade (> 0: more toxic)", what, "probit",
                          d[name], 2))  # fmt: skip
    for name, what, unit in (
        ("theta", "GBq 177Lu-equivalent per GBq 188Re", "ratio"),
        ("sigma_u", "between-patient SD of the propensity", "probit"),
        ("tau_tox", "between-centre SD", "probit"),
    ):
        if name in d:
            items.append(("Conversion and spreads", what, unit, d[name], 2))
    out = _rows(items, iv, chains)
    out.attrs["note"] = _note(iv, chains, wording)
    return out
