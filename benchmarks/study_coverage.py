"""Simulation coverage of the study (centre) level of the PFS model (issue 15, deliver 4).

For K studies (K in 1, 3, 8) and R replicates each, one replicate:

1. draws a truth from the model's priors: the shared parameters and tau, and K study effects
   u_s = tau z_s (:func:`netbayes.simulation.draw_study_truth`);
2. draws K heterogeneous designs (:func:`netbayes.simulation.random_designs`: 20-170
   patients, selection on first-line PFS of 0, 12 or 18 months, 30-55 GBq, follow-up 1.5-3x
   the median with uniform accrual, random tumour mixes, per-type or all-tumour rows) and
   simulates each study's published rows (:func:`netbayes.simulation.simulate_studies`: KM
   medians with censoring, Wald SEs);
3. simulates one more study from the same truth with a fresh centre effect u_new = tau z_new
   and a fixed design (:data:`NEW_N` patients of the Rotterdam R-PRRT mix, 18-month
   selection, 44.7 GBq, no censoring) and takes its KM median (the ceil(n/2)-th time; n odd,
   so lifelines' median is the same);
4. fits the model to the K studies' rows alone (:func:`fit_studies`) and records whether the
   central 50% and 90% intervals cover (a) the new centre's KM median, from the model's
   new-centre predictive for that design (``Predictor(fit).cohort(..., centre="new")``),
   (b) tau, (c) the shared k2, beta_x and alpha2; and the posterior SDs of alpha2 and tau.

Truths come from the priors, so an exact Bayesian computation covers at the nominal rate on
average over replicates; departures measure the model's approximations (censoring before the
median ignored, the SE measurement model, the mixture rows' plug-in SE).

Studies without a selection rule (threshold 0) used to make the sampler diverge (K = 8,
replicate 0: 347 divergent of 600 draws) through a NaN gradient of the Weibull truncated
quantile at 0; ``WeibullFamily.truncated_quantile_pt`` now guards it (0 divergent).
``--thresholds`` changes the set the designs draw from (every other draw stays the same).

Each replicate's random stream is seeded by (seed, K, replicate), so a replicate's truth and
data do not depend on which others ran. Each finished replicate is appended to a JSONL file at
once, and replicates already in it are skipped: an interrupted run resumes. The replicates run
in this process or as tasks on Dask (``--workers N``, ``--scheduler tcp://host:8786``;
:mod:`netbayes.runner`), with the same records either way.

Usage::

    python benchmarks/study_coverage.py [--replicates 100] [--draws 500] [--tune 500]
    python benchmarks/study_coverage.py --quick      # smoke: 1 replicate per K, short chains

Writes ``benchmarks/results/study_coverage_replicates.jsonl`` and ``study_coverage.md`` (the
``--quick`` run writes to a temporary folder instead, unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from netbayes.models.survival import SurvivalModel, SurvivalPriors
from netbayes.runner import add_runner_arguments
from netbayes.simulation import (
    StudyDesign,
    draw_study_truth,
    random_designs,
    rotterdam_mix,
    simulate_studies,
    simulate_study_patients,
)

RESULTS = Path(__file__).resolve().parent / "results"
K_VALUES = (1, 3, 8)
NEW_N = 51
"""Patients of the new centre's cohort (odd: the KM median is one order statistic)."""
NEW_GBQ = (29.8, 14.9)
"""Activity before and in R-PRRT of the new centre's patients: 44.7 GBq cumulative."""
SHARED = ("k2", "beta_x", "alpha2")
TARGETS = ("new_median", "tau", *SHARED)
LEVELS = (50, 90)
THRESHOLDS = (0.0, 12.0, 18.0)
"""Selection thresholds of the simulated designs (months of first-line PFS; 0: no rule)."""


def new_design() -> StudyDesign:
    """The fixed design of the new centre's study (uncensored, so its KM median is the
    quantity :meth:`netbayes.predict.Predictor.cohort` predicts)."""
    return StudyDesign(
        "new",
        NEW_N,
        rotterdam_mix(),
        threshold=18.0,
        cumulative_gbq=sum(NEW_GBQ),
        followup=None,
        report=("all",),
    )


def new_centre_median(
    truth: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[float, float]:
    """A new centre's effect u_new = tau z_new and the KM median of its :func:`new_design`
    study (uncensored: the ceil(n/2)-th time, the quantity the cohort predictive predicts)."""
    u_new = float(truth["tau"]) * float(rng.normal())
    pts = simulate_study_patients(truth, new_design(), u_new, rng)
    t = np.sort(pts["time_months"].to_numpy())
    return u_new, float(t[math.ceil(len(t) / 2) - 1])


def simulate_replicate(
    k: int, rep: int, seed: int, thresholds: tuple[float, ...] = THRESHOLDS
) -> dict[str, Any]:
    """Truth, designs, the K studies' rows and the new centre's KM median of one replicate.

    ``thresholds``: the selection thresholds the designs draw from (the same number of them
    keeps every other draw of the replicate the same)."""
    rng = np.random.default_rng([seed, k, rep])
    truth = draw_study_truth(SurvivalPriors(), rng, k)
    designs = random_designs(k, rng, thresholds=thresholds)
    rows = simulate_studies(truth, designs, rng)
    u_new, median = new_centre_median(truth, rng)
    return {"truth": truth, "designs": designs, "rows": rows, "u_new": u_new, "new_median": median}


STUDIES_API_MISSING = (
    "SurvivalModel(..., studies=[rows], include_published=False) is not available in this "
    "checkout: the several-studies API (docs/published_cohorts.md) has not landed yet; merge "
    "it from main to fit the simulated studies"
)


def studies_api_available() -> bool:
    """Whether :class:`SurvivalModel` takes published studies' rows (``studies=``)."""
    return "studies" in inspect.signature(SurvivalModel).parameters


def fit_studies(rows: pd.DataFrame, seed: int, **sample: Any) -> Any:
    """Fit the PFS model to simulated studies' rows alone (no packaged Rotterdam data).

    Uses the several-studies API, ``SurvivalModel("pfs", studies=[rows],
    include_published=False)``; ``sample`` goes to :meth:`SurvivalModel.fit` (draws, tune,
    chains, ...).

    Raises
    ------
    NotImplementedError
        If the installed :class:`~netbayes.models.survival.SurvivalModel` has no ``studies``
        argument yet (it is being built on main; merge it and this runs unchanged).
    """
    if not studies_api_available():
        raise NotImplementedError(STUDIES_API_MISSING)
    sm = SurvivalModel("pfs", studies=[rows], include_published=False)  # type: ignore[call-arg]
    return sm.fit(seed=seed, progress=False, **sample)


def _interval_hits(x: np.ndarray, truth: float) -> dict[str, bool]:
    out = {}
    for lvl in LEVELS:
        a = (1 - lvl / 100) / 2
        lo, hi = np.quantile(x, [a, 1 - a])
        out[f"in{lvl}"] = bool(lo <= truth <= hi)
    return out


def score(sim: dict[str, Any], posterior: Any, seed: int, n_sims: int = 2000) -> dict[str, Any]:
    """Coverage indicators and posterior summaries of one fitted replicate.

    ``posterior`` is anything :class:`~netbayes.predict.Predictor` takes (a ``FitResult``, or
    draws with the study level's ``u_study`` and ``tau``).
    """
    from netbayes.predict import Predictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / extrapolation notes: recorded below
        pred = Predictor(posterior)
        coh = pred.cohort(
            NEW_N,
            line="R-PRRT",
            tumour_mix=rotterdam_mix(),
            prior_pfs_months="selected",
            prior_gbq=NEW_GBQ[0],
            planned_gbq=NEW_GBQ[1],
            n_sims=n_sims,
            seed=seed,
            centre="new",
        )
    if pred.ranges["prior_pfs_min"]["R-PRRT"] != new_design().threshold:
        raise ValueError("the predictor's selected prior PFS is not the new design's threshold")
    draws = posterior.all_draws() if hasattr(posterior, "all_draws") else posterior
    truth = sim["truth"]
    out: dict[str, Any] = {}
    est = {"new_median": np.asarray(coh.km_medians, float)}
    tru = {"new_median": sim["new_median"]}
    for name in ("tau", *SHARED):
        est[name] = np.asarray(draws[name], float).ravel()
        tru[name] = float(truth[name])
    for name in TARGETS:
        x = est[name]
        out[name] = {
            "truth": float(tru[name]),
            "post_mean": float(x.mean()),
            "post_sd": float(x.std()),
            "rank": float((x < tru[name]).mean()),
            **_interval_hits(x, float(tru[name])),
        }
    return out


def _record(k: int, rep: int, seed: int, sim: dict[str, Any]) -> dict[str, Any]:
    rows = sim["rows"]
    return {
        "K": k,
        "rep": rep,
        "seed": seed,
        "tau": float(sim["truth"]["tau"]),
        "u_new": sim["u_new"],
        "new_median": sim["new_median"],
        "n_rows": len(rows),
        "n_patients": int(sum(d.n for d in sim["designs"])),
        "medians_not_reached": int(rows["median_months"].isna().sum()),
    }


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by an interruption: that replicate reruns
            continue
    return out


def _append(path: Path, rec: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())


class StudyReplicate:
    """One (K, replicate) of the study as a task: the recipe, picklable for Dask's workers.

    Its stream is ``default_rng([seed, K, replicate])`` and its sampler seed
    ``seed * 100_000 + K * 1000 + replicate``, so it is the same wherever it runs.
    """

    def __init__(self, *, seed, thresholds, draws, tune, chains, fit, cores, replicates):
        self.seed, self.thresholds, self.fit = seed, tuple(thresholds), fit
        self.draws, self.tune, self.chains, self.cores = draws, tune, chains, cores
        self.replicates = replicates

    def __call__(self, key: tuple[int, int]) -> dict[str, Any]:
        k, rep = key
        t0 = time.perf_counter()
        sim = simulate_replicate(k, rep, self.seed, self.thresholds)
        rec = _record(k, rep, self.seed, sim)
        rec["thresholds"] = list(self.thresholds)
        msg = f"{len(sim['rows'])} rows, tau {rec['tau']:.3f}, new median {rec['new_median']:.1f}"
        if self.fit:
            cores = {} if self.cores is None else {"cores": self.cores}
            f = fit_studies(sim["rows"], self.seed * 100_000 + k * 1000 + rep, draws=self.draws,
                            tune=self.tune, chains=self.chains, **cores)  # fmt: skip
            rec["fit"] = score(sim, f, seed=rep)
            rec["divergences"] = int(f.n_divergences)
            rec["max_rhat"] = float(f.diagnostics["r_hat"].max())
            rec["min_ess_bulk"] = float(f.diagnostics["ess_bulk"].min())
            cov = " ".join(
                f"{n}:{int(rec['fit'][n]['in50'])}{int(rec['fit'][n]['in90'])}" for n in TARGETS
            )
            msg += f"; {rec['divergences']} div, R-hat {rec['max_rhat']:.3f}; in50/in90 {cov}"
        rec["seconds"] = time.perf_counter() - t0
        rec["_message"] = (
            f"K={k} rep {rep + 1}/{self.replicates} ({rec['seconds']:.1f} s): {msg}"
        )  # fmt: skip
        return rec


def run(
    k_values: tuple[int, ...],
    replicates: int,
    out_jsonl: Path,
    *,
    seed: int = 15,
    thresholds: tuple[float, ...] = THRESHOLDS,
    draws: int = 500,
    tune: int = 500,
    chains: int = 4,
    fit: bool = True,
    start: int = 0,
    workers: int | None = None,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the study; returns every record in ``out_jsonl``, sorted by (K, rep).

    ``start``: the first replicate this process runs (replicates ``start`` to
    ``replicates - 1``), so that several processes can share the replicates of a run, each
    appending to the same JSONL (one line per replicate; the result does not depend on the
    split, since each replicate is seeded by its own (seed, K, replicate)).

    ``workers`` / ``scheduler``: run the replicates as tasks on a local Dask cluster or a
    running scheduler (:func:`netbayes.runner.run_replicates`); the records are the same.

    ``fit=False`` simulates only (records without coverage): the smoke path while the
    several-studies API is missing.
    """
    from netbayes.runner import cores_per_task, run_replicates

    def same(r: dict[str, Any]) -> bool:  # a record of this configuration
        return (
            r.get("seed") == seed
            and tuple(r.get("thresholds", THRESHOLDS)) == tuple(thresholds)
            and ("fit" in r or not fit)
        )

    done = {(r["K"], r["rep"]) for r in _load(out_jsonl) if same(r)}
    local = scheduler is None and (workers or 1) == 1
    task = StudyReplicate(
        seed=seed, thresholds=thresholds, draws=draws, tune=tune, chains=chains, fit=fit,
        cores=None if local else cores_per_task(min(chains, os.cpu_count() or 1), workers,
                                                scheduler),
        replicates=replicates,
    )  # fmt: skip

    def save(key: tuple[int, int], rec: dict[str, Any]) -> None:
        _append(out_jsonl, {k: v for k, v in rec.items() if k != "_message"})

    keys = [(k, rep) for k in k_values for rep in range(start, replicates)]
    run_replicates(
        task, keys, done=done, on_result=save, workers=workers, scheduler=scheduler,
        progress=lambda line: print(line, flush=True), label="replicate",
        describe=lambda key, rec: rec["_message"],
    )  # fmt: skip
    recs = [r for r in _load(out_jsonl) if same(r)]
    latest = {(r["K"], r["rep"]): r for r in recs}  # the latest per replicate
    return [latest[key] for key in sorted(latest)]


def summarise(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Coverage by K and target with binomial Monte Carlo SEs; posterior SDs of alpha2, tau."""
    out = []
    fitted = [r for r in records if "fit" in r]
    for k in sorted({r["K"] for r in fitted}):
        rs = [r for r in fitted if r["K"] == k]
        for name in TARGETS:
            row: dict[str, Any] = {"K": k, "target": name, "replicates": len(rs)}
            for lvl in LEVELS:
                hits = np.array([r["fit"][name][f"in{lvl}"] for r in rs], float)
                p = hits.mean()
                row[f"coverage{lvl}"] = p
                row[f"mc_se{lvl}"] = math.sqrt(max(p * (1 - p), 1e-12) / len(rs))
            row["mean_post_sd"] = float(np.mean([r["fit"][name]["post_sd"] for r in rs]))
            out.append(row)
    return pd.DataFrame(out)


def simulation_summary(records: list[dict[str, Any]]) -> pd.DataFrame:
    """What was simulated, by K (also without fits)."""
    df = pd.DataFrame(records)
    g = df.groupby("K")
    return pd.DataFrame(
        {
            "replicates": g.size(),
            "rows_per_replicate": g["n_rows"].mean(),
            "patients_per_replicate": g["n_patients"].mean(),
            "medians_not_reached": g["medians_not_reached"].sum(),
            "median_tau": g["tau"].median(),
            "new_median_q05": g["new_median"].quantile(0.05),
            "new_median_q50": g["new_median"].median(),
            "new_median_q95": g["new_median"].quantile(0.95),
        }
    ).reset_index()


def markdown(records: list[dict[str, Any]], args: argparse.Namespace, note: str = "") -> str:
    from netbayes.report import format_table

    thr = ", ".join(f"{t:g}" for t in getattr(args, "thresholds", THRESHOLDS))

    md = [
        "# PFS model: the study level by simulation (issue 15, deliver 4)",
        "",
        "Truth from the priors (shared parameters, tau, u_s = tau z_s); K heterogeneous "
        "published-style studies (`random_designs`); the model fitted to their rows alone; "
        f"the new centre: {NEW_N} patients, Rotterdam R-PRRT mix, 18-month selection, 44.7 GBq, "
        "uncensored KM median vs `Predictor(fit).cohort(..., centre='new')`. Central 50% and "
        f"90% intervals; {args.draws} draws x {args.chains} chains (tune {args.tune}); seed "
        f"{args.seed}; selection thresholds {thr} "
        "months. MC SE: binomial, sqrt(p(1-p)/R).",
        "",
    ]
    if note:
        md += [note, ""]
    summ = summarise(records)
    if not summ.empty:
        fitted = pd.DataFrame([r for r in records if "fit" in r])
        md += [
            f"Replicates with divergences: {(fitted['divergences'] > 0).sum()} of "
            f"{len(fitted)}; max R-hat: {fitted['max_rhat'].max():.3f}; median seconds per "
            f"replicate: {fitted['seconds'].median():.1f}.",
            "",
            "## Coverage",
            "",
            format_table(summ, digits=3),
            "",
            "## Posterior SD by K (tightening as K grows)",
            "",
            format_table(
                summ[summ["target"].isin(["alpha2", "tau"])]
                .pivot(index="K", columns="target", values="mean_post_sd")
                .reset_index(),
                digits=3,
            ),
            "",
        ]
    md += ["## What was simulated", "", format_table(simulation_summary(records), digits=3), ""]
    return "\n".join(md)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument(
        "--start", type=int, default=0,
        help="first replicate to run (split a run over processes; default 0)",
    )  # fmt: skip
    ap.add_argument("--k", type=int, nargs="+", default=list(K_VALUES))
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument(
        "--thresholds", type=float, nargs="+", default=list(THRESHOLDS),
        help="selection thresholds the designs draw from (months; default 0 12 18)",
    )  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="smoke: 1 replicate per K, short chains")
    ap.add_argument("--out", type=Path, default=None, help="folder of the JSONL and .md files")
    ap.add_argument("--fresh", action="store_true", help="discard saved replicates")
    add_runner_arguments(ap)
    a = ap.parse_args(argv)
    if a.quick:
        a.replicates, a.draws, a.tune, a.chains = 1, 150, 150, 2
    out = a.out or (Path(tempfile.mkdtemp(prefix="study_coverage_")) if a.quick else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "study_coverage_replicates.jsonl"
    if a.fresh and jsonl.exists():
        jsonl.unlink()
    fit, note = studies_api_available(), ""
    if not fit:
        if not a.quick:
            raise SystemExit(f"cannot run the coverage study: {STUDIES_API_MISSING}")
        note = f"**Fits not run** (simulation only): {STUDIES_API_MISSING}."
        print(f"NOTE: {note}", flush=True)
    records = run(
        tuple(a.k), a.replicates, jsonl, seed=a.seed, draws=a.draws, tune=a.tune, start=a.start,
        chains=a.chains, fit=fit, thresholds=tuple(a.thresholds), workers=a.workers,
        scheduler=a.scheduler,
    )  # fmt: skip
    md = markdown(records, a, note)
    (out / "study_coverage.md").write_text(md)
    print(md)
    print(f"wrote {jsonl} and {out / 'study_coverage.md'}")


if __name__ == "__main__":
    main()
