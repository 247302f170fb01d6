"""Simulation-based calibration of both models (issue 6, deliverable 2).

For each replicate: draw every top-level parameter from the model's own prior, simulate a study
with the published design and summarise it **the way the papers did** (survival: Table 5 KM
medians, Greenwood/Wald CIs, "N/A" where printed, the Spearman coefficient after the 18-month
selection, :func:`netbayes.simulation.simulate_survival_study`; toxicity: individual patients
aggregated into Table 6 grade III/IV counts and 188Re per-cycle grades,
:func:`netbayes.models.toxicity.simulate_data`), fit the model to those summaries, and record
the rank of the truth among ``L`` thinned posterior draws (:mod:`netbayes.sbc`).

Because the data are paper-style summaries and not draws from the model's own likelihood,
uniform ranks test the inference *and* the summary likelihoods together (the KM-median/SE
terms, the Spearman term, the composite toxicity counts). A parameter whose ranks are not
uniform is reported with the shape of its histogram.

Not ranked: ``kappa_se`` (the survival model's noise scale of published SEs has no true value
in a simulation whose SEs come from real KM curves), ``spearman_attenuation`` (likewise: the
simulated coefficient is attenuated by the simulated censoring itself) and ``gamma_re188``
(PFS model: no data, prior only); toxicity ``delta_user`` (no user patients here).

The models are compiled once per process (:func:`netbayes.fitting.compile_swappable`: nutpie's
model with swappable data, its callbacks cached on disk, so a later process loads them) and
each replicate's data swapped in with ``with_data``. The replicates run in this process, or as
tasks on Dask (``--workers N``: a local cluster of N worker processes; ``--scheduler
tcp://host:8786``: a running cluster), with the same ranks either way (:mod:`netbayes.runner`).

Usage::

    python benchmarks/sbc.py [--model survival|toxicity|both] [--reps 200] [--workers 2]

Writes to ``benchmarks/results/``: ``sbc_<model>_ranks.csv`` (one row per replicate, written as
replicates finish and sorted by replicate, so a stopped run resumes),
``sbc_<model>_uniformity.csv``, ``sbc_<model>_ranks.png`` and ``sbc_summary.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from netbayes import vocab
from netbayes.fitting import diagnose
from netbayes.report import format_table
from netbayes.runner import add_runner_arguments
from netbayes.sbc import plot_rank_histograms, sbc_ranks, uniformity_table

RESULTS = Path(__file__).resolve().parent / "results"
N_RANKS = 99
"""L: thinned posterior draws per rank (ranks 0..99, 10 bins of 10)."""
SURVIVAL_PARAMS = [
    "alpha1", "alpha2", "k1", "k2", "sigma1", "sigma2", "z1", "z2", "beta_x", "beta_gbq",
    "gamma_rr", "delta_control",
]  # fmt: skip
SETTINGS = {
    "survival": {"chains": 2, "draws": 200, "tune": 300, "target_accept": 0.95, "maxdepth": 8},
    "toxicity": {"chains": 2, "draws": 200, "tune": 300, "target_accept": None, "maxdepth": 10},
}


def _posterior(tree, names) -> dict[str, np.ndarray]:
    post = tree["posterior"].dataset
    return {k: post[k].to_numpy().reshape(-1, *post[k].shape[2:]) for k in names}


def _stats(tree, names) -> dict[str, float]:
    diag = diagnose(tree, names)
    return {
        "divergences": int(tree["sample_stats"].dataset["diverging"].to_numpy().sum()),
        "max_rhat": float(diag["r_hat"].max()),
        "min_ess_bulk": float(diag["ess_bulk"].min()),
    }


def _setup(model: str):
    """(compiled model, per-replicate simulator, ranked names, settings, readable labels)."""
    from netbayes.fitting import compile_swappable

    s = dict(SETTINGS[model])
    if model == "survival":
        from netbayes.models.survival import SurvivalModel
        from netbayes.simulation import (
            draw_survival_truth,
            one_study_truth,
            simulate_survival_study,
        )

        sm = SurvivalModel("pfs")
        compiled = compile_swappable(sm.build())
        # with the study level the model fits the simulated study at intercepts alpha + u:
        # u = tau z is drawn from its prior with the rest (u = 0 would make alpha's ranks
        # pile up in the middle) and ranked too
        names = SURVIVAL_PARAMS + (["tau", "u_study"] if sm.study_level else [])

        def simulate(rng):
            truth = draw_survival_truth(sm.priors, rng)
            sim = truth
            if sm.study_level:
                truth, sim = one_study_truth(truth, sm.priors, rng)
            study = simulate_survival_study(sim, rng)
            data = sm.data_values({"pfs": study.summaries}, study.spearman)
            return {k: truth[k] for k in names}, data

        types = list(vocab.TUMOUR_TYPES)
        labels = {f"z{b}[{i}]": f"z{b}[{t}]" for b in (1, 2) for i, t in enumerate(types)}
        labels |= {f"u_study[{i}]": f"u_study[{st}]" for i, st in enumerate(sm.studies)}
        return compiled, simulate, names, s, labels
    from netbayes.models.toxicity import (
        _SCALAR_PARAMS,
        TARGET_ACCEPT,
        ToxicityModel,
        draw_prior_params,
        exact_data_arrays,
        simulate_data,
    )

    tm = ToxicityModel()
    compiled = compile_swappable(tm.build())
    names = ["c3", "log_gap", *_SCALAR_PARAMS]
    s["target_accept"] = TARGET_ACCEPT

    def simulate(rng):
        truth = draw_prior_params(rng, tm.priors)
        data, _ = simulate_data(truth, rng, template=tm.data)
        if tm.margins == "exact":  # the pattern tables and 188Re lattice of these counts
            values = exact_data_arrays(data)
        else:
            values = {
                "line_counts": data.line_counts,
                "worst_counts": data.worst_counts,
                "re_counts": data.re_counts,
            }
        return {k: truth[k] for k in names}, values

    from netbayes.formulas.toxicity import CELL_LINES

    labels = {f"c3[{i}]": f"c3[{c}]" for i, c in enumerate(CELL_LINES)}
    labels |= {
        f"log_gap[{i},{g}]": f"log_gap[{c},{gap}]"
        for i, c in enumerate(CELL_LINES)
        for g, gap in enumerate(("c2-c1", "c3-c2", "c4-c3"))
    }
    return compiled, simulate, names, s, labels


class SBCReplicate:
    """One SBC replicate as a task: the recipe (model, seed, settings, cores), not the model.

    Picklable, so Dask can send it to its workers; the compiled model (which cannot be
    pickled) is built on first use in each process and kept there
    (:func:`netbayes.runner.worker_cache`). Replicate ``r`` depends only on ``(seed, r)``:
    truth, data and rank tie-breaks come from ``default_rng([seed, r])``, the sampler is
    seeded with ``seed * 100_000 + r`` and nutpie seeds each chain from it.
    """

    def __init__(self, model: str, seed: int, settings: dict, cores: int, verbose: bool = False):
        self.model, self.seed, self.settings = model, seed, dict(settings)
        self.cores, self.verbose = cores, verbose

    def _build(self):
        t0 = time.perf_counter()
        out = _setup(self.model)
        if self.verbose:
            print(f"{self.model}: compiled in {time.perf_counter() - t0:.1f} s", flush=True)
        return out

    def __call__(self, r: int) -> dict:
        import nutpie

        from netbayes.runner import worker_cache

        compiled, simulate, names, s0, labels = worker_cache(
            ("benchmarks/sbc.py", self.model), self._build
        )
        s = {**s0, **self.settings}
        rng = np.random.default_rng([self.seed, r])
        truth, data = simulate(rng)
        t1 = time.perf_counter()
        tree = nutpie.sample(
            compiled.with_data(**data), draws=s["draws"], tune=s["tune"], chains=s["chains"],
            cores=min(self.cores, s["chains"]), seed=self.seed * 100_000 + r,
            progress_bar=False, target_accept=s["target_accept"], maxdepth=s["maxdepth"],
        )  # fmt: skip
        row: dict = {"rep": r, "seconds": time.perf_counter() - t1, **_stats(tree, names)}
        row.update(chains=s["chains"], draws=s["draws"], tune=s["tune"])
        st = tree["sample_stats"].dataset
        if "maxdepth_reached" in st:
            row["maxdepth_share"] = float(st["maxdepth_reached"].to_numpy().mean())
        ranks = sbc_ranks(_posterior(tree, names), truth, N_RANKS, rng)
        row.update({labels.get(k, k): v for k, v in ranks.items()})
        return row


def run_sbc(
    model: str,
    n_reps: int,
    *,
    seed: int = 61,
    out_csv: Path | None = None,
    settings: dict | None = None,
    verbose: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Run (or resume) SBC of one model; one row per replicate (ranks and diagnostics).

    Parameters
    ----------
    model : {"survival", "toxicity"}
    n_reps : int
        Replicates wanted in total (a resumed run adds the missing ones).
    seed : int
        Replicate ``r`` uses ``default_rng([seed, r])`` for truth, data and ranks, whatever ran
        before it, and the sampler seed ``seed * 100_000 + r``.
    out_csv : Path, optional
        Write each finished replicate here at once (rows sorted by replicate) and resume from
        it: replicates already in it are skipped.
    settings : dict, optional
        Override ``chains``, ``draws``, ``tune``, ``target_accept``.
    verbose : bool
        Print one line per replicate.
    workers, scheduler
        Where the replicates run (:func:`netbayes.runner.run_replicates`): in this process
        (default), on a local Dask cluster of ``workers`` processes (each fit then gets
        ``netbayes.runner.cores_per_task`` cores) or on the Dask scheduler at ``scheduler``.
        The ranks are the same whichever.

    Returns
    -------
    pandas.DataFrame
        One row per replicate, sorted by ``rep``.
    """
    from netbayes.runner import cores_per_task, run_replicates, write_sorted_csv

    done = pd.read_csv(out_csv) if out_csv is not None and out_csv.exists() else None
    s_req = {**SETTINGS[model], **(settings or {})}
    if done is not None:
        old = {k: done[k].iloc[0] for k in ("chains", "draws", "tune") if k in done}
        if old != {k: s_req[k] for k in ("chains", "draws", "tune")}:
            raise ValueError(
                f"{out_csv} holds replicates run with {old or 'unrecorded settings'}, not "
                f"chains/draws/tune {s_req['chains']}/{s_req['draws']}/{s_req['tune']}; "
                "rerun with --fresh or another --out"
            )
    have = set() if done is None else {int(r) for r in done["rep"]}
    if all(r in have for r in range(n_reps)):
        return done

    def save(r: int, row: dict) -> None:
        if out_csv is not None:
            write_sorted_csv(out_csv, row, by="rep")

    task = SBCReplicate(
        model, seed, settings or {}, cores_per_task(s_req["chains"], workers, scheduler),
        verbose=verbose,
    )  # fmt: skip
    rows = run_replicates(
        task, n_reps, done=have, on_result=save, workers=workers, scheduler=scheduler,
        progress=verbose, label=f"{model} rep",
        describe=lambda r, row: (
            f"{row['seconds']:.1f} s, {row['divergences']} divergences, "
            f"max R-hat {row['max_rhat']:.3f}"
        ),
    )  # fmt: skip
    res = pd.DataFrame(list(rows.values()))
    out = res if done is None else pd.concat([done, res], ignore_index=True)
    return out.sort_values("rep", kind="stable").reset_index(drop=True)


RANK_META = [
    "rep", "seconds", "divergences", "max_rhat", "min_ess_bulk", "maxdepth_share",
    "chains", "draws", "tune",
]  # fmt: skip


def report(model: str, per_rep: pd.DataFrame, out: Path = RESULTS) -> pd.DataFrame:
    """Uniformity table and rank-histogram PNG for one model; returns the table."""
    ranks = per_rep.drop(columns=[c for c in RANK_META if c in per_rep])
    ranks = ranks[[c for c in ranks.columns if not c.startswith("Unnamed")]]
    table = uniformity_table(ranks, N_RANKS)
    table.to_csv(out / f"sbc_{model}_uniformity.csv", index=False)
    plot_rank_histograms(
        ranks,
        N_RANKS,
        out / f"sbc_{model}_ranks.png",
        title=f"SBC, {model} model: {len(per_rep)} replicates",
        p_values=dict(zip(table["parameter"], table["p_value"], strict=True)),
    )
    return table


def _markdown(results: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> str:
    lines = [
        "# Simulation-based calibration",
        "",
        f"Run {time.strftime('%Y-%m-%d')} on {platform.node()} ({platform.machine()}, "
        f"2 cores). Ranks of the truth among {N_RANKS} thinned "
        "posterior draws; chi-square test of 10 equal bins per parameter. With ~30 parameters "
        "per model, about 0.3 p-values below 0.01 are expected by chance.",
        "",
    ]
    for model, (per_rep, table) in results.items():
        s = {k: per_rep[k].iloc[0] if k in per_rep else v for k, v in SETTINGS[model].items()}
        n_fail = int((table["p_value"] < 0.01).sum())
        lines += [
            f"## {model}",
            "",
            f"{len(per_rep)} replicates; nutpie, {s['chains']} chains x {s['draws']} draws "
            f"({s['tune']} tuning). Replicates with divergences: "
            f"{int((per_rep['divergences'] > 0).sum())}; max R-hat above 1.01 in "
            f"{int((per_rep['max_rhat'] > 1.01).sum())}; median seconds per fit "
            f"{per_rep['seconds'].median():.1f} (total sampling "
            f"{per_rep['seconds'].sum() / 60:.1f} min). Parameters with p < 0.01: {n_fail}.",
            "",
            format_table(table.round(3), "markdown"),
            "",
            f"![rank histograms](sbc_{model}_ranks.png)",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["survival", "toxicity", "both"], default="both")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=61)
    ap.add_argument("--fresh", action="store_true", help="discard saved replicates")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--chains", type=int, help="chains per fit (default: SETTINGS)")
    ap.add_argument("--draws", type=int, help="draws per chain (default: SETTINGS)")
    ap.add_argument("--tune", type=int, help="tuning steps per chain (default: SETTINGS)")
    add_runner_arguments(ap)
    a = ap.parse_args()
    over = {k: getattr(a, k) for k in ("chains", "draws", "tune") if getattr(a, k) is not None}
    a.out.mkdir(parents=True, exist_ok=True)
    models = ["survival", "toxicity"] if a.model == "both" else [a.model]
    for m in models:
        csv = a.out / f"sbc_{m}_ranks.csv"
        if a.fresh and csv.exists():
            csv.unlink()
        per_rep = run_sbc(
            m, a.reps, seed=a.seed, out_csv=csv, settings=over, workers=a.workers,
            scheduler=a.scheduler,
        )  # fmt: skip
        print(report(m, per_rep, a.out).to_string(index=False), flush=True)
    # the summary covers every model with saved ranks (runs of one model at a time included)
    results = {}
    for m in SETTINGS:
        csv = a.out / f"sbc_{m}_ranks.csv"
        if csv.exists():
            per_rep = pd.read_csv(csv)
            results[m] = (per_rep, report(m, per_rep, a.out))
    (a.out / "sbc_summary.md").write_text(_markdown(results))


if __name__ == "__main__":
    main()
