"""Prior sensitivity: refit with prior SDs scaled and tabulate which answers move.

:func:`prior_sensitivity` refits the default models (through the model registry,
:func:`netbayes.models.registry.default_model`, as ``netbayes fit`` does) twice with the same
sampler settings and seed: once with the default priors (the baseline) and once with the SD
(``sigma``) of every prior, or of a chosen subset, multiplied by ``scale``. It predicts one
patient from each pair of fits and reports, per answer, how far the posterior median moved in
units of the baseline's posterior SD (on the answer's prior-share scale: log months, logit
probability) and the ratio of the interval widths. An answer whose width ratio is near
``scale`` rests on the scaled priors; one near 1 on the data. The baseline's prior share
(:mod:`netbayes.predict.share`) is shown next to it. Both fits are refitted, so sampler
settings and Monte Carlo error are the same on both sides.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["README_PATIENT", "prior_sensitivity"]

README_PATIENT: dict[str, Any] = dict(
    tumour_type="midgut", line="R-PRRT", prior_pfs_months=30.0, prior_gbq=29.9, planned_gbq=14.9
)
"""The README's patient (the default of :func:`prior_sensitivity`)."""


def _scaled(model_type: str, scale: float, parameters: Sequence[str] | None) -> dict:
    from netbayes.models.registry import model_entry

    cls = model_entry(model_type).model_class()
    defaults = cls(**model_entry(model_type).kwargs).priors
    names = list(defaults) if parameters is None else [p for p in parameters if p in defaults]
    return {n: {"sigma": defaults[n].sigma * scale} for n in names}


def prior_sensitivity(
    patient: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    *,
    scale: float = 2.0,
    parameters: Sequence[str] | None = None,
    models: Sequence[str] = ("survival-pfs", "toxicity"),
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 20261206,
    centre: str = "new",
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Refit with prior SDs times ``scale`` and tabulate how each answer of ``patient`` moves.

    Parameters
    ----------
    patient : mapping or sequence of mappings, optional
        :meth:`netbayes.predict.Predictor.patient` keywords (default :data:`README_PATIENT`);
        several patients share the two fits.
    scale : float
        Factor on every prior's ``sigma`` (> 0; 2 doubles the SDs of normal priors and the
        log-SDs of log-normal ones).
    parameters : sequence of str, optional
        Scale only these priors (names of the models' prior sets, e.g. ``["beta_gbq",
        "theta"]``); default all. A name in no model's priors is refused.
    models : sequence of str
        Model types to refit: one survival model (``survival-pfs`` or ``survival-os``) and
        optionally ``toxicity``.
    draws, tune, chains, seed
        Sampler settings of every fit.
    centre : str
        As in :meth:`~netbayes.predict.Predictor.patient`.
    progress : callable, optional
        Called with a line of text before each fit.

    Returns
    -------
    pandas.DataFrame
        One row per answer (and patient): ``patient`` (its position), ``quantity``,
        ``t_months``, ``cell_line``, ``scale`` (log or logit), ``median`` and
        ``median_scaled`` (posterior medians), ``shift_sd`` (the move of the median in baseline
        posterior SDs on that scale), ``width_ratio`` (scaled / baseline interval width),
        ``prior_share`` (baseline). ``attrs``: the settings.

    Raises
    ------
    ValueError
        A bad ``scale``, ``models`` or ``parameters`` (naming the value and what is allowed).
    """
    from netbayes.models.registry import MODELS, default_model
    from netbayes.predict import Predictor
    from netbayes.predict.share import transform

    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not (0 < float(scale) < math.inf)
    ):
        raise ValueError(f"scale={scale!r} is not allowed; expected a finite number > 0")
    surv = [m for m in models if m.startswith("survival-")]
    bad = [m for m in models if m not in MODELS]
    if bad or len(surv) != 1 or len(set(models)) != len(models):
        raise ValueError(
            f"models={list(models)!r} is not allowed; expected one of survival-pfs, "
            "survival-os, optionally with toxicity"
        )
    if parameters is not None:
        known = set()
        for m in models:
            known |= set(_scaled(m, 1.0, None))
        unknown = sorted(set(parameters) - known)
        if unknown or not parameters:
            raise ValueError(
                f"parameters={list(parameters)!r} is not allowed; expected names among "
                f"{', '.join(sorted(known))}"
            )
    run = dict(draws=draws, tune=tune, chains=chains, seed=seed, progress=False)
    fits: dict[str, dict[str, Any]] = {"base": {}, "scaled": {}}
    todo = [(side, m) for side in ("base", "scaled") for m in models]
    for i, (side, m) in enumerate(todo, 1):
        if progress is not None:
            what = "default priors" if side == "base" else f"prior SDs x {scale:g}"
            progress(f"[{i}/{len(todo)}] {m} with {what}: compiling and sampling ...")
        over = {} if side == "base" else {"priors": _scaled(m, float(scale), parameters)}
        fits[side][m] = default_model(m, **over).fit(**run)
    recs = (
        [dict(README_PATIENT if patient is None else patient)]
        if (patient is None or isinstance(patient, Mapping))
        else [dict(r) for r in patient]
    )
    pr = {}
    for side, f in fits.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pr[side] = Predictor(f[surv[0]], f.get("toxicity"), endpoint=surv[0].split("-")[1])
    rows = []
    for ip, rec in enumerate(recs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = pr["base"].patient(**rec, centre=centre)
            new = pr["scaled"].patient(**rec, centre=centre)
        rows += _rows(ip, base, new, transform)
    out = pd.DataFrame(rows)
    out.attrs.update(
        {"scale": float(scale), "parameters": None if parameters is None else list(parameters),
         "models": list(models), "patient": recs[0] if len(recs) == 1 else recs,
         "centre": centre, "draws": draws, "tune": tune, "chains": chains, "seed": seed}
    )  # fmt: skip
    return out


def _rows(ip: int, base: Any, new: Any, transform: Callable[..., Any]) -> list[dict[str, Any]]:
    """The table rows of one patient: its baseline and scaled predictions compared."""
    lo, hi = base.interval.columns
    rows = []
    for (_, b), (_, s), (_, sh) in zip(
        base.summary.iterrows(), new.summary.iterrows(), base.prior_share.iterrows(), strict=True
    ):
        unit = b["unit"]
        draws_b = _answer_draws(base, b)
        tb = transform(draws_b, unit)
        sd = float(tb.std())
        shift = float(transform(np.array([s["median"]]), unit)[0] - np.median(tb))
        rows.append(
            {
                "patient": ip,
                "quantity": b["quantity"],
                "t_months": b["t_months"],
                "cell_line": b["cell_line"],
                "scale": sh["scale"],
                "median": float(b["median"]),
                "median_scaled": float(s["median"]),
                "shift_sd": shift / sd if sd > 0 else 0.0,
                "width_ratio": float((s[hi] - s[lo]) / (b[hi] - b[lo])),
                "prior_share": float(sh["share"]),
            }
        )
    return rows


def _answer_draws(p: Any, row: pd.Series) -> np.ndarray:
    """The draws of one summary row of a one-patient prediction."""
    e = p.endpoint
    if row["quantity"] == f"median_{e}":
        return p.arrays[f"median_{e}_months"][0]
    if row["quantity"] == f"p_{e}_gt":
        j = int(np.argmin(np.abs(p.coords["t_prob"] - float(row["t_months"]))))
        return p.arrays[f"p_{e}_gt"][0, :, j]
    j = list(p.coords["cell_line"]).index(str(row["cell_line"]))
    return p.arrays["p_grade3plus"][0, :, j]
