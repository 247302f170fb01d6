"""Simulation coverage of the PFS survival model (issue 3, deliverable 5).

**Coverage.** For each replicate: draw every parameter from the prior
(:func:`netbayes.simulation.draw_survival_truth`), simulate patients with the published design
and summarise them as the paper did, with lifelines as the independent Kaplan-Meier (per
tumour-type row: KM median, Greenwood SE, symmetric Wald 95% CI, "N/A" where the paper had it;
Spearman of first-line with R-PRRT PFS after the 18-month selection;
:func:`netbayes.simulation.simulate_survival_study`), fit the model to those summaries, and
record whether the central 50% and 90% credible intervals contain the truth for the Weibull
shapes, the tumour-type medians and the prior-PFS effect.

Truths are drawn from the prior, so an exact Bayesian computation covers at the nominal rate
*on average over replicates*, identified parameter or not; departures measure the
approximations of the likelihood: censoring before the median ignored, the asymptotic SE
with a learned noise scale, the Spearman term without type heterogeneity, the plug-in SE of
mixture rows, and the Greenwood/KM-slope SE the paper-style summaries carry.

The model is compiled once (:func:`netbayes.fitting.compile_swappable`: nutpie's model with
swappable data, its callbacks cached on disk) and each replicate's summaries are swapped in
with ``with_data`` (:meth:`SurvivalModel.data_values`). The replicates run in this process or
as tasks on Dask (``--workers N``, ``--scheduler tcp://host:8786``; :mod:`netbayes.runner`),
with the same rows either way.

**Patient-level data.** ``--ipd`` fits one realistic truth (the real-data posterior means
of the scalar parameters, type effects drawn once) with its simulated summaries alone and
with 100 and 1000 simulated R-PRRT patients added (cumulative activity 40-60 GBq), and
reports how the posterior of each target narrows around the truth.

Usage::

    python benchmarks/survival_coverage.py [--reps 50] [--draws 600] [--tune 600]
    python benchmarks/survival_coverage.py --ipd
    python benchmarks/survival_coverage.py --reps 50 --workers 2   # replicates on Dask

Writes ``benchmarks/results/survival_coverage_replicates.csv`` (one row per replicate and
target; written as replicates finish, sorted by replicate, so a partial run keeps its results
and a rerun resumes),
``survival_coverage_summary.csv`` / ``.md`` and, with ``--ipd``, ``survival_ipd.csv`` / ``.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from netbayes import vocab
from netbayes.fitting import diagnose
from netbayes.models.survival import SurvivalModel, SurvivalPriors
from netbayes.report import format_table
from netbayes.runner import add_runner_arguments
from netbayes.simulation import (
    draw_os_truth,
    draw_survival_truth,
    one_study_truth,
    simulate_os_study,
    simulate_survival_patients,
    simulate_survival_study,
    survival_targets,
)

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = {
    "shape": ["k1", "k2"],
    "first-line type medians": [f"median1[{t}]" for t in vocab.TUMOUR_TYPES],
    "salvage type medians": [f"median2[{t}]" for t in vocab.TUMOUR_TYPES],
    "prior-PFS effect": ["beta_x"],
}
PARAMS = ["alpha1", "alpha2", "k1", "k2", "sigma1", "sigma2", "z1", "z2", "beta_x"]
PARAMS_OS = [*PARAMS, "alpha1_os", "k1_os", "sigma1_os", "z1_os"]
GROUPS_OS = {
    **GROUPS,
    "salvage type medians": [f"median2[{t}]" for t in vocab.TUMOUR_TYPES],  # OS after R-PRRT
    "first-line OS shape": ["k1_os"],
    "first-line OS type medians": [f"median1_os[{t}]" for t in vocab.TUMOUR_TYPES],
}
#: with the study level, the same medians for the simulated study itself (intercepts + u):
#: what its rows inform; the population medians above also carry the prior spread of u
STUDY_GROUPS = {
    "first-line type medians, the study": [f"median1[{t}]@study" for t in vocab.TUMOUR_TYPES],
    "salvage type medians, the study": [f"median2[{t}]@study" for t in vocab.TUMOUR_TYPES],
}
STUDY_GROUPS_OS = {
    **STUDY_GROUPS,
    "first-line OS type medians, the study": [f"median1_os[{t}]@study" for t in vocab.TUMOUR_TYPES],
}


def os_targets(params: dict) -> dict[str, np.ndarray]:
    """:func:`survival_targets` plus the first-line OS shape and type medians (OS model)."""
    from netbayes.families import get_family

    out = survival_targets(params)
    k = np.asarray(params["k1_os"])
    lam = np.exp(params["alpha1_os"][..., None] + params["sigma1_os"][..., None] * params["z1_os"])
    m = get_family("weibull").median(k[..., None], lam)
    out["k1_os"] = k
    for j, t in enumerate(vocab.TUMOUR_TYPES):
        out[f"median1_os[{t}]"] = m[..., j]
    return out


def with_study_targets(targets):
    """``targets`` plus, where ``u_study`` is given, every median at the study's own
    intercepts (``<name>@study``: alpha1, alpha2, alpha1_os shifted by u)."""

    def fn(params: dict) -> dict[str, np.ndarray]:
        out = targets(params)
        if "u_study" not in params:
            return out
        u = np.asarray(params["u_study"])[..., 0]
        shifted = dict(params)
        for name in ("alpha1", "alpha2", "alpha1_os"):
            if name in params:
                shifted[name] = np.asarray(params[name]) + u
        for name, x in targets(shifted).items():
            if name.startswith("median"):
                out[f"{name}@study"] = x
        return out

    return fn


def _draws(tree, names: list[str]) -> dict[str, np.ndarray]:
    post = tree["posterior"].dataset
    return {k: post[k].to_numpy().reshape(-1, *post[k].shape[2:]) for k in names}


def coverage_rows(
    rep: int, truth: dict, draws: dict, extra: dict | None = None, targets=survival_targets
) -> list[dict[str, object]]:
    """Per-target rows: truth, posterior mean/sd, and whether the 50%/90% ETIs cover it."""
    est, tru = targets(draws), targets(truth)
    out = []
    for name, x in est.items():
        q = np.quantile(x, [0.05, 0.25, 0.75, 0.95])
        t = float(tru[name])
        out.append(
            {
                "rep": rep,
                "target": name,
                "truth": t,
                "post_mean": float(x.mean()),
                "post_sd": float(x.std()),
                "rank": float((x < t).mean()),
                "in50": bool(q[1] <= t <= q[2]),
                "in90": bool(q[0] <= t <= q[3]),
                **(extra or {}),
            }
        )
    return out


class CoverageReplicate:
    """One coverage replicate as a task: the recipe, not the compiled model.

    Picklable, so Dask can send it to its workers; the model is built and compiled on first
    use in each process (:func:`netbayes.runner.worker_cache`). Replicate ``r``'s truth and
    patients come from ``default_rng([seed, r])`` and its sampler seed is ``seed * 1000 + r``,
    so it is the same whatever else ran and wherever it runs.
    """

    def __init__(
        self, *, draws: int, tune: int, chains: int, cores: int, seed: int, follow_up, endpoint,
        censoring, accrual, sim_accrual, verbose: bool = False,
    ):  # fmt: skip
        self.draws, self.tune, self.chains, self.cores = draws, tune, chains, cores
        self.seed, self.follow_up, self.endpoint = seed, tuple(follow_up), endpoint
        self.censoring, self.accrual, self.sim_accrual = censoring, accrual, sim_accrual
        self.verbose = verbose

    def _build(self):
        from netbayes.fitting import compile_swappable

        # the simulated study is Table 5 alone: the OS model's real 188Re-HEDP patients
        # (which inform k2, alpha2, z2 and, since issue 16, beta_x and beta_gbq) are left
        # out, or the real data would pull every replicate's shared parameters towards them
        sm = SurvivalModel(
            self.endpoint, censoring=self.censoring, accrual=self.accrual,
            exclude_studies=("re188pilot",) if self.endpoint == "os" else (),
        )  # fmt: skip
        t0 = time.perf_counter()
        compiled = compile_swappable(sm.build())
        if self.verbose:
            print(f"compiled in {time.perf_counter() - t0:.1f} s", flush=True)
        return sm, compiled

    def __call__(self, r: int) -> list[dict[str, object]]:
        import nutpie

        from netbayes.runner import worker_cache

        key = ("benchmarks/survival_coverage.py", self.endpoint, self.censoring, self.accrual)
        sm, compiled = worker_cache(key, self._build)
        os_ = self.endpoint == "os"
        params = (PARAMS_OS if os_ else PARAMS) + (["u_study"] if sm.study_level else [])
        # one generator per replicate: replicate r is the same whatever was run before it
        rng = np.random.default_rng([self.seed, r])
        truth = draw_os_truth(sm.priors, rng) if os_ else draw_survival_truth(sm.priors, rng)
        # the model fits the one simulated study at intercepts alpha + u: draw u from its
        # prior too, or u = 0 (its prior centre) makes the population medians over-cover
        truth, sim = one_study_truth(truth, sm.priors, rng) if sm.study_level else (truth, truth)
        if os_:
            sums = simulate_os_study(sim, rng, accrual=self.sim_accrual)
            rs_sim, dropped = float("nan"), int(sums["os"]["median_months"].isna().sum())
        else:
            study = simulate_survival_study(sim, rng, follow_up=self.follow_up)
            sums, rs_sim = {"pfs": study.summaries}, study.spearman
            dropped = int(study.summaries["median_months"].isna().sum())
        c = compiled.with_data(**sm.data_values(sums, None if os_ else rs_sim))
        t1 = time.perf_counter()
        tree = nutpie.sample(
            c, draws=self.draws, tune=self.tune, chains=self.chains, cores=self.cores,
            seed=self.seed * 1000 + r, progress_bar=False, target_accept=0.95,
        )  # fmt: skip
        secs = time.perf_counter() - t1
        diag = diagnose(tree, params)
        n_div = int(tree["sample_stats"].dataset["diverging"].to_numpy().sum())
        extra = {
            "divergences": n_div,
            "max_rhat": float(diag["r_hat"].max()),
            "min_ess_bulk": float(diag["ess_bulk"].min()),
            "seconds": secs,
            "spearman_sim": rs_sim,
            "medians_dropped": dropped,
            "censoring": self.censoring,
            "u_study": float(truth["u_study"][0]) if sm.study_level else 0.0,
        }
        targets = with_study_targets(os_targets if os_ else survival_targets)
        return coverage_rows(r, truth, _draws(tree, params), extra, targets)


def run_coverage(
    n_reps: int,
    *,
    draws: int,
    tune: int,
    chains: int = 4,
    seed: int = 3,
    out_csv: Path | None = None,
    verbose: bool = True,
    follow_up: tuple[float, float] = (0.5, 4.0),
    endpoint: str = "pfs",
    censoring: str = "none",
    accrual: str = "uniform",
    sim_accrual: str = "uniform",
    workers: int | None = None,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Run (or resume) the coverage study; returns one row per replicate and target.

    ``follow_up`` is passed to :func:`~netbayes.simulation.simulate_survival_study` (an
    ablation: ``(1000, 1001)`` removes censoring; the random stream, so each replicate's truth
    and patients, stay the same, which makes replicate-by-replicate comparisons possible).

    ``endpoint="os"``: the OS design at the paper's follow-up/median ratios
    (:func:`~netbayes.simulation.simulate_os_study`, follow-up law ``sim_accrual``), fitted by
    ``SurvivalModel("os", censoring=censoring, accrual=accrual)``. The truth and patients of
    replicate r depend only on (seed, r), so runs with ``censoring="none"`` and
    ``"followup"`` are paired replicate by replicate (``docs/censoring.md``).

    ``workers`` / ``scheduler``: where the replicates run (:func:`netbayes.runner.run_replicates`:
    in this process by default, a local Dask cluster of ``workers`` processes, or a running
    scheduler); the rows are the same whichever. Each finished replicate's rows are written to
    ``out_csv`` at once (sorted by replicate); replicates already in it are skipped.
    """
    from netbayes.runner import cores_per_task, run_replicates, write_sorted_csv

    done = pd.read_csv(out_csv) if out_csv is not None and out_csv.exists() else None
    if done is not None and "u_study" not in done.columns:
        raise ValueError(
            f"{out_csv} holds replicates simulated without the study effect u (before the "
            "study level was drawn with the truth); rerun with --fresh or another --tag"
        )
    have = set() if done is None else {int(r) for r in done["rep"]}
    if all(r in have for r in range(n_reps)):
        return done
    task = CoverageReplicate(
        draws=draws, tune=tune, chains=chains, cores=cores_per_task(2, workers, scheduler),
        seed=seed, follow_up=follow_up, endpoint=endpoint, censoring=censoring,
        accrual=accrual, sim_accrual=sim_accrual, verbose=verbose,
    )  # fmt: skip

    def save(r: int, new: list[dict[str, object]]) -> None:
        if out_csv is not None:
            write_sorted_csv(out_csv, new, by="rep")

    def describe(r: int, new: list[dict[str, object]]) -> str:
        x = new[0]
        return (
            f"{x['seconds']:.1f} s, {x['divergences']} divergences, "
            f"max R-hat {x['max_rhat']:.3f}, min ESS {x['min_ess_bulk']:.0f}"
        )

    res = run_replicates(
        task, n_reps, done=have, on_result=save, describe=describe, workers=workers,
        scheduler=scheduler, progress=verbose, label="rep",
    )  # fmt: skip
    new = pd.DataFrame([row for rows in res.values() for row in rows])
    out = new if done is None else pd.concat([done, new], ignore_index=True)
    return out.sort_values("rep", kind="stable").reset_index(drop=True)


def summarise(per_rep: pd.DataFrame, groups: dict | None = None) -> pd.DataFrame:
    """Coverage per target group (and per target) with Monte Carlo standard errors.

    Targets within a replicate are correlated, so a group's SE uses replicate-level means.
    """
    groups = GROUPS if groups is None else groups
    out = []
    for group, names in [*groups.items(), *((n, [n]) for g in groups.values() for n in g)]:
        sub = per_rep[per_rep["target"].isin(names)]
        if sub.empty:
            continue
        row: dict[str, object] = {"group": group, "n_targets": len(names)}
        row["replicates"] = sub["rep"].nunique()
        for lvl in (50, 90):
            by_rep = sub.groupby("rep")[f"in{lvl}"].mean()
            row[f"coverage{lvl}"] = by_rep.mean()
            row[f"se{lvl}"] = by_rep.std(ddof=1) / np.sqrt(len(by_rep))
        out.append(row)
    return pd.DataFrame(out)


def paired_table(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str], groups: dict) -> str:
    """Markdown: coverage of two runs on the replicates both hold (same seeds: the same
    truths and patients), per group with Monte Carlo SEs, and their fit diagnostics."""
    reps = sorted(set(a["rep"]) & set(b["rep"]))
    cols = ["coverage50", "se50", "coverage90", "se90"]
    ta, tb = (
        summarise(d[d["rep"].isin(reps)], groups).drop_duplicates("group").set_index("group")[cols]
        for d in (a, b)
    )
    la, lb = labels
    lines = [
        f"Paired replicates: {len(reps)} (coverage ± Monte Carlo SE).",
        "",
        f"| group | {la} 50% | {lb} 50% | {la} 90% | {lb} 90% |",
        "|---|---|---|---|---|",
    ]
    for g in ta.index.intersection(tb.index):
        x, y = ta.loc[g], tb.loc[g]
        lines.append(
            f"| {g} | {x.coverage50:.2f} ± {x.se50:.2f} | {y.coverage50:.2f} ± {y.se50:.2f} "
            f"| {x.coverage90:.2f} ± {x.se90:.2f} | {y.coverage90:.2f} ± {y.se90:.2f} |"
        )
    ra, rb = (d[d["rep"].isin(reps)].groupby("rep").first() for d in (a, b))
    lines += [
        "",
        f"Replicates with divergences: {la} {(ra['divergences'] > 0).sum()}, {lb} "
        f"{(rb['divergences'] > 0).sum()}; median seconds {la} {ra['seconds'].median():.0f}, "
        f"{lb} {rb['seconds'].median():.0f}; max R-hat {la} {ra['max_rhat'].max():.3f}, "
        f"{lb} {rb['max_rhat'].max():.3f}.",
    ]
    return "\n".join(lines) + "\n"


def realistic_truth() -> dict[str, np.ndarray]:
    """Real-data posterior means of the scalar parameters; tumour-type effects drawn once."""
    fit = json.loads((RESULTS / "survival_fit_pfs.json").read_text())["posterior"]
    tr = {k: np.asarray(fit[k]["mean"]) for k in fit if k in SurvivalPriors.DEFAULTS}
    rng = np.random.default_rng(7)
    tr["z1"], tr["z2"] = rng.normal(size=6), rng.normal(size=6)
    return tr


def run_ipd(sizes=(0, 100, 1000), *, draws: int = 1000, tune: int = 1000, seed: int = 11):
    """Fit one truth's summaries alone and with simulated patients; posterior vs truth."""
    truth = realistic_truth()
    rng = np.random.default_rng(seed)
    study = simulate_survival_study(truth, rng)
    ipd_all = simulate_survival_patients(truth, max(sizes), rng)
    targets = ["k2", "beta_x", "beta_gbq", "median2[midgut]", "median2[pancreatic]"]
    rows = []
    for n in sizes:
        sm = SurvivalModel(
            "pfs",
            patients=ipd_all.iloc[:n] if n else None,
            summaries={"pfs": study.summaries},
            spearman=(study.spearman, 168),
        )
        fit = sm.fit(draws=draws, tune=tune, chains=4, seed=seed, progress=False)
        d = fit.all_draws()
        est, tru = survival_targets(d), survival_targets(truth)
        est["beta_gbq"], tru["beta_gbq"] = d["beta_gbq"], truth["beta_gbq"]
        for name in targets:
            x = est[name]
            lo, hi = np.quantile(x, [0.05, 0.95])
            rows.append(
                {
                    "n_patients": n,
                    "target": name,
                    "truth": float(tru[name]),
                    "post_mean": float(x.mean()),
                    "post_sd": float(x.std()),
                    "eti90_lower": float(lo),
                    "eti90_upper": float(hi),
                    "covered90": bool(lo <= tru[name] <= hi),
                    "divergences": fit.n_divergences,
                    "max_rhat": float(fit.diagnostics["r_hat"].max()),
                }
            )
        print(pd.DataFrame(rows).tail(len(targets)).to_string(index=False), flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--fresh", action="store_true", help="discard saved replicates")
    ap.add_argument("--ipd", action="store_true", help="run the patient-level-data study")
    ap.add_argument(
        "--follow-up", type=float, nargs=2, default=(0.5, 4.0), metavar=("LO", "HI"),
        help="follow-up as U(LO, HI) x each row's median (ablation; 1000 1001: no censoring)",
    )  # fmt: skip
    ap.add_argument("--tag", default="", help="write survival_coverage_<tag>_*.csv/md (ablations)")
    ap.add_argument(
        "--endpoint",
        choices=["pfs", "os"],
        default="pfs",
        help="os: the OS design at the paper's follow-up/median ratios",
    )
    ap.add_argument(
        "--censoring",
        choices=["none", "followup"],
        default="none",
        help="the model's censoring treatment (docs/censoring.md)",
    )
    ap.add_argument(
        "--accrual",
        choices=["uniform", "exponential"],
        default="uniform",
        help="the model's follow-up law (with --censoring followup)",
    )
    ap.add_argument(
        "--sim-accrual",
        choices=["uniform", "exponential"],
        default="uniform",
        help="the simulated follow-up law (--endpoint os)",
    )
    ap.add_argument(
        "--paired", nargs=2, metavar=("TAG_A", "TAG_B"),
        help="compare two saved runs on their common replicates (writes "
        "survival_coverage_paired_<A>_<B>.md) and exit",
    )  # fmt: skip
    add_runner_arguments(ap)
    a = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if a.paired:
        runs = [pd.read_csv(RESULTS / f"survival_coverage_{t}_replicates.csv") for t in a.paired]
        groups = (
            {**GROUPS_OS, **STUDY_GROUPS_OS} if a.endpoint == "os" else {**GROUPS, **STUDY_GROUPS}
        )
        groups |= {n: [n] for n in ("k2", "beta_x", "k1_os")}
        md = paired_table(*runs, tuple(a.paired), groups)
        (RESULTS / f"survival_coverage_paired_{a.paired[0]}_{a.paired[1]}.md").write_text(md)
        print(md)
        return
    if a.ipd:
        res = run_ipd()
        res.to_csv(RESULTS / "survival_ipd.csv", index=False)
        md = [
            "# PFS model: adding simulated patient-level data (one realistic truth)",
            "",
            "Same simulated Table-5-style summaries; 0, 100, 1000 simulated R-PRRT patients "
            "added (cumulative activity 40-60 GBq). 90% ETI.",
            "",
            format_table(res, digits=3),
        ]
        (RESULTS / "survival_ipd.md").write_text("\n".join(md) + "\n")
        print("\n".join(md))
        return
    stem = f"survival_coverage_{a.tag}_" if a.tag else "survival_coverage_"
    out_csv = RESULTS / f"{stem}replicates.csv"
    if a.fresh and out_csv.exists():
        out_csv.unlink()
    per_rep = run_coverage(
        a.reps, draws=a.draws, tune=a.tune, chains=a.chains, seed=a.seed, out_csv=out_csv,
        follow_up=tuple(a.follow_up), endpoint=a.endpoint, censoring=a.censoring,
        accrual=a.accrual, sim_accrual=a.sim_accrual, workers=a.workers, scheduler=a.scheduler,
    )  # fmt: skip
    groups = {**GROUPS_OS, **STUDY_GROUPS_OS} if a.endpoint == "os" else {**GROUPS, **STUDY_GROUPS}
    summary = summarise(per_rep, groups)
    summary.to_csv(RESULTS / f"{stem}summary.csv", index=False)
    by_rep = per_rep.groupby("rep").first()
    md = [
        f"# {a.endpoint.upper()} model (censoring={a.censoring}, accrual={a.accrual}): "
        f"simulation coverage ({by_rep.shape[0]} replicates)",
        "",
        f"Truth drawn from the prior, the study effect u = tau z included (targets: population "
        "medians; '@study': the simulated study's own, intercepts + u); published Table 5 "
        f"{a.endpoint.upper()} design; lifelines KM summaries; "
        f"{a.draws} draws x {a.chains} chains per fit; central 50% and 90% intervals; "
        + (
            f"OS design at the paper's follow-up/median ratios ({a.sim_accrual} follow-up law)."
            if a.endpoint == "os"
            else f"follow-up U({a.follow_up[0]:g}, {a.follow_up[1]:g}) x row median."
        ),
        f"Replicates with divergences: {(by_rep['divergences'] > 0).sum()} of {len(by_rep)}; "
        f"max R-hat over replicates: {by_rep['max_rhat'].max():.3f}; median seconds per fit: "
        f"{by_rep['seconds'].median():.1f}; medians not reached (dropped): "
        f"{int(by_rep['medians_dropped'].sum())}.",
        "",
        format_table(summary, digits=3),
    ]
    (RESULTS / f"{stem}summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
