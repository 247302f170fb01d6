"""Leave-one-study-out checks: each study's published figures predicted by a fit without it.

``netbayes validate`` compares every published figure with the predictive of its own study,
fitted on it: in-sample. Here, for every model with more than one study, the model is refitted
once per study with that study left out (``exclude_studies``), and the study's figures are
predicted for a *new centre* (its effect drawn from the study level, ``tau``): exactly what a
user at another centre is told. Each figure gets its PIT, the predictive probability of a value
at most the published one (for counts the mid PIT); over many figures a calibrated model gives
uniform PITs, and the central 50%/90%/95% predictive intervals hold about that share.

With the packaged data the PFS model has one study (no check); the OS and toxicity models have
two (Rotterdam and the 188Re-HEDP pilot), so each is predicted from the other alone. A study
predicted from a single other study is predicted almost from the priors: this is the honest
new-centre answer, and its intervals are wide.

This module fits models (it imports PyMC through them, on use).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from netbayes.spec import MODEL_TYPES

__all__ = ["LOSO_COLUMNS", "leave_one_study_out", "loso_summary"]

LOSO_COLUMNS = ["model_type", "held_out", "figure", "published", "predicted_median", "pit"]
"""Columns of :func:`leave_one_study_out`'s table."""


def _survival_rows(mt: str, held: str, fit: Any, seed: int) -> pd.DataFrame:
    from netbayes.calibration import re188, rotterdam
    from netbayes.checks.survival_ppc import re188_os_ppc_table, survival_ppc_table
    from netbayes.families import family_of

    d = dict(fit.all_draws())
    rng = np.random.default_rng([seed, 2])
    new = d["tau"] * rng.standard_normal(d["tau"].shape)  # a new centre, per draw
    fam = family_of(fit)
    ep = mt.split("-")[1]
    if held == rotterdam.STUDY_ID:
        t = survival_ppc_table(d, ep, family=fam, study_effect=new)
        t = t[t["in_likelihood"]]  # the "all tumours" rows repeat the type rows' patients
        fig = [f"{ep.upper()} {g} {ln} {ty} (n={n}) median" for g, ln, ty, n in
               t[["group", "line", "tumour_type", "n"]].itertuples(index=False)]  # fmt: skip
        pub, med = t["published_median_months"], t["predicted_median_months"]
    elif held == re188.STUDY_ID:
        t = re188_os_ppc_table(d, family=fam, study_effect=new)
        t = t[t["os_event"] == 1]  # a censored time has no PIT
        fig = [f"188Re-HEDP patient {p} OS" for p in t["patient"]]
        pub, med = t["os_months"], t["predicted_median_months"]
    else:  # pragma: no cover - only packaged studies can be left out here
        raise ValueError(f"no published figures of {held!r} to predict")
    return pd.DataFrame(
        {
            "figure": fig,
            "published": pub.to_numpy(float),
            "predicted_median": med.to_numpy(float),
            "pit": t["pit"].to_numpy(),
        }
    )


def _toxicity_rows(held: str, fit: Any, seed: int) -> pd.DataFrame:
    from netbayes.calibration import rotterdam
    from netbayes.formulas.toxicity_ppc import toxicity_ppc_table

    t = toxicity_ppc_table(fit, new_centre=[held], seed=seed)
    src = "Rotterdam Table 6" if held == rotterdam.STUDY_ID else "188Re per cycle"
    t = t[t["source"] == src]
    fig = [f"{s} {ph} {cl} grade {g}" for s, ph, cl, g in
           t[["source", "phase", "cell_line", "grade"]].itertuples(index=False)]  # fmt: skip
    return pd.DataFrame({"figure": fig, "published": t["observed"].to_numpy(float),
                         "predicted_median": t["pred_mean"].to_numpy(float),
                         "pit": t["pit"].to_numpy()})  # fmt: skip


def leave_one_study_out(
    model_types: Sequence[str] = MODEL_TYPES,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 20261121,
    progress: Callable[[str], None] | None = None,
    fit: Callable[..., Any] | None = None,
) -> pd.DataFrame:
    """Refit each model without each of its studies; PIT of the left-out study's figures.

    Parameters
    ----------
    model_types : sequence of str
        Models to check (default all three); a model with one study is skipped (reported in
        :func:`loso_summary` as such).
    draws, tune, chains, seed
        Sampler settings of each refit (the model's own target acceptance).
    progress : callable, optional
        Called with a line of text before each refit (e.g. ``print``).
    fit : callable, optional
        ``fit(model_type, held_out) -> FitResult``; default: fit the default model with
        ``exclude_studies=[held_out]`` (tests inject fits here).

    Returns
    -------
    pandas.DataFrame
        :data:`LOSO_COLUMNS`, one row per predicted figure; ``attrs["skipped"]`` lists the
        models with a single study, ``attrs["fits"]`` each refit's diagnostics.
    """
    from netbayes.models.registry import default_model

    def default_fit(mt: str, held: str) -> Any:
        m = default_model(mt, exclude_studies=[held])
        return m.fit(draws=draws, tune=tune, chains=chains, seed=seed, progress=False)

    fit = fit or default_fit
    frames, skipped, fits = [], [], {}
    for mt in model_types:
        studies = default_model(mt).studies
        if len(studies) < 2:
            skipped.append(f"{mt}: one study ({', '.join(studies)}), nothing to leave out")
            continue
        for held in studies:
            if progress is not None:
                progress(f"{mt}: refitting without {held} ...")
            f = fit(mt, held)
            fits[f"{mt} without {held}"] = _diagnostics(f)
            rows = _toxicity_rows(held, f, seed) if mt == "toxicity" else (
                _survival_rows(mt, held, f, seed))  # fmt: skip
            rows.insert(0, "held_out", held)
            rows.insert(0, "model_type", mt)
            frames.append(rows)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LOSO_COLUMNS)
    out = out[LOSO_COLUMNS].copy()
    out.attrs["skipped"] = skipped
    out.attrs["fits"] = fits
    return out


def _diagnostics(fit: Any) -> dict[str, Any] | None:
    diag = getattr(fit, "diagnostics", None)
    if not isinstance(diag, pd.DataFrame) or diag.empty:
        return None
    return {
        "divergences": int(getattr(fit, "n_divergences", 0)),
        "max_r_hat": float(diag["r_hat"].max()),
        "min_ess_bulk": float(diag["ess_bulk"].min()),
        "seconds": float(getattr(fit, "seconds", {}).get("total", float("nan"))),
    }


def loso_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and left-out study: figures, mean PIT and the share of figures inside the
    central 50%, 90% and 95% new-centre predictive intervals (from the PITs)."""
    rows = []
    for (mt, held), g in table.groupby(["model_type", "held_out"], sort=False):
        p = g["pit"].to_numpy(float)
        rows.append(
            {
                "model_type": mt,
                "held_out": held,
                "figures": len(p),
                "mean_pit": float(p.mean()),
                **{f"inside_{q}": float(np.mean(np.abs(p - 0.5) <= q / 200)) for q in (50, 90, 95)},
            }
        )
    return pd.DataFrame(rows)
