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

The refits run one after the other, or as tasks on Dask (``workers=``, ``scheduler=``;
:mod:`netbayes.runner`), with the same table either way. This module fits models (it imports
PyMC through them, on use).
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


class _Refit:
    """One left-out study's refit and its rows, as a task (picklable: settings, not a fit)."""

    def __init__(self, pairs, *, draws, tune, chains, seed, fit, cores, announce):
        self.pairs, self.draws, self.tune, self.chains = pairs, draws, tune, chains
        self.seed, self.fit, self.cores, self.announce = seed, fit, cores, announce

    def default_fit(self, mt: str, held: str) -> Any:
        from netbayes.models.registry import default_model

        m = default_model(mt, exclude_studies=[held])
        return m.fit(draws=self.draws, tune=self.tune, chains=self.chains, seed=self.seed,
                     progress=False, cores=self.cores)  # fmt: skip

    def __call__(self, i: int) -> tuple[pd.DataFrame, dict[str, Any] | None]:
        mt, held = self.pairs[i]
        if self.announce is not None:
            self.announce(f"{mt}: refitting without {held} ...")
        f = (self.fit or self.default_fit)(mt, held)
        rows = _toxicity_rows(held, f, self.seed) if mt == "toxicity" else (
            _survival_rows(mt, held, f, self.seed))  # fmt: skip
        rows.insert(0, "held_out", held)
        rows.insert(0, "model_type", mt)
        return rows, _diagnostics(f)


def leave_one_study_out(
    model_types: Sequence[str] = MODEL_TYPES,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 20261121,
    progress: Callable[[str], None] | None = None,
    fit: Callable[..., Any] | None = None,
    workers: int | None = None,
    scheduler: Any = None,
) -> pd.DataFrame:
    """Refit each model without each of its studies; PIT of the left-out study's figures.

    Parameters
    ----------
    model_types : sequence of str
        Models to check (default all three); a model with one study is skipped (reported in
        :func:`loso_summary` as such).
    draws, tune, chains, seed
        Sampler settings of each refit (the model's own target acceptance). Every refit uses
        ``seed``, so a refit does not depend on which others ran, or where.
    progress : callable, optional
        Called with a line of text before each refit (e.g. ``print``); on Dask, after each
        refit finishes (with the count and the time elapsed).
    fit : callable, optional
        ``fit(model_type, held_out) -> FitResult``; default: fit the default model with
        ``exclude_studies=[held_out]`` (tests inject fits here). On Dask it is pickled to the
        workers.
    workers : int, optional
        Run the refits as tasks on a local Dask cluster of this many worker processes
        (:func:`netbayes.runner.run_replicates`; each refit then gets
        :func:`netbayes.runner.cores_per_task` cores); default: one after the other here.
    scheduler : str or distributed.Client, optional
        Run the refits on a running Dask scheduler (``"tcp://host:8786"``) instead.

    Returns
    -------
    pandas.DataFrame
        :data:`LOSO_COLUMNS`, one row per predicted figure; ``attrs["skipped"]`` lists the
        models with a single study, ``attrs["fits"]`` each refit's diagnostics. The same
        whatever ``workers`` or ``scheduler``.
    """
    import os

    from netbayes.models.registry import default_model
    from netbayes.runner import check_scheduler, check_workers, cores_per_task, run_replicates

    workers, scheduler = check_workers(workers), check_scheduler(scheduler)
    local = scheduler is None and (workers or 1) == 1
    pairs, skipped = [], []
    for mt in model_types:
        studies = default_model(mt).studies
        if len(studies) < 2:
            skipped.append(f"{mt}: one study ({', '.join(studies)}), nothing to leave out")
            continue
        pairs += [(mt, held) for held in studies]
    cores = None if local else cores_per_task(min(chains, os.cpu_count() or 1), workers, scheduler)
    task = _Refit(pairs, draws=draws, tune=tune, chains=chains, seed=seed, fit=fit, cores=cores,
                  announce=progress if local else None)  # fmt: skip
    res = run_replicates(
        task, len(pairs), workers=workers, scheduler=scheduler, label="refit",
        progress=False if local or progress is None else progress,
        describe=lambda i, _: "{} without {}".format(*pairs[i]),
    )  # fmt: skip
    frames, fits = [], {}
    for i, (mt, held) in enumerate(pairs):
        rows, diag = res[i]
        fits[f"{mt} without {held}"] = diag
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
