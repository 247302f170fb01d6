"""Simulation coverage of the study (centre) level of the toxicity model (issue 15, deliver 4).

For K studies (K in 1, 3, 8) and R replicates each, one replicate:

1. draws a truth from the model's priors: every parameter, tau_tox and K latent study effects
   v_s = sqrt(1 + sigma_u^2) tau_tox z_s (:func:`netbayes.simulation.draw_toxicity_study_truth`);
2. draws K heterogeneous R-PRRT designs (:func:`netbayes.simulation.random_toxicity_designs`:
   20-150 patients, 7.4-22.2 GBq in the line after 22.2-37 GBq) and simulates each study's
   patients from the model's law (one propensity per patient shared by the three cell lines),
   reported as most salvage series print it: the number of patients with a grade >= III
   cytopenia on any cell line (one row per study,
   :func:`netbayes.simulation.simulate_toxicity_studies`);
3. simulates a new centre from the same truth with a fresh effect v_new: :data:`NEW_N`
   R-PRRT patients at 14.9 GBq after 29.8 GBq (Rotterdam's median activities), its grade >= III
   count, and its true any-line risk for a new patient;
4. fits the model to the K studies' rows alone (``ToxicityModel(studies=rows,
   exclude_studies=<the two papers>)``) and records whether the central 50% and 90% intervals
   cover (a) the new centre's count, under the new-centre predictive (per draw a new centre
   effect as ``Predictor(..., centre="new")`` draws it, the any-line risk of
   :func:`netbayes.formulas.toxicity.grade3_risk`, then Binomial(n, risk)); a count is discrete,
   so coverage uses the randomised PIT (P(Y < y) + U P(Y = y): uniform under a calibrated
   predictive, so its coverage is nominal, not conservative); (b) the new centre's true risk;
   (c) the typical-centre risk (study effect 0), tau_tox, beta_activity and delta_retreated.

Truths come from the priors, so an exact Bayesian computation covers at the nominal rate on
average over replicates; departures measure the model's approximations and the sampler.

The model is built and compiled once per K (:func:`netbayes.fitting.compile_swappable`) on a
template of K rows and re-used on each replicate's rows with ``with_data`` (the added studies'
counts, sizes and activities are data containers). Each replicate's random stream is seeded by
(seed, K, replicate); each finished replicate is appended to a JSONL file at once (with its
sampler settings) and skipped on a rerun with the same settings (resume). The replicates run in
this process or as tasks on Dask (``--workers N``, ``--scheduler tcp://host:8786``;
:mod:`netbayes.runner`), with the same records either way.

Usage::

    python benchmarks/toxicity_study_coverage.py [--replicates 100] [--draws 500] [--tune 500]
    python benchmarks/toxicity_study_coverage.py --quick   # smoke: 1 replicate per K

Writes ``benchmarks/results/toxicity_study_coverage_replicates.jsonl`` and
``toxicity_study_coverage.md`` (the ``--quick`` run writes to a temporary folder unless
``--out`` is given).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from netbayes.formulas import toxicity as ftox

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the survival driver's helpers
from study_coverage import LEVELS, _append, _interval_hits, _load

from netbayes.models.toxicity import TARGET_ACCEPT, ToxicityModel, ToxicityPriors
from netbayes.runner import add_runner_arguments
from netbayes.simulation import (
    ToxicityStudyDesign,
    draw_toxicity_study_truth,
    random_toxicity_designs,
    simulate_toxicity_grades,
    simulate_toxicity_studies,
)

RESULTS = Path(__file__).resolve().parent / "results"
K_VALUES = (1, 3, 8)
NEW_N = 51
"""Patients of the new centre."""
NEW_GBQ = (29.8, 14.9)
"""Activity before and in R-PRRT of the new centre's patients (GBq)."""
PACKAGED = ("rotterdam2019", "re188pilot")
SHARED = ("tau_tox", "beta_activity", "delta_retreated")
TARGETS = ("new_count", "new_risk", "typical_risk", *SHARED)
DATA = ("study_count", "study_n", "study_planned_gbq", "study_prior_gbq")


def new_design() -> ToxicityStudyDesign:
    """The new centre's design."""
    return ToxicityStudyDesign("new", NEW_N, planned_gbq=NEW_GBQ[1], prior_gbq=NEW_GBQ[0])


def any_line_risk(params: dict[str, Any], centre_shift: Any = 0.0) -> np.ndarray:
    """Any-line P(grade >= III) of a new patient of :func:`new_design` (per draw), at a centre
    whose latent effect is ``centre_shift`` (per draw or a scalar): the prediction formula with
    the cut points shifted down by it, as :class:`netbayes.predict.Predictor` applies a centre."""
    th = {k: np.atleast_1d(np.asarray(params[k], float)) for k in ftox.PARAMS}
    if th["c3"].ndim == 1:  # one parameter set (a truth): a draw axis of length 1
        th["c3"], th["log_gap"] = th["c3"][None], th["log_gap"][None]
    th["c3"] = th["c3"] - np.reshape(np.asarray(centre_shift, float), (-1, 1))
    _, any_line = ftox.grade3_risk(th, [NEW_GBQ[1]], [NEW_GBQ[0]], "R-PRRT")
    return any_line[:, 0]


def simulate_replicate(k: int, rep: int, seed: int) -> dict[str, Any]:
    """Truth, designs, the K studies' rows and the new centre of one replicate."""
    rng = np.random.default_rng([seed, k, rep])
    truth = draw_toxicity_study_truth(ToxicityPriors(), rng, k)
    designs = random_toxicity_designs(k, rng)
    rows = simulate_toxicity_studies(truth, designs, rng)
    v_new = math.sqrt(1.0 + truth["sigma_u"] ** 2) * truth["tau_tox"] * float(rng.normal())
    g = simulate_toxicity_grades(truth, new_design(), v_new, rng)
    return {
        "truth": truth,
        "designs": designs,
        "rows": rows,
        "v_new": v_new,
        "new_count": int((g.max(axis=1) >= 3).sum()),
        "new_risk": float(any_line_risk(truth, v_new)[0]),
        "typical_risk": float(any_line_risk(truth)[0]),
    }


def template_model(k: int) -> ToxicityModel:
    """The model on K template rows (the structure every replicate of this K shares)."""
    rows = simulate_replicate(k, 0, 0)["rows"]
    return ToxicityModel(studies=rows, exclude_studies=PACKAGED)


def score(sim: dict[str, Any], draws: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Coverage indicators of one fitted replicate (``draws``: posterior draws, draw axis
    first, of :data:`netbayes.formulas.toxicity.PARAMS` and ``tau_tox``)."""
    rng = np.random.default_rng([seed, 7])
    th = {k: np.asarray(draws[k], float) for k in (*ftox.PARAMS, "tau_tox")}
    s = len(th["tau_tox"])
    shift = th["tau_tox"] * np.sqrt(1.0 + th["sigma_u"] ** 2) * rng.standard_normal(s)
    risk_new = any_line_risk(th, shift)
    counts = rng.binomial(NEW_N, risk_new)
    y = sim["new_count"]
    pit = float((counts < y).mean() + rng.uniform() * (counts == y).mean())
    est = {
        "new_risk": risk_new,
        "typical_risk": any_line_risk(th),
        **{name: th[name] for name in SHARED},
    }
    truth = sim["truth"]
    tru = {"new_risk": sim["new_risk"], "typical_risk": sim["typical_risk"]}
    tru.update({name: float(truth[name]) for name in SHARED})
    out: dict[str, Any] = {
        "new_count": {
            "truth": float(y),
            "post_mean": float(counts.mean()),
            "post_sd": float(counts.std()),
            "rank": pit,
            "in50": bool(0.25 <= pit <= 0.75),
            "in90": bool(0.05 <= pit <= 0.95),
        }
    }
    for name, x in est.items():
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
        "tau_tox": float(sim["truth"]["tau_tox"]),
        "v_new": sim["v_new"],
        "new_count": sim["new_count"],
        "new_risk": sim["new_risk"],
        "n_patients": int(rows["n"].sum()),
        "events": int(rows["count"].sum()),
    }


def _posterior_draws(tree: Any) -> dict[str, np.ndarray]:
    post = tree["posterior"].dataset
    return {
        k: post[k].to_numpy().reshape(-1, *post[k].shape[2:]) for k in (*ftox.PARAMS, "tau_tox")
    }


class ToxicityStudyReplicate:
    """One (K, replicate) of the study as a task: the recipe, picklable for Dask's workers.

    The model of K studies is compiled once per K in each process
    (:func:`netbayes.runner.worker_cache`); the replicate's stream is
    ``default_rng([seed, K, replicate])`` and its sampler seed
    ``seed * 100_000 + K * 1000 + replicate``, so it is the same wherever it runs.
    """

    def __init__(self, *, seed, draws, tune, chains, cores, replicates):
        self.seed, self.draws, self.tune, self.chains = seed, draws, tune, chains
        self.cores, self.replicates = cores, replicates

    @staticmethod
    def _build(k: int):
        from netbayes.fitting import compile_swappable

        tm = template_model(k)
        t0 = time.perf_counter()
        compiled = compile_swappable(tm.build())
        print(f"K={k}: compiled in {time.perf_counter() - t0:.1f} s", flush=True)
        return tm, compiled

    def __call__(self, key: tuple[int, int]) -> dict[str, Any]:
        import nutpie

        from netbayes.fitting import diagnose
        from netbayes.runner import worker_cache

        k, rep = key
        tm, compiled = worker_cache(
            ("benchmarks/toxicity_study_coverage.py", k), lambda: self._build(k)
        )
        config = {"seed": self.seed, "draws": self.draws, "tune": self.tune,
                  "chains": self.chains}  # fmt: skip
        t1 = time.perf_counter()
        sim = simulate_replicate(k, rep, self.seed)
        rows = sim["rows"]
        c = compiled.with_data(
            study_count=rows["count"].to_numpy(float),
            study_n=rows["n"].to_numpy(float),
            study_planned_gbq=rows["planned_gbq"].to_numpy(float),
            study_prior_gbq=rows["prior_gbq"].to_numpy(float),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = nutpie.sample(
                c, draws=self.draws, tune=self.tune, chains=self.chains, cores=self.cores,
                seed=self.seed * 100_000 + k * 1000 + rep, progress_bar=False,
                target_accept=TARGET_ACCEPT,
            )  # fmt: skip
        diag = diagnose(tree, tm.parameter_names())
        rec = _record(k, rep, self.seed, sim)
        rec.update(config)
        rec["fit"] = score(sim, _posterior_draws(tree), seed=rep)
        rec["divergences"] = int(tree["sample_stats"].dataset["diverging"].to_numpy().sum())
        rec["max_rhat"] = float(diag["r_hat"].max())
        rec["min_ess_bulk"] = float(diag["ess_bulk"].min())
        rec["seconds"] = time.perf_counter() - t1
        return rec


def _describe(replicates: int):
    def describe(key: tuple[int, int], rec: dict[str, Any]) -> str:
        k, rep = key
        cov = " ".join(
            f"{n}:{int(rec['fit'][n]['in50'])}{int(rec['fit'][n]['in90'])}" for n in TARGETS
        )
        return (
            f"K={k} rep {rep + 1}/{replicates} ({rec['seconds']:.1f} s): tau_tox "
            f"{rec['tau_tox']:.3f}, new count {rec['new_count']}/{NEW_N}; "
            f"{rec['divergences']} div, R-hat {rec['max_rhat']:.3f}; in50/in90 {cov}"
        )

    return describe


def run(
    k_values: tuple[int, ...],
    replicates: int,
    out_jsonl: Path,
    *,
    seed: int = 15,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    workers: int | None = None,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the study; returns the latest record per (K, replicate) in
    ``out_jsonl`` for this seed, sorted by (K, replicate).

    ``workers`` / ``scheduler``: run the replicates as tasks on a local Dask cluster or a
    running scheduler (:func:`netbayes.runner.run_replicates`); the records are the same."""
    from netbayes.runner import cores_per_task, run_replicates

    config = {"seed": seed, "draws": draws, "tune": tune, "chains": chains}

    def same(r: dict[str, Any]) -> bool:  # a record of this configuration
        return all(r.get(key) == val for key, val in config.items())

    if scheduler is not None or (workers or 1) > 1:
        import cloudpickle
        import study_coverage

        cloudpickle.register_pickle_by_value(study_coverage)  # workers need not import it
    done = {(r["K"], r["rep"]) for r in _load(out_jsonl) if same(r)}
    task = ToxicityStudyReplicate(
        seed=seed, draws=draws, tune=tune, chains=chains,
        cores=cores_per_task(chains, workers, scheduler), replicates=replicates,
    )  # fmt: skip
    run_replicates(
        task, [(k, rep) for k in k_values for rep in range(replicates)], done=done,
        on_result=lambda key, rec: _append(out_jsonl, rec), workers=workers,
        scheduler=scheduler, progress=lambda line: print(line, flush=True),
        describe=_describe(replicates),
    )  # fmt: skip
    recs = [r for r in _load(out_jsonl) if same(r) and r["K"] in k_values]
    latest = {(r["K"], r["rep"]): r for r in recs if r["rep"] < replicates}
    return [latest[key] for key in sorted(latest)]


def summarise(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Coverage by K and target with binomial Monte Carlo SEs, and mean posterior SDs."""
    out = []
    for k in sorted({r["K"] for r in records}):
        rs = [r for r in records if r["K"] == k]
        for name in TARGETS:
            row: dict[str, Any] = {"K": k, "target": name, "replicates": len(rs)}
            for lvl in LEVELS:
                p = float(np.mean([r["fit"][name][f"in{lvl}"] for r in rs]))
                row[f"coverage{lvl}"] = p
                row[f"mc_se{lvl}"] = math.sqrt(max(p * (1 - p), 1e-12) / len(rs))
            row["mean_post_sd"] = float(np.mean([r["fit"][name]["post_sd"] for r in rs]))
            out.append(row)
    return pd.DataFrame(out)


def markdown(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    from netbayes.report import format_table

    md = [
        "# Toxicity model: the study level by simulation (issue 15, deliver 4)",
        "",
        "Truth from the priors (every parameter, tau_tox, v_s = sqrt(1 + sigma_u^2) tau_tox "
        "z_s); K heterogeneous R-PRRT studies (`random_toxicity_designs`: 20-150 patients, "
        "7.4-22.2 GBq after 22.2-37 GBq), each reporting its any-line grade >= III count; the "
        "model fitted to their rows alone; the new centre: "
        f"{NEW_N} patients at {NEW_GBQ[1]} GBq after {NEW_GBQ[0]} GBq, its count scored by the "
        "randomised PIT under the new-centre predictive, its true risk and the typical-centre "
        f"risk by central intervals. {args.draws} draws x {args.chains} chains (tune "
        f"{args.tune}); seed {args.seed}. MC SE: binomial, sqrt(p(1-p)/R).",
        "",
    ]
    if records:
        df = pd.DataFrame(records)
        summ = summarise(records)
        md += [
            f"Replicates with divergences: {(df['divergences'] > 0).sum()} of {len(df)}; max "
            f"R-hat: {df['max_rhat'].max():.3f}; median seconds per replicate: "
            f"{df['seconds'].median():.1f}.",
            "",
            "## Coverage",
            "",
            format_table(summ, digits=3),
            "",
            "## Posterior SD by K (tightening as K grows)",
            "",
            format_table(
                summ[summ["target"].isin(["typical_risk", "tau_tox", "beta_activity"])]
                .pivot(index="K", columns="target", values="mean_post_sd")
                .reset_index(),
                digits=3,
            ),
            "",
        ]
    return "\n".join(md)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--k", type=int, nargs="+", default=list(K_VALUES))
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="smoke: 1 replicate per K, short chains")
    ap.add_argument("--out", type=Path, default=None, help="folder of the JSONL and .md files")
    add_runner_arguments(ap)
    a = ap.parse_args(argv)
    if a.quick:
        a.replicates, a.draws, a.tune = 1, 150, 150
    out = a.out or (Path(tempfile.mkdtemp(prefix="tox_study_cov_")) if a.quick else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "toxicity_study_coverage_replicates.jsonl"
    records = run(
        tuple(a.k), a.replicates, jsonl, seed=a.seed, draws=a.draws, tune=a.tune,
        chains=a.chains, workers=a.workers, scheduler=a.scheduler,
    )  # fmt: skip
    md = markdown(records, a)
    (out / "toxicity_study_coverage.md").write_text(md)
    print(md)
    print(f"wrote {jsonl} and {out / 'toxicity_study_coverage.md'}")


if __name__ == "__main__":
    main()
