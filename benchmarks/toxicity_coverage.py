"""Simulation coverage benchmark of the toxicity model (issue 4, deliverable 5).

For each replicate: draw every parameter from the prior, simulate individual patients with
the published design (Rotterdam Table 6 phases with their n and activities, the six 188Re-HEDP
patients' 11 cycles), aggregate them exactly as the papers do (per-line grade III/IV counts,
worst-grade "any" counts, 188Re per-cycle grade counts with within-patient correlation), fit
the model, and record whether the central 50% and 90% credible intervals contain the truth.

Parameters are drawn from the prior, so a correct Bayesian computation covers at the nominal
rate *on average over replicates*, whatever the parameter is identified or not. Departures
measure what the model approximates: the composite likelihood (per-line and "any" terms on the
same patients), the multinomial for the 188Re cycles (which ignores that cycles of one patient
share a propensity), and sampling error.

The model is compiled once (:func:`netbayes.fitting.compile_swappable`) and re-used on each
replicate's counts with ``with_data``; diagnostics use :func:`netbayes.fitting.diagnose`. The
fits run in this process or as tasks on Dask (``--workers N``, ``--scheduler tcp://host:8786``;
:mod:`netbayes.runner`); the truths and data are drawn here from one stream, in replicate
order, so the results are the same either way.

Usage::

    PYTHONPATH=src python benchmarks/toxicity_coverage.py [--reps 50] [--margins exact]

``--margins exact`` (the model's default, ``docs/toxicity_margins.md``) writes
``benchmarks/results/toxicity_coverage_replicates_exact.csv`` (one row per replicate and
parameter, appended after each replicate: an interrupted run resumes where it stopped, on the
same simulated data) and ``toxicity_coverage_summary_exact.csv`` / ``.md``;
``--margins composite`` the v0.1 composite likelihood (``toxicity_coverage_*.csv`` without a
tag at ``--any-weight 1``). Replicate ``r`` simulates the same truth and data under either
likelihood (same seed), so the two are paired.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from netbayes.fitting import diagnose
from netbayes.formulas.toxicity import CELL_LINES, cutpoints
from netbayes.intervals import Interval
from netbayes.models.toxicity import (
    TARGET_ACCEPT,
    ToxicityModel,
    draw_prior_params,
    exact_data_arrays,
    simulate_data,
)
from netbayes.runner import add_runner_arguments

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = {
    "dose effects": ["beta_activity", "beta_prior", "theta"],
    "cutpoints": [f"cut[{line},c{k}]" for line in CELL_LINES for k in range(1, 5)],
    "selection effects": ["delta_control", "delta_retreated", "delta_re188"],
    "sigma_u": ["sigma_u"],
}


def _targets(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Named scalar targets from parameter arrays (draws first, or a single truth)."""
    cut = cutpoints(values["c3"], values["log_gap"])
    out = {k: np.asarray(values[k]) for k in GROUPS["dose effects"] + GROUPS["sigma_u"]}
    out.update({k: np.asarray(values[k]) for k in GROUPS["selection effects"]})
    for i, line in enumerate(CELL_LINES):
        for k in range(4):
            out[f"cut[{line},c{k + 1}]"] = cut[..., i, k]
    return out


def run_coverage(
    n_reps: int = 50,
    *,
    draws: int = 1000,
    tune: int = 600,
    chains: int = 2,
    seed: int = 2024,
    any_weight: float = 1.0,
    target_accept: float = TARGET_ACCEPT,
    margins: str = "composite",
    out: Path | None = None,
    verbose: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the coverage simulation.

    Parameters
    ----------
    n_reps : int
        Replicates (truth drawn from the prior, data simulated, model fitted).
    draws, tune, chains, seed
        Sampler settings per replicate (nutpie) and the seed of the whole study.
    any_weight : float
        Weight of the "any line" term (:class:`~netbayes.models.toxicity.ToxicityModel`).
    target_accept : float
        NUTS target acceptance; default the model's own default fit setting.
    margins : {"exact", "composite"}
        The likelihood of the published margins (:class:`~netbayes.models.toxicity.
        ToxicityModel`).
    out : Path, optional
        Per-replicate CSV, written after each replicate (sorted by replicate); replicates
        already in it are not refitted (their data are still simulated, so later replicates
        stay paired).
    verbose : bool
        Print one line per replicate.
    workers, scheduler
        Where the fits run (:func:`netbayes.runner.run_replicates`): in this process
        (default), on a local Dask cluster of ``workers`` processes, or on the Dask scheduler
        at ``scheduler``. The truths and data come from one stream over the replicates (this
        study predates per-replicate seeds), so they are drawn here, in order, and each task
        gets its replicate's data: the results are the same whichever.

    Returns
    -------
    per_rep : pandas.DataFrame
        One row per replicate and target: truth, posterior mean, in50, in90, divergences,
        max R-hat of the replicate.
    summary : pandas.DataFrame
        Coverage per group at 50% and 90% with Monte Carlo SEs.
    """
    from netbayes.runner import cores_per_task, run_replicates, write_sorted_csv

    rng = np.random.default_rng(seed)
    tm = ToxicityModel(any_weight=any_weight, margins=margins)
    rows: list[dict] = []
    done: set[int] = set()
    if out is not None and out.exists():
        old = pd.read_csv(out)
        rows = old.to_dict("records")
        done = {int(r) for r in old["rep"].unique()}
    sims = {}
    for r in range(n_reps):  # one stream: replicate r's truth follows r - 1's draws
        truth = draw_prior_params(rng, tm.priors)
        data, _ = simulate_data(truth, rng, template=tm.data)
        if r in done:
            continue
        if margins == "exact":
            values = exact_data_arrays(data)
        else:
            values = {"line_counts": data.line_counts, "worst_counts": data.worst_counts,
                      "re_counts": data.re_counts}  # fmt: skip
        sims[r] = (truth, values)
    task = ToxicityCoverageReplicate(
        sims, draws=draws, tune=tune, chains=chains, cores=cores_per_task(chains, workers,
        scheduler), seed=seed, any_weight=any_weight, margins=margins,
        target_accept=target_accept, verbose=verbose,
    )  # fmt: skip

    def save(r: int, new: list[dict]) -> None:
        if out is not None:
            write_sorted_csv(out, new, by="rep")

    res = run_replicates(
        task, sorted(sims), on_result=save, workers=workers, scheduler=scheduler,
        progress=verbose, label="rep",
        describe=lambda r, new: (
            f"{new[0]['seconds']:.1f} s, {new[0]['divergences']} divergences, "
            f"max R-hat {new[0]['max_rhat']:.3f}"
        ),
    )  # fmt: skip
    rows += [row for new in res.values() for row in new]
    per_rep = pd.DataFrame(rows)
    if not per_rep.empty:
        per_rep = per_rep.sort_values("rep", kind="stable").reset_index(drop=True)
    return per_rep, summarise(per_rep)


class ToxicityCoverageReplicate:
    """The fit of one coverage replicate as a task (picklable for Dask's workers): the
    replicates' simulated truths and data, and the recipe of the model, which is compiled
    once per process (:func:`netbayes.runner.worker_cache`). Sampler seed ``seed + r``."""

    def __init__(self, sims, *, draws, tune, chains, cores, seed, any_weight, margins,
                 target_accept, verbose=False):  # fmt: skip
        self.sims, self.draws, self.tune, self.chains = sims, draws, tune, chains
        self.cores, self.seed, self.any_weight, self.margins = cores, seed, any_weight, margins
        self.target_accept, self.verbose = target_accept, verbose

    def _build(self):
        from netbayes.fitting import compile_swappable

        tm = ToxicityModel(any_weight=self.any_weight, margins=self.margins)
        t0 = time.perf_counter()
        compiled = compile_swappable(tm.build())
        if self.verbose:
            print(f"compiled in {time.perf_counter() - t0:.1f} s", flush=True)
        return tm, compiled

    def __call__(self, r: int) -> list[dict]:
        import nutpie

        from netbayes.runner import worker_cache

        key = ("benchmarks/toxicity_coverage.py", self.any_weight, self.margins)
        tm, compiled = worker_cache(key, self._build)
        truth, values = self.sims[r]
        c = compiled.with_data(**values)
        t1 = time.perf_counter()
        tree = nutpie.sample(
            c, draws=self.draws, tune=self.tune, chains=self.chains, cores=self.cores,
            seed=self.seed + r, progress_bar=False, target_accept=self.target_accept,
        )  # fmt: skip
        post = tree["posterior"].dataset
        diag = diagnose(tree, tm.parameter_names())
        n_div = int(tree["sample_stats"].dataset["diverging"].to_numpy().sum())
        draws_ = {
            k: post[k].to_numpy().reshape(-1, *post[k].shape[2:])
            for k in ["c3", "log_gap", *GROUPS["dose effects"], *GROUPS["selection effects"],
                      "sigma_u"]
        }  # fmt: skip
        est = _targets(draws_)
        tru = _targets(truth)
        new = []
        for name, x in est.items():
            lo50, hi50 = Interval(0.5).bounds(x)
            lo90, hi90 = Interval(0.9).bounds(x)
            t = float(tru[name])
            new.append(
                {
                    "rep": r,
                    "target": name,
                    "truth": t,
                    "post_mean": float(x.mean()),
                    "in50": bool(lo50 <= t <= hi50),
                    "in90": bool(lo90 <= t <= hi90),
                    "divergences": n_div,
                    "max_rhat": float(diag["r_hat"].max()),
                    "seconds": time.perf_counter() - t1,
                }
            )
        return new


def summarise(per_rep: pd.DataFrame) -> pd.DataFrame:
    """Coverage per parameter group (and per target) with binomial MC standard errors.

    The SE of a group's coverage treats replicates as independent but targets within a
    replicate as correlated, so it uses the replicate-level mean (n = replicates).
    """
    out = []
    for group, names in [*GROUPS.items(), *((n, [n]) for g in GROUPS.values() for n in g)]:
        sub = per_rep[per_rep["target"].isin(names)]
        if sub.empty:
            continue
        row = {"group": group, "n_targets": len(names), "replicates": sub["rep"].nunique()}
        for lvl in (50, 90):
            by_rep = sub.groupby("rep")[f"in{lvl}"].mean()
            row[f"coverage{lvl}"] = by_rep.mean()
            row[f"se{lvl}"] = (
                by_rep.std(ddof=1) / np.sqrt(len(by_rep)) if len(by_rep) > 1 else np.nan
            )
        out.append(row)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=600)
    ap.add_argument("--any-weight", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--target-accept", type=float, default=TARGET_ACCEPT)
    ap.add_argument("--margins", choices=["exact", "composite"], default="exact")
    add_runner_arguments(ap)
    a = ap.parse_args()
    tag = "" if a.any_weight == 1.0 else f"_w{a.any_weight:g}"
    if a.margins == "exact":
        tag = "_exact"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"toxicity_coverage_replicates{tag}.csv"
    t0 = time.perf_counter()
    per_rep, summary = run_coverage(
        a.reps, draws=a.draws, tune=a.tune, seed=a.seed, any_weight=a.any_weight,
        target_accept=a.target_accept, margins=a.margins, out=out, workers=a.workers,
        scheduler=a.scheduler,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    summary.to_csv(RESULTS / f"toxicity_coverage_summary{tag}.csv", index=False)
    n_div = per_rep.groupby("rep")["divergences"].first()
    md = [
        f"# Toxicity model: simulation coverage ({per_rep['rep'].nunique()} replicates, "
        f"margins={a.margins}, any_weight={a.any_weight})",
        "",
        "Truth drawn from the prior; published design; nominal 50% and 90% central intervals.",
        f"nutpie, 2 chains x {a.draws} draws ({a.tune} tuning), target_accept "
        f"{a.target_accept}, seed {a.seed}; wall time {wall / 60:.1f} min on a shared 2-core "
        "machine.",
        f"Replicates with divergences: {(n_div > 0).sum()} of {len(n_div)}; "
        f"max R-hat over all replicates: {per_rep['max_rhat'].max():.3f}.",
        "",
        summary.to_markdown(index=False, floatfmt=".3f")
        if _has_tabulate()
        else summary.to_string(index=False),
    ]
    (RESULTS / f"toxicity_coverage_summary{tag}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
