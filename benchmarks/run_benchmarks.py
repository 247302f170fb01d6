"""All speed benchmarks in one command: fits, predictions and scaling with user data (issue 6).

Usage, from the repository root (the machine should be otherwise idle)::

    python benchmarks/run_benchmarks.py [--quick] [--out benchmarks/results]
                                        [--sections predict,fits,scaling]

Writes ``<out>/benchmarks.json`` (every number, with its unit in its name) and
``<out>/benchmarks.md`` (a short summary with tables). ``--quick`` runs tiny settings (a smoke
test of the script, numbers meaningless) and writes ``benchmarks_quick.json`` / ``.md`` instead,
so it never overwrites the real results. Progress goes to stderr with UTC time and seconds since
the start; the total is printed at the end and stored as ``total_s``. The JSON is rewritten
after each section, so an interrupted run keeps what it finished. The exit status is 1 if a
stage failed: its entry then holds ``error`` and, under ``partial``, what it measured before
(a scaling fit still sampling after ``settings.scaling.timeout_s`` is stopped this way, keeping
its compile time, gradient time and profile, which are measured before sampling starts).

Each measurement runs in a fresh Python process (a *stage*), so that its peak memory
(``peak_rss_mb``: ``resource.getrusage`` of that process) and its compile work are its own.
Sections, in the order they run:

``predict``
    Predictions from the shipped posteriors (4000 draws each of survival-PFS and toxicity).
``fits``
    The survival model (PFS) and the toxicity model on the calibration data, each with nutpie
    (the package default) and with PyMC's own NUTS (``pymc.sample(nuts_sampler="pymc")``),
    same chains, draws, tuning, seed and target acceptance (each model's ``TARGET_ACCEPT``),
    through the models' own ``fit`` (:func:`netbayes.fitting.sample`, diagnostics by
    :func:`netbayes.fitting.diagnose`). Since PyMC 6, ``pymc.sample()`` without
    ``nuts_sampler`` runs nutpie whenever it is installed, and ``fitting.sample(...,
    sampler="pymc")`` does not pass it; the PyMC stage therefore makes ``nuts_sampler="pymc"``
    the default of ``pymc.sample`` in its own process, and every fit checks from its sample
    stats which NUTS actually ran (``nuts_implementation``).
``scaling``
    The survival model (nutpie) with 1k, 10k and 100k simulated R-PRRT patient rows
    (:func:`netbayes.simulation.simulate_survival_patients`, truth
    ``survival_coverage.realistic_truth``) added to the published data; for the largest size a
    profile of the patient term of the gradient.

JSON fields
-----------
Top level: ``command``, ``quick``, ``settings`` (every setting used), ``machine``
(``cpu_count``, ``platform``, ``processor``, ``python``, versions of ``numpy``, ``scipy``,
``pandas``, ``xarray``, ``arviz``, ``pymc``, ``pytensor``, ``nutpie``, ``numba``, ``netbayes``,
``git_commit``, ``git_dirty``, ``date_utc``, ``load_average_start`` / ``load_average_end``
(1, 5, 15 min)), ``predict``, ``fits``, ``scaling``, ``errors`` (failed stages),
``total_s``.

A fit (``fits.<model>.<sampler>``, and each ``scaling.runs[i]``):

* ``sampler`` (asked for), ``nuts_implementation`` (what ran, from the sample stats),
  ``pytensor_linker`` (PyTensor's default backend, which PyMC's NUTS compiles with),
  ``chains``, ``draws``, ``tune`` (per chain), ``cores`` (chains run in parallel),
  ``target_accept``, ``seed``;
* ``import_s``: importing PyMC and the model module in the fresh process (not in ``wall_s``);
* ``build_s``: building the PyMC model;
* ``compile_s``: nutpie: compiling the model to numba (``FitResult.seconds["compile"]``);
  PyMC: everything in ``pymc.sample`` before the first draw (compiling logp, gradient and the
  trace functions with PyTensor's default backend, starting the chain processes), i.e.
  ``FitResult.seconds["sample"]`` minus PyMC's own ``sampling_time``;
* ``sampling_s``: warm-up plus draws (nutpie: ``FitResult.seconds["sample"]``; PyMC: the
  ``sampling_time`` it records on the posterior);
* ``wall_s``: build + compile + sampling + diagnostics, what ``model.fit`` costs a user;
* ``min_ess_bulk`` (and ``min_ess_bulk_parameter``), ``min_ess_tail``, ``max_r_hat`` (and
  ``max_r_hat_parameter``) over the model's ``parameter_names()`` (rank-normalised split R-hat,
  bulk and tail ESS, :func:`netbayes.fitting.diagnose`); ``divergences`` (post-warm-up);
  ``converged`` and ``problems`` (the package's targets: no divergence, R-hat <= 1.01, bulk ESS
  >= 400);
* ``ess_per_sampling_s`` = ``min_ess_bulk / sampling_s``; ``ess_per_wall_s`` =
  ``min_ess_bulk / wall_s`` (effective draws per second, the slowest-mixing parameter);
* ``leapfrog_steps_post_warmup`` (sum over chains and draws of the sampler's ``n_steps``),
  ``leapfrog_steps_warmup`` (nutpie only; null for PyMC, which discards its
  warm-up stats), ``mean_tree_depth``, ``mean_step_size``;
* ``ms_per_leapfrog_step``: sampling time per gradient evaluation of one chain. nutpie:
  ``sampling_s * cores / all steps``; PyMC: the summed ``perf_counter_diff`` of its draws over
  their ``n_steps`` (measured inside each chain);
* ``grad_eval_ms`` (nutpie only): median time of one logp-and-gradient evaluation of the
  compiled model (the numba C callback nutpie calls), single thread, at the initial point;
* ``peak_rss_mb`` (the stage process) and ``peak_rss_children_mb`` (its largest child process:
  PyMC's chain processes, or the C compiler PyTensor starts for some helper functions);
* ``load_average_1min_start`` / ``_end`` (of the machine around the stage),
  ``process_wall_s`` (the whole stage process, imports included).

``fits.ratio_nutpie_over_pymc.<model>``: ``ess_per_sampling_s``, ``ess_per_wall_s`` (> 1:
nutpie gives more effective draws per second), ``wall_s``, ``sampling_s`` (< 1: nutpie is
faster) and ``ms_per_leapfrog_step``.

``scaling``: ``chains``; ``runs`` (one fit entry per size, with its own ``draws`` and
``tune``, plus ``n_rows`` and ``n_events``: user rows added and their observed progressions);
``grad_eval_linear_fit`` (``intercept_ms`` and ``per_1k_rows_ms`` of
``grad_eval_ms`` against rows, least squares over the sizes); ``profile`` (largest size): the
patient term alone, as the model wrote it before the gather (a censored Weibull
log-likelihood mixed over the six tumour types with one-hot log-weights,
``patient_term_mixture_ms``) and with each row's own type gathered
(``patient_term_gathered_ms``), their ``speedup``, ``max_abs_diff`` of the two
log-likelihoods and gradients, and ``share_of_model_grad`` (mixture term / whole-model
gradient); both compiled with PyTensor's numba backend like nutpie.

``predict``:

* ``one_patient`` (``predict_latency.PATIENT``, R-PRRT midgut): ``import_netbayes_predict_s``,
  ``load_posteriors_s`` (``Predictor.load()``), ``n_draws``; ``api_s`` (median, min, max of
  ``repeats`` calls of ``Predictor.patient`` after two warm-up calls: summary table, 61-point
  survival curve, P(PFS > 12, 24 months), P(grade >= III) per cell line and any line);
  ``numpy_s`` (the same quantities and summaries written directly with NumPy/SciPy ufuncs on
  the draw arrays); ``api_over_numpy``; ``max_abs_diff`` between the two summary tables (the
  check that they compute the same thing); ``peak_rss_mb``.
* ``batch``: ``n_patients`` (100,000), ``patients`` (how they were made: R-PRRT, the six fine
  tumour types in turn, prior PFS, prior and planned activity uniform inside the calibrated
  ranges, so no extrapolation warning), ``quantities`` (what is computed per patient: median
  PFS, P(PFS > 12), P(PFS > 24), P(grade >= III) per cell line and any line, each as posterior
  median, mean and 95% ETI over all 4000 draws);

  - ``api``: ``Predictor.summaries(df)`` on all ``n_patients`` (vectorised over patients x
    draws in chunks, summaries only): ``measured_s``, ``per_patient_ms``, ``rss_before_mb``
    (the stage process after loading the posteriors and building ``df``), ``peak_rss_mb`` and
    ``rss_increase_mb`` (their difference: the memory the call needed), ``chunk_size``,
    ``warnings``, ``output_shape``; ``check_n_patients`` (the first patients, also computed
    with the bare formulas of ``numpy``), ``max_abs_diff_closed_forms`` (median PFS, P(PFS >
    t), the per-cell-line risks: same formulas, rounding only) and ``max_abs_diff_any_line``
    (the any-line risk, which the API interpolates from a per-draw table with a proven error
    bound, ``any_line_error_bound``);
  - ``numpy``: the same quantities in chunks of ``chunk_patients``, keeping only the
    summaries: ``closed_forms_s`` for all ``n_patients`` (everything but the any-line risk;
    ``closed_forms_draws_s`` evaluating the formulas on the draws, ``closed_forms_summaries_s``
    the quantiles (``numpy.quantile``'s, from one ``numpy.partition``) and means);
    ``any_line_s`` for the first ``any_line_n_measured`` patients (its quadrature costs
    3 cell lines x 96 nodes of normal CDFs per draw and patient, ~1e11 for 100k patients) and
    ``any_line_extrapolated_s`` (``any_line_measured_s`` is those patients with all quantities,
    ``any_line_s`` the same minus their share of ``closed_forms_s``); ``extrapolated_s``
    (all quantities, all patients),
    ``per_patient_ms``, ``peak_rss_mb``;
  - ``api_over_numpy_per_patient`` (API measured over bare NumPy's extrapolated total).

* ``cold_start``: fresh processes, each ``median_s``, ``min_s``, ``max_s``, ``runs_s`` and
  ``cpu_median_s`` (user + system CPU of the child; on a busy machine the wall time also
  counts waiting for a core): ``python`` (``python -c pass``), ``import_netbayes_predict``,
  ``cli`` (``netbayes predict ...``, :mod:`predict_latency`'s command),
  ``import_pymc`` (``python -c "import pymc"``), ``cli_over_import_pymc``,
  ``cli_imported_heavy_modules`` (must be empty).

Notes
-----
On 2 cores the 4 chains of a fit share 2 cores, so ``sampling_s`` is about twice that of one
chain; both samplers get the same cores. Compiled code may be cached on disk between runs
(PyTensor's compile directory), so a first run on a fresh machine can compile longer. The
quick settings (``--quick``) exercise every code path in a few minutes; their numbers mean
nothing (with 30-40 tuning draws the step size is far from adapted).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SEED = 20261121

FULL: dict[str, dict[str, Any]] = {
    "fits": {"chains": 4, "draws": 1000, "tune": 1000},
    "predict": {
        "repeats": 20,
        "numpy_batch": 100_000,
        "api_check": 100,
        "any_line_batch": 500,
        "chunk_patients": 500,
        "cold_runs": 7,
        "pymc_runs": 3,
    },
    # (rows, draws, tune) per run. At 100k rows one gradient costs ~25x that of the published
    # data alone (~16 ms against 0.6 ms) and NUTS takes more steps per iteration, so that run
    # has fewer iterations. A run still sampling after timeout_s is stopped and reported (with
    # its compile time, gradient time and profile).
    "scaling": {
        "chains": 2,
        "runs": [[1000, 500, 500], [10_000, 500, 500], [100_000, 150, 150]],
        "timeout_s": 720,
    },
}
QUICK: dict[str, dict[str, Any]] = {
    "fits": {"chains": 2, "draws": 40, "tune": 40},
    "predict": {
        "repeats": 3,
        "numpy_batch": 2000,
        "api_check": 10,
        "any_line_batch": 20,
        "chunk_patients": 500,
        "cold_runs": 2,
        "pymc_runs": 1,
    },
    "scaling": {"chains": 2, "runs": [[100, 30, 30], [1000, 30, 30]], "timeout_s": 600},
}
SECTIONS = ("predict", "fits", "scaling")
RATIO_KEYS = (
    "ess_per_sampling_s",
    "ess_per_wall_s",
    "wall_s",
    "sampling_s",
    "ms_per_leapfrog_step",
)
STAGE_TIMEOUT_S = 1800

_T0_ENV = "NETBAYES_BENCH_T0"


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    """Progress line on stderr: UTC time and seconds since the run started."""
    t0 = float(os.environ.get(_T0_ENV, time.time()))
    now = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"[{now} +{time.time() - t0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def _load1() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024.0, 1)  # Linux: KiB


def _r(x: float | None, d: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), d)


def _stats(xs: list[float]) -> dict[str, Any]:
    return {
        "median_s": _r(statistics.median(xs), 5),
        "min_s": _r(min(xs), 5),
        "max_s": _r(max(xs), 5),
        "runs_s": [_r(x, 5) for x in xs],
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else _r(a / b, 3)


def machine_facts() -> dict[str, Any]:
    """CPU, versions, git state and date of this run."""
    from importlib.metadata import PackageNotFoundError, version

    vers = {}
    for pkg in ("numpy", "scipy", "pandas", "xarray", "arviz", "pymc", "pytensor", "nutpie",
                "numba", "netbayes"):  # fmt: skip
        try:
            vers[pkg] = version(pkg)
        except PackageNotFoundError:
            vers[pkg] = None

    def git(*a: str) -> str | None:
        r = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        **vers,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_start": None if load is None else [round(x, 2) for x in load],
    }


# ----------------------------------------------------------------------------------------------
# fits (stage processes)
# ----------------------------------------------------------------------------------------------
def _capture_nutpie_compile(p: dict[str, Any]) -> dict[str, Any]:
    """Keep the compiled model that :func:`netbayes.fitting.sample` makes, and time its gradient.

    ``sample`` looks ``nutpie.compile_pymc_model`` up when it is called, so wrapping it here
    changes nothing in the fit. Right after compiling (before sampling starts) the wrapper
    times one gradient evaluation, logs a rough sampling-time estimate (50 leapfrog steps per
    iteration) and saves both as a partial result, which survives if the stage is killed.
    """
    import nutpie

    box: dict[str, Any] = {}
    orig = nutpie.compile_pymc_model

    def compile_and_keep(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        box["compiled"] = orig(*args, **kwargs)
        box["grad_eval_ms"] = ms = grad_eval_ms(box["compiled"])
        _partial(compile_s=_r(time.perf_counter() - t0, 3), grad_eval_ms=ms)
        if ms is not None:
            cores = min(p["chains"], os.cpu_count() or 1)
            est = ms / 1000 * 50 * (p["draws"] + p["tune"]) * p["chains"] / cores
            log(f"compiled; one gradient {ms:.3f} ms: sampling roughly {est:.0f} s")
        return box["compiled"]

    nutpie.compile_pymc_model = compile_and_keep
    return box


_PARTIAL: dict[str, Any] = {}
_PARTIAL_PATH: list[Path] = []  # the stage's --stage-out, where partial results go


def _partial(**kv: Any) -> None:
    """Record intermediate results of a stage (kept if it fails or is killed)."""
    _PARTIAL.update(kv)
    if _PARTIAL_PATH:
        _PARTIAL_PATH[0].write_text(json.dumps({"partial": True, **_PARTIAL}))


def grad_eval_ms(compiled: Any, n_evals: int = 30) -> float | None:
    """Median ms of one logp + gradient evaluation of a nutpie-compiled PyMC model.

    Calls the numba C callback nutpie's sampler calls at every leapfrog step, single thread.
    (nutpie's own ``benchmark_logp`` fails in nutpie 0.16.)
    """
    x = np.ascontiguousarray(compiled.initial_point_func(1), dtype=np.float64)
    out, lp = np.zeros(compiled.n_dim), np.zeros(())
    ptr = ctypes.POINTER(ctypes.c_double)
    fn = compiled.compiled_logp_func.ctypes
    args = (
        compiled.n_dim,
        x.ctypes.data_as(ptr),
        out.ctypes.data_as(ptr),
        lp.ctypes.data_as(ptr),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    if fn(*args) != 0:
        return None
    times = []
    for _ in range(n_evals):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return _r(1000 * statistics.median(times), 4)


def fit_metrics(
    fit: Any, *, build_s: float, wall_s: float, grad_ms: float | None = None
) -> dict[str, Any]:
    """The fields of one fit entry (see the module docstring) from a ``FitResult``."""
    tree = fit.posterior
    chains, draws = fit.settings["chains"], fit.settings["draws"]
    cores = min(chains, os.cpu_count() or 1)
    if fit.sampler == "pymc":
        sampling_s = float(tree["posterior"].attrs["sampling_time"])
        compile_s = fit.seconds["sample"] - sampling_s
    else:
        sampling_s, compile_s = fit.seconds["sample"], fit.seconds["compile"]
    stats = tree["sample_stats"].dataset
    steps_name = "n_steps" if "n_steps" in stats else "tree_size"  # PyMC's raw stat name
    post_steps = float(stats[steps_name].sum())
    warm_steps = None
    if "warmup_sample_stats" in tree.children:
        warm = tree["warmup_sample_stats"].dataset
        if steps_name in warm:
            warm_steps = float(warm[steps_name].sum())
    if warm_steps is not None:
        ms_step = 1000 * sampling_s * cores / (post_steps + warm_steps)
    elif "perf_counter_diff" in stats:
        ms_step = 1000 * float(stats["perf_counter_diff"].sum()) / post_steps
    else:
        ms_step = None
    d = fit.diagnostics
    ess = float(d["ess_bulk"].min())
    depth = "depth" if "depth" in stats else "tree_depth"
    return {
        "sampler": fit.sampler,
        "chains": chains,
        "draws": draws,
        "tune": fit.settings["tune"],
        "cores": cores,
        "target_accept": fit.settings["target_accept"],
        "seed": fit.settings["seed"],
        "build_s": _r(build_s, 3),
        "compile_s": _r(compile_s, 3),
        "sampling_s": _r(sampling_s, 3),
        "wall_s": _r(wall_s, 3),
        "min_ess_bulk": _r(ess, 1),
        "min_ess_bulk_parameter": str(d["ess_bulk"].idxmin()),
        "min_ess_tail": _r(float(d["ess_tail"].min()), 1),
        "max_r_hat": _r(float(d["r_hat"].max()), 4),
        "max_r_hat_parameter": str(d["r_hat"].idxmax()),
        "divergences": int(fit.n_divergences),
        "converged": fit.converged,
        "problems": fit.problems,
        "ess_per_sampling_s": _r(ess / sampling_s, 2),
        "ess_per_wall_s": _r(ess / wall_s, 2),
        "leapfrog_steps_post_warmup": int(post_steps),
        "leapfrog_steps_warmup": None if warm_steps is None else int(warm_steps),
        "mean_tree_depth": _r(float(stats[depth].mean()), 3) if depth in stats else None,
        "mean_step_size": _r(float(stats["step_size"].mean()), 5),
        "ms_per_leapfrog_step": _r(ms_step, 4),
        "grad_eval_ms": grad_ms,
    }


def _use_pymc_own_nuts() -> None:
    """Make ``pymc.sample`` default to PyMC's own NUTS (``nuts_sampler="pymc"``).

    Since PyMC 6, ``pymc.sample()`` without ``nuts_sampler`` runs *nutpie* whenever it is
    installed and the default PyTensor linker is numba, so ``netbayes.fitting.sample(...,
    sampler="pymc")``, which does not pass ``nuts_sampler``, samples with nutpie too. This
    stage process sets the default back to PyMC's own NUTS; an explicit ``nuts_sampler`` wins.
    """
    import pymc

    orig = pymc.sample

    def sample_own_nuts(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("nuts_sampler", "pymc")
        return orig(*args, **kwargs)

    pymc.sample = sample_own_nuts


def _implementation(tree: Any) -> str:
    """Which NUTS produced ``tree``, from its sample stats (nutpie has no per-draw timings)."""
    stats = tree["sample_stats"].dataset
    return "pymc" if "perf_counter_diff" in stats else "nutpie"


def _linker() -> str:
    from pytensor.compile.mode import get_mode

    return type(get_mode(None).linker).__name__


def _timed_fit(model: Any, p: dict[str, Any]) -> dict[str, Any]:
    """Build and fit ``model`` with the stage settings; return :func:`fit_metrics`."""
    from netbayes.fitting import ConvergenceWarning

    box = _capture_nutpie_compile(p) if p["sampler"] == "nutpie" else {}
    if p["sampler"] == "pymc":
        _use_pymc_own_nuts()
    t0 = time.perf_counter()
    model.build()
    build_s = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in ``problems``
        fit = model.fit(
            draws=p["draws"],
            tune=p["tune"],
            chains=p["chains"],
            seed=p["seed"],
            sampler=p["sampler"],
            progress=False,
        )
    wall_s = time.perf_counter() - t0
    res = fit_metrics(fit, build_s=build_s, wall_s=wall_s, grad_ms=box.get("grad_eval_ms"))
    res["nuts_implementation"] = _implementation(fit.posterior)
    res["pytensor_linker"] = _linker()
    if res["nuts_implementation"] != p["sampler"]:
        raise RuntimeError(f"asked for {p['sampler']}, sampled with {res['nuts_implementation']}")
    return res


def stage_fit(p: dict[str, Any]) -> dict[str, Any]:
    """One model, one sampler, on the calibration data."""
    t0 = time.perf_counter()
    import pymc  # noqa: F401  (imported here so that ``import_s`` counts it)

    if p["model"] == "survival":
        from netbayes.models.survival import SurvivalModel

        model: Any = SurvivalModel("pfs")
    else:
        from netbayes.models.toxicity import ToxicityModel

        model = ToxicityModel()
    import_s = time.perf_counter() - t0
    log(f"fit {p['model']} with {p['sampler']}: {p['chains']} chains x {p['draws']} draws")
    res = {"model": p["model"], "import_s": _r(import_s, 3), **_timed_fit(model, p)}
    log(
        f"fit {p['model']} {p['sampler']}: wall {res['wall_s']:.1f} s, sampling "
        f"{res['sampling_s']:.1f} s, min ESS {res['min_ess_bulk']:.0f}, "
        f"{res['divergences']} divergences, max R-hat {res['max_r_hat']:.3f}"
    )
    return res


# ----------------------------------------------------------------------------------------------
# scaling with user rows (stage processes)
# ----------------------------------------------------------------------------------------------
def _user_rows(n: int, seed: int) -> tuple[Any, dict[str, np.ndarray]]:
    """``n`` simulated R-PRRT patients from the realistic truth of the coverage benchmark."""
    sys.path.insert(0, str(BENCH))
    from survival_coverage import realistic_truth

    from netbayes.simulation import simulate_survival_patients

    truth = realistic_truth()
    return simulate_survival_patients(truth, n, np.random.default_rng(seed)), truth


def profile_patient_term(pts: Any, truth: dict[str, np.ndarray], n_evals: int) -> dict[str, Any]:
    """Time the patient term of the gradient mixed over all types (the old form) and gathered.

    The model (``SurvivalModel._add_individual``) evaluates every row against all six tumour
    types and mixes them with log-weights (``-inf`` for the five types a fine-typed row is
    not), so each row costs six censored-Weibull evaluations and a logsumexp, with their
    gradients. Gathering each row's own type computes the same log-likelihood from one.
    """
    import pytensor
    import pytensor.tensor as pt

    from netbayes import vocab
    from netbayes.formulas.survival import GBQ_REF, GBQ_UNIT, X_REF
    from netbayes.likelihoods import survival as L

    j = np.array([vocab.TUMOUR_TYPES.index(t) for t in pts["tumour_type"]])
    t = pts["time_months"].to_numpy(float)
    ev = pts["event"].to_numpy(float)
    logx = np.log(pts["prior_pfs_months"].to_numpy(float) / X_REF)
    gbq = (pts["cumulative_gbq"].to_numpy(float) - GBQ_REF) / GBQ_UNIT
    with np.errstate(divide="ignore"):
        logw = np.log(np.eye(len(vocab.TUMOUR_TYPES))[j])
    k2, type2 = pt.dscalar("k2"), pt.dvector("type2")
    bx, bg = pt.dscalar("beta_x"), pt.dscalar("beta_gbq")
    inputs = [k2, type2, bx, bg]
    shift = bx * logx + bg * gbq
    lp6 = type2[None, :] + shift[:, None]
    ll6 = L.censored_weibull_loglik(t[:, None], ev[:, None], k2, pt.exp(lp6))
    mixture = pt.sum(pt.logsumexp(ll6 + logw, axis=1))
    gathered = pt.sum(L.censored_weibull_loglik(t, ev, k2, pt.exp(type2[j] + shift)))
    vals = [
        np.asarray(truth["k2"], float),
        np.asarray(truth["alpha2"] + truth["sigma2"] * truth["z2"], float),
        np.asarray(truth["beta_x"], float),
        np.asarray(truth["beta_gbq"], float),
    ]
    out: dict[str, Any] = {"n_rows": len(pts), "n_evals": n_evals}
    results = {}
    for name, term in (("mixture", mixture), ("gathered", gathered)):
        f = pytensor.function(inputs, [term, *pt.grad(term, inputs)], mode="NUMBA")
        results[name] = f(*vals)
        times = []
        for _ in range(n_evals):
            t0 = time.perf_counter()
            f(*vals)
            times.append(time.perf_counter() - t0)
        out[f"patient_term_{name}_ms"] = _r(1000 * statistics.median(times), 4)
    diff = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(results["mixture"], results["gathered"], strict=True)
    )
    out["max_abs_diff"] = _r(diff, 10)
    out["speedup"] = _ratio(out["patient_term_mixture_ms"], out["patient_term_gathered_ms"])
    return out


def stage_scale(p: dict[str, Any]) -> dict[str, Any]:
    """The survival model (nutpie) with ``n_rows`` simulated user rows added."""
    t0 = time.perf_counter()
    import pymc  # noqa: F401

    from netbayes.models.survival import SurvivalModel

    import_s = time.perf_counter() - t0
    pts, truth = _user_rows(p["n_rows"], p["seed"] + p["n_rows"])
    prof = None
    if p.get("profile"):  # first, so that it is kept even if the fit is cut off
        log(f"scaling: profiling the patient term at {p['n_rows']} rows")
        prof = profile_patient_term(pts, truth, n_evals=p.get("profile_evals", 30))
        _partial(profile=prof)
    log(f"scaling: {p['n_rows']} user rows, {p['chains']} chains x {p['draws']} draws")
    model = SurvivalModel("pfs", patients=pts)
    res = {
        "n_rows": p["n_rows"],
        "n_events": int(pts["event"].sum()),
        "import_s": _r(import_s, 3),
        **_timed_fit(model, p),
    }
    log(
        f"scaling {p['n_rows']} rows: wall {res['wall_s']:.1f} s (compile "
        f"{res['compile_s']:.1f}, sampling {res['sampling_s']:.1f}), gradient "
        f"{res['grad_eval_ms']} ms, {res['ms_per_leapfrog_step']} ms per step"
    )
    if prof is not None:
        prof["share_of_model_grad"] = _ratio(prof["patient_term_mixture_ms"], res["grad_eval_ms"])
        res["profile"] = prof
    return res


# ----------------------------------------------------------------------------------------------
# predictions (stage processes)
# ----------------------------------------------------------------------------------------------
def _summaries(a: np.ndarray) -> np.ndarray:
    """Median, mean, 2.5% and 97.5% quantiles over axis 0 of ``a`` (S, P, Q) -> (P, Q, 4).

    The quantiles of ``numpy.quantile`` (linear interpolation, as ``Interval.describe``), from
    one ``numpy.partition`` of the draws: about 3 times faster for large batches.
    """
    b = np.moveaxis(a, 0, -1).copy()  # (P, Q, S), draws contiguous
    n = b.shape[-1]
    pos = np.array([0.5, 0.025, 0.975]) * (n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    b.partition(np.unique(np.concatenate([lo, hi])), axis=-1)
    q = b[..., lo] * (1.0 - (pos - lo)) + b[..., hi] * (pos - lo)  # (P, Q, 3)
    return np.stack([q[..., 0], a.mean(axis=0), q[..., 1], q[..., 2]], axis=-1)


def bare_numpy_rprrt(
    surv: dict[str, np.ndarray],
    tox: dict[str, np.ndarray],
    *,
    type_idx: np.ndarray,
    prior_pfs: np.ndarray,
    prior_gbq: np.ndarray,
    planned_gbq: np.ndarray,
    times: np.ndarray,
    t_probs: np.ndarray,
    any_line: bool = True,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """The R-PRRT prediction formulas written directly on the draw arrays (no netbayes API).

    Returns the summaries, shape (patients, quantities, 4) with the last axis (posterior median,
    mean, 2.5% and 97.5% quantiles); quantities in the order: median PFS, P(PFS > t) for
    ``t_probs``, S(t) for ``times``, P(grade >= III) for the three cell lines and, if
    ``any_line``, any line. ``timings``, if given, accumulates the seconds spent on the draws
    (``draws_s``) and on their summaries (``summaries_s``).
    """
    from scipy.special import ndtr

    from netbayes.formulas import toxicity as T
    from netbayes.formulas.survival import GBQ_REF, GBQ_UNIT, X_REF

    t0 = time.perf_counter()
    # survival: Weibull(k2, lam), log lam = alpha2 + sigma2 z2_j + beta_x log(x/36) + ...
    cum = prior_gbq + planned_gbq
    loglam = (
        surv["alpha2"][:, None]
        + surv["sigma2"][:, None] * surv["z2"][:, type_idx]
        + surv["beta_x"][:, None] * np.log(prior_pfs / X_REF)
        + surv["beta_gbq"][:, None] * ((cum - GBQ_REF) / GBQ_UNIT)
    )  # (S, P)
    lam, k = np.exp(loglam), surv["k2"][:, None]
    qs = [lam * np.log(2.0) ** (1.0 / k)]
    qs += [np.exp(-((t / lam) ** k)) for t in t_probs]
    qs += [np.exp(-((t / lam) ** k)) for t in times]
    # toxicity: probit, propensity integrated out
    eta = (
        tox["beta_activity"][:, None] * (planned_gbq - T.A_REF_GBQ) / T.DOSE_SCALE_GBQ
        + tox["beta_prior"][:, None] * prior_gbq / T.DOSE_SCALE_GBQ
        + tox["delta_retreated"][:, None]
    )  # (S, P)
    z = tox["c3"][:, None, :] - eta[:, :, None]  # (S, P, 3)
    sig = tox["sigma_u"]
    per_line = ndtr(-z / np.sqrt(1.0 + sig**2)[:, None, None])
    qs += [per_line[:, :, i] for i in range(per_line.shape[2])]
    if any_line:
        nodes, w = T.normal_quadrature(T.DEFAULT_N_NODES, T.DEFAULT_RULE)
        u = sig[:, None] * nodes  # (S, K)
        f = ndtr(z[:, :, :, None] - u[:, None, None, :])  # (S, P, 3, K)
        qs.append(1.0 - np.prod(f, axis=2) @ w)
    a = np.stack(qs, axis=-1)  # (S, P, Q)
    t1 = time.perf_counter()
    out = _summaries(a)
    if timings is not None:
        timings["draws_s"] = timings.get("draws_s", 0.0) + t1 - t0
        timings["summaries_s"] = timings.get("summaries_s", 0.0) + time.perf_counter() - t1
    return out


def _batch_patients(n: int, seed: int) -> dict[str, np.ndarray]:
    """R-PRRT patients inside the calibrated ranges (no extrapolation), fine types in turn."""
    from netbayes import vocab
    from netbayes.predict import calibrated_ranges

    rng = np.random.default_rng(seed)
    cr = calibrated_ranges()
    lo_pl, hi_pl = cr["planned_gbq"]["R-PRRT"]
    lo_cum, hi_cum = cr["cumulative_gbq"]
    planned = rng.uniform(max(lo_pl, 5.0), min(hi_pl, 16.0), n)
    prior = rng.uniform(max(lo_cum - planned.min(), 22.0), min(30.7, hi_cum - hi_pl), n)
    return {
        "type_idx": np.arange(n) % len(vocab.TUMOUR_TYPES),
        "tumour_type": np.array(vocab.TUMOUR_TYPES)[np.arange(n) % len(vocab.TUMOUR_TYPES)],
        "prior_pfs": rng.uniform(cr["prior_pfs_min"]["R-PRRT"], 60.0, n),
        "prior_gbq": prior,
        "planned_gbq": planned,
    }


def stage_predict_one(p: dict[str, Any]) -> dict[str, Any]:
    """One patient in-process: the API and the bare formulas."""
    sys.path.insert(0, str(BENCH))
    from predict_latency import PATIENT

    t0 = time.perf_counter()
    from netbayes import vocab
    from netbayes.predict import DEFAULT_T_PROBS, DEFAULT_TIMES, Predictor

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = Predictor.load()
    load_s = time.perf_counter() - t0
    assert pred.toxicity is not None and PATIENT["line"] == "R-PRRT"
    log(f"predict: one patient, {p['repeats']} repeats")
    api_t = []
    for i in range(p["repeats"] + 2):
        t0 = time.perf_counter()
        res = pred.patient(**PATIENT)
        if i >= 2:
            api_t.append(time.perf_counter() - t0)
    kw = {
        "type_idx": np.array([vocab.TUMOUR_TYPES.index(PATIENT["tumour_type"])]),
        "prior_pfs": np.array([PATIENT["prior_pfs_months"]]),
        "prior_gbq": np.array([PATIENT["prior_gbq"]]),
        "planned_gbq": np.array([PATIENT["planned_gbq"]]),
        "times": DEFAULT_TIMES,
        "t_probs": np.asarray(DEFAULT_T_PROBS),
    }
    np_t = []
    for i in range(p["repeats"] + 2):
        t0 = time.perf_counter()
        bare = bare_numpy_rprrt(pred.survival, pred.toxicity, **kw)
        if i >= 2:
            np_t.append(time.perf_counter() - t0)
    # the same numbers? summary rows: median, P(>12), P(>24), 3 lines + any; then the curve
    s = res.summary
    cols = ["median", "mean", *res.interval.columns]
    api_rows = np.concatenate([s[cols].to_numpy(float), res.curve[cols].to_numpy(float)])
    nt = len(DEFAULT_TIMES)
    b = bare[0]
    bare_rows = np.concatenate([b[:3], b[3 + nt :], b[3 : 3 + nt]])
    api_s, np_s = _stats(api_t), _stats(np_t)
    return {
        "patient": PATIENT,
        "sentence": res.sentence(),
        "import_netbayes_predict_s": _r(import_s, 4),
        "load_posteriors_s": _r(load_s, 4),
        "n_draws": pred.n_draws,
        "n_toxicity_draws": int(pred.toxicity["sigma_u"].shape[0]),
        "api_s": api_s,
        "numpy_s": np_s,
        "api_over_numpy": _ratio(api_s["median_s"], np_s["median_s"]),
        "max_abs_diff": _r(float(np.max(np.abs(api_rows - bare_rows))), 12),
        "peak_rss_mb": _rss_mb(),
    }


_BATCH_KEYS = ("type_idx", "prior_pfs", "prior_gbq", "planned_gbq")


def _current_rss_mb() -> float | None:
    """Resident memory of this process now (Linux ``/proc``), MB; None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def stage_predict_batch_api(p: dict[str, Any]) -> dict[str, Any]:
    """``Predictor.summaries`` on the full batch, checked against the bare formulas."""
    import pandas as pd

    from netbayes.formulas import toxicity as T
    from netbayes.predict import DEFAULT_CHUNK_SIZE, DEFAULT_T_PROBS, Predictor

    pred = Predictor.load()
    assert pred.toxicity is not None
    n = p["n_patients"]
    pts = _batch_patients(n, p["seed"])
    df = pd.DataFrame(
        {
            "tumour_type": pts["tumour_type"],
            "line": "R-PRRT",
            "prior_pfs_months": pts["prior_pfs"],
            "prior_gbq": pts["prior_gbq"],
            "planned_gbq": pts["planned_gbq"],
        }
    )
    pred.summaries(df.iloc[:2])  # warm-up
    rss0 = _current_rss_mb()
    log(f"predict: Predictor.summaries on {n} patients")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        res = pred.summaries(df)
        dt_s = time.perf_counter() - t0
    peak = _rss_mb()
    # the same numbers as the bare formulas? (the first patients, any-line risk included)
    m = min(n, p["n_check"])
    step = max(1, 4_000_000 // (pred.n_draws * 3 * 96))  # quadrature work arrays ~32 MB
    bare = np.concatenate(
        [
            bare_numpy_rprrt(
                pred.survival,
                pred.toxicity,
                **{k: pts[k][i : min(m, i + step)] for k in _BATCH_KEYS},
                times=np.array([]),
                t_probs=np.asarray(DEFAULT_T_PROBS),
            )
            for i in range(0, m, step)
        ]
    )  # (m, 7, 4): median PFS, P(PFS > 12), P(PFS > 24), 3 cell lines, any line
    api = res.iloc[:m, :-1].to_numpy(float).reshape(m, 7, 4)
    diff = np.abs(api - bare)
    eta = T.linear_predictor(
        pts["planned_gbq"][None, :],
        pts["prior_gbq"][None, :],
        pred.toxicity["beta_activity"][:, None],
        pred.toxicity["beta_prior"][:, None],
        pred.toxicity["delta_retreated"][:, None],
    )
    bound = T.any_line_risk_table(pred.toxicity, eta.min(axis=1), eta.max(axis=1)).max_error
    return {
        "method": "Predictor.summaries(df)",
        "n_patients": n,
        "chunk_size": DEFAULT_CHUNK_SIZE,
        "measured_s": _r(dt_s, 3),
        "per_patient_ms": _r(1000 * dt_s / n, 5),
        "rss_before_mb": rss0,
        "peak_rss_mb": peak,
        "rss_increase_mb": None if rss0 is None else _r(peak - rss0, 1),
        "warnings": len(caught),
        "output_shape": list(res.shape),
        "check_n_patients": m,
        "max_abs_diff_closed_forms": _r(float(diff[:, :6].max()), 16),
        "max_abs_diff_any_line": _r(float(diff[:, 6].max()), 12),
        "any_line_error_bound": _r(bound, 12),
    }


def stage_predict_batch_numpy(p: dict[str, Any]) -> dict[str, Any]:
    """The bare formulas on the full batch in chunks, keeping only summaries."""
    from netbayes.predict import DEFAULT_T_PROBS, Predictor

    pred = Predictor.load()
    assert pred.toxicity is not None
    n, chunk = p["n_patients"], p["chunk_patients"]
    pts = _batch_patients(n, p["seed"])
    keys = ("type_idx", "prior_pfs", "prior_gbq", "planned_gbq")
    opts = {"times": np.array([]), "t_probs": np.asarray(DEFAULT_T_PROBS)}
    log(f"predict: bare NumPy closed forms for {n} patients (chunks of {chunk})")
    t0 = time.perf_counter()
    out, split = [], {}
    for i in range(0, n, chunk):
        sl = {k: pts[k][i : i + chunk] for k in keys}
        out.append(
            bare_numpy_rprrt(
                pred.survival, pred.toxicity, **sl, **opts, any_line=False, timings=split
            )
        )
    closed_s = time.perf_counter() - t0
    summary = np.concatenate(out)
    m = p["n_any"]
    any_chunk = max(1, 4_000_000 // (pred.n_draws * 3 * 96))
    log(f"predict: bare NumPy with the any-line risk for {m} patients (chunks of {any_chunk})")
    t0 = time.perf_counter()
    for i in range(0, m, any_chunk):
        sl = {k: pts[k][i : min(m, i + any_chunk)] for k in keys}
        bare_numpy_rprrt(pred.survival, pred.toxicity, **sl, **opts, any_line=True)
    all_s = time.perf_counter() - t0
    closed_m = closed_s / n * m
    any_s = max(all_s - closed_m, 0.0)  # the any-line part of the measured patients
    any_ext = any_s / m * n
    total = closed_s + any_ext
    return {
        "method": "bare NumPy/SciPy formulas, summaries kept per chunk",
        "n_patients": n,
        "chunk_patients": chunk,
        "closed_forms_s": _r(closed_s, 3),
        "closed_forms_draws_s": _r(split["draws_s"], 3),
        "closed_forms_summaries_s": _r(split["summaries_s"], 3),
        "any_line_n_measured": m,
        "any_line_measured_s": _r(all_s, 3),
        "any_line_s": _r(any_s, 3),
        "any_line_extrapolated_s": _r(any_ext, 1),
        "extrapolated_s": _r(total, 1),
        "per_patient_ms": _r(1000 * total / n, 5),
        "summary_shape": list(summary.shape),
        "peak_rss_mb": _rss_mb(),
    }


def cold_starts(runs: int, pymc_runs: int) -> dict[str, Any]:
    """Fresh-process timings, with :mod:`predict_latency`'s helpers and CLI command."""
    sys.path.insert(0, str(BENCH))
    from predict_latency import CLI_ARGS, _timed, _wall, heavy_modules_imported

    exe = shutil.which("netbayes", path=str(Path(sys.executable).parent))
    cli = [exe] if exe else [sys.executable, "-m", "netbayes.cli"]
    py = sys.executable
    log(f"cold starts: python, import netbayes.predict, CLI ({runs} runs each), import pymc")
    _wall([*cli, *CLI_ARGS])  # warm the OS file cache once
    out: dict[str, Any] = {
        "python": _timed([py, "-c", "pass"], runs),
        "import_netbayes_predict": _timed([py, "-c", "import netbayes.predict"], runs),
        "cli_command": " ".join(["netbayes" if exe else "python -m netbayes.cli", *CLI_ARGS]),
        "cli": _timed([*cli, *CLI_ARGS], runs),
    }
    _wall([py, "-c", "import pymc"])  # warm the file cache and PyTensor's compile directory
    out["import_pymc"] = _timed([py, "-c", "import pymc"], pymc_runs)
    out["cli_over_import_pymc"] = _ratio(out["cli"]["median_s"], out["import_pymc"]["median_s"])
    out["cli_imported_heavy_modules"] = heavy_modules_imported(py)
    return out


STAGES = {
    "fit": stage_fit,
    "scale": stage_scale,
    "predict_one": stage_predict_one,
    "predict_batch_api": stage_predict_batch_api,
    "predict_batch_numpy": stage_predict_batch_numpy,
}


# ----------------------------------------------------------------------------------------------
# orchestration
# ----------------------------------------------------------------------------------------------
def run_stage(stage: str, params: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """Run one stage in a fresh Python process; its result (or ``error``) as a dict."""
    fd, tmp = tempfile.mkstemp(suffix=".json", prefix=f"bench_{stage}_")
    os.close(fd)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", stage]
    cmd += ["--params", json.dumps(params), "--stage-out", tmp]
    timeout = params.get("timeout_s", STAGE_TIMEOUT_S)
    load0, t0 = _load1(), time.perf_counter()
    try:
        r = subprocess.run(cmd, stdout=sys.stderr, timeout=timeout, check=False)
        why = f"exit status {r.returncode}"
    except subprocess.TimeoutExpired:
        r, why = None, f"killed after the stage time limit of {timeout} s"
    try:
        text = Path(tmp).read_text()
        res = json.loads(text) if text else None
    finally:
        Path(tmp).unlink(missing_ok=True)
    wall = time.perf_counter() - t0
    if r is None or r.returncode != 0 or res is None or res.get("partial"):
        msg = f"stage {stage} {params} failed: {why} (see the stderr above)"
        log(msg)
        errors.append(msg)
        out = {"error": msg, "process_wall_s": _r(wall, 2)}
        if res:  # what it measured before failing (e.g. compile time, gradient, profile)
            out["partial"] = {k: v for k, v in res.items() if k != "partial"}
        return out
    res["process_wall_s"] = _r(wall, 2)
    res["load_average_1min_start"], res["load_average_1min_end"] = load0, _load1()
    return res


def section_predict(cfg: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """Prediction latency and throughput, in-process and cold."""
    n = cfg["numpy_batch"]
    one = run_stage("predict_one", {"repeats": cfg["repeats"]}, errors)
    base = {"seed": SEED, "n_patients": n}
    api = run_stage("predict_batch_api", base | {"n_check": cfg["api_check"]}, errors)
    numpy_ = run_stage(
        "predict_batch_numpy",
        base | {"chunk_patients": cfg["chunk_patients"], "n_any": cfg["any_line_batch"]},
        errors,
    )
    batch = {
        "n_patients": n,
        "patients": "R-PRRT; the six fine tumour types in turn; prior PFS U(18, 60) months; "
        "planned activity U(5, 16) GBq; prior activity U(22, 30.7) GBq (inside the calibrated "
        "ranges: no extrapolation warning)",
        "quantities": "median PFS, P(PFS > 12), P(PFS > 24), P(grade >= III) for 3 cell lines "
        "and any line; posterior median, mean, 95% ETI over all draws",
        "api": api,
        "numpy": numpy_,
        "api_over_numpy_per_patient": _ratio(
            api.get("per_patient_ms"), numpy_.get("per_patient_ms")
        ),
    }
    try:
        cold = cold_starts(cfg["cold_runs"], cfg["pymc_runs"])
    except Exception as err:  # record it and go on with the other sections
        msg = f"cold starts failed: {err}"
        log(msg)
        errors.append(msg)
        cold = {"error": msg}
    return {"one_patient": one, "batch": batch, "cold_start": cold}


def section_fits(cfg: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """Both models with both samplers; nutpie/PyMC ratios."""
    out: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for model in ("survival", "toxicity"):
        out[model] = {}
        for sampler in ("nutpie", "pymc"):
            params = {"model": model, "sampler": sampler, "seed": SEED, **cfg}
            out[model][sampler] = run_stage("fit", params, errors)
        a, b = out[model]["nutpie"], out[model]["pymc"]
        ratios[model] = {k: _ratio(a.get(k), b.get(k)) for k in RATIO_KEYS}
    out["ratio_nutpie_over_pymc"] = ratios
    return out


def section_scaling(cfg: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """Survival fits with simulated user rows of increasing number."""
    largest = max(n for n, _, _ in cfg["runs"])
    runs = []
    for n, draws, tune in cfg["runs"]:
        params = {
            "n_rows": n,
            "chains": cfg["chains"],
            "draws": draws,
            "tune": tune,
            "seed": SEED,
            "sampler": "nutpie",
            "profile": n == largest,
            "timeout_s": cfg["timeout_s"],
        }
        run = run_stage("scale", params, errors)
        part = run.get("partial", {})
        run.setdefault("n_rows", n)
        run.setdefault("draws", draws)
        run.setdefault("tune", tune)
        for k in ("compile_s", "grad_eval_ms", "profile"):  # measured before the fit failed
            if k in part:
                run.setdefault(k, part[k])
        runs.append(run)
    ok = [r for r in runs if r.get("grad_eval_ms") is not None]
    fit_lin = None
    if len(ok) >= 2:
        x = np.array([r["n_rows"] for r in ok], float)
        y = np.array([r["grad_eval_ms"] for r in ok], float)
        slope, icept = np.polyfit(x, y, 1)
        fit_lin = {"intercept_ms": _r(icept, 4), "per_1k_rows_ms": _r(1000 * slope, 4)}
    prof = next((r["profile"] for r in runs if r["n_rows"] == largest and "profile" in r), None)
    return {
        "chains": cfg["chains"],
        "runs": runs,
        "grad_eval_linear_fit": fit_lin,
        "profile": prof,
    }


# ----------------------------------------------------------------------------------------------
# Markdown summary
# ----------------------------------------------------------------------------------------------
def _fmt(v: Any, d: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{d}f}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return [*out, ""]


FIT_COLUMNS = [
    ("target_accept", "target_accept"),
    ("wall_s", "wall"),
    ("compile_s", "compile"),
    ("sampling_s", "sampling"),
    ("min_ess_bulk", "min bulk ESS"),
    ("ess_per_sampling_s", "ESS/s sampling"),
    ("ess_per_wall_s", "ESS/s wall"),
    ("divergences", "divergences"),
    ("max_r_hat", "max R-hat"),
    ("ms_per_leapfrog_step", "ms/step"),
]
SCALE_COLUMNS = [
    ("n_rows", "rows"),
    ("draws", "draws"),
    ("tune", "tune"),
    ("wall_s", "wall"),
    ("compile_s", "compile"),
    ("sampling_s", "sampling"),
    ("min_ess_bulk", "min bulk ESS"),
    ("ess_per_sampling_s", "ESS/s"),
    ("divergences", "divergences"),
    ("max_r_hat", "max R-hat"),
    ("grad_eval_ms", "gradient ms"),
    ("ms_per_leapfrog_step", "ms/step"),
    ("leapfrog_steps_post_warmup", "steps (draws)"),
]


def markdown(res: dict[str, Any]) -> str:
    """Short human summary of the results (tables)."""
    m = res["machine"]
    lines = [
        "# netbayes benchmarks" + (" (QUICK SETTINGS: smoke test, not results)" * res["quick"]),
        "",
        f"`{res['command']}`, {m['date_utc']}, total {_fmt(res.get('total_s'), 0)} s.",
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs, Python {m['python']}, PyMC "
        f"{m['pymc']}, nutpie {m['nutpie']}, PyTensor {m['pytensor']}, NumPy {m['numpy']}; "
        f"load average {m['load_average_start']} at start, {m.get('load_average_end')} at end.",
        f"Commit {str(m['git_commit'])[:10]}{' (uncommitted changes)' * bool(m['git_dirty'])}. "
        "Field meanings: the docstring of `benchmarks/run_benchmarks.py`.",
        "",
    ]
    if res.get("errors"):
        lines += ["**Failed stages:**", "", *[f"- {e}" for e in res["errors"]], ""]
    fits = res.get("fits")
    if fits:
        f0 = fits["survival"]["nutpie"]
        lines += [
            "## Fits on the calibration data",
            "",
            f"{f0.get('chains')} chains x {f0.get('draws')} draws after {f0.get('tune')} "
            f"tuning, on {f0.get('cores')} cores; same seed and target acceptance for both "
            "samplers. Times in seconds.",
            "",
        ]
        rows = [
            [model, s, *(fits[model][s].get(k) for k, _ in FIT_COLUMNS)]
            for model in ("survival", "toxicity")
            for s in ("nutpie", "pymc")
        ]
        lines += _table(["model", "sampler", *(h for _, h in FIT_COLUMNS)], rows)
        rat = fits["ratio_nutpie_over_pymc"]
        lines += _table(
            ["nutpie / PyMC", *RATIO_KEYS],
            [[k, *(v[c] for c in RATIO_KEYS)] for k, v in rat.items()],
        )
    pr = res.get("predict")
    if pr:
        one, b, cold = pr["one_patient"], pr["batch"], pr["cold_start"]
        api, npy = b["api"], b["numpy"]
        lines += ["## Predictions (shipped posteriors)", ""]
        rows = [
            ["one patient, `Predictor.patient` (median of repeats)",
             (one.get("api_s") or {}).get("median_s"), one.get("peak_rss_mb")],
            ["one patient, bare NumPy", (one.get("numpy_s") or {}).get("median_s"), None],
            [f"batch {b['n_patients']:,}, `Predictor.summaries` (measured, all patients; "
             f"RSS +{_fmt(api.get('rss_increase_mb'), 0)} MB)", api.get("measured_s"),
             api.get("peak_rss_mb")],
            [f"batch {b['n_patients']:,}, bare NumPy (any-line risk measured on "
             f"{npy.get('any_line_n_measured')} and extrapolated)", npy.get("extrapolated_s"),
             npy.get("peak_rss_mb")],
            [f"batch {b['n_patients']:,}, bare NumPy without the any-line risk (measured; "
             f"draws {_fmt(npy.get('closed_forms_draws_s'), 1)} s, summaries "
             f"{_fmt(npy.get('closed_forms_summaries_s'), 1)} s)", npy.get("closed_forms_s"), None],
        ]  # fmt: skip
        for key, what in (
            ("python", "`python -c pass`"),
            ("import_netbayes_predict", "`import netbayes.predict`, cold"),
            ("cli", "CLI `netbayes predict ...`, cold"),
            ("import_pymc", '`python -c "import pymc"`, cold'),
        ):
            c = cold.get(key) or {}
            rows.append([what, c.get("median_s"), None])
        lines += _table(["what", "seconds", "peak RSS MB"], rows)
        lines += [
            f"API / bare NumPy: one patient {_fmt(one.get('api_over_numpy'))}x, batch per "
            f"patient {_fmt(b.get('api_over_numpy_per_patient'))}x (max abs difference of the "
            f"one-patient summaries {one.get('max_abs_diff')}); CLI / import pymc "
            f"{_fmt(cold.get('cli_over_import_pymc'))}x; the CLI imported "
            f"{cold.get('cli_imported_heavy_modules') or 'none'} of PyMC/PyTensor/ArviZ/nutpie. "
            f"`Predictor.summaries` against the bare formulas on the first "
            f"{api.get('check_n_patients')} patients: max abs difference "
            f"{api.get('max_abs_diff_closed_forms')} (closed forms) and "
            f"{api.get('max_abs_diff_any_line')} (any-line risk, tabulated; proven bound "
            f"{api.get('any_line_error_bound')}).",
            "",
        ]
    sc = res.get("scaling")
    if sc:
        lines += [
            "## Scaling with user rows (survival PFS, nutpie)",
            "",
            f"{sc['chains']} chains (draws and tuning per chain in the table); simulated R-PRRT "
            "rows added to the published data. Times in seconds.",
            "",
        ]
        rows = [[r.get(k) for k, _ in SCALE_COLUMNS] for r in sc["runs"]]
        lines += _table([h for _, h in SCALE_COLUMNS], rows)
        lf, pf = sc.get("grad_eval_linear_fit"), sc.get("profile")
        if lf:
            lines.append(
                f"Gradient time ~ {_fmt(lf['intercept_ms'], 3)} ms + "
                f"{_fmt(lf['per_1k_rows_ms'], 3)} ms per 1,000 rows."
            )
        if pf:
            lines.append(
                f"Profile at {pf['n_rows']:,} rows: the patient term as the model wrote it "
                "before the gather "
                f"(six tumour types per row, logsumexp) {_fmt(pf['patient_term_mixture_ms'], 3)} "
                f"ms ({_fmt(pf.get('share_of_model_grad'))} of the model gradient); with each "
                f"row's own type gathered {_fmt(pf['patient_term_gathered_ms'], 3)} ms "
                f"({_fmt(pf['speedup'])}x faster, same values to {pf['max_abs_diff']:.1g})."
            )
        lines.append("")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
def main() -> None:
    """Parse the command line; run a stage (internal) or the whole benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    ap.add_argument("--out", type=Path, default=BENCH / "results", help="output folder")
    ap.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}"
    )
    ap.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    ap.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--stage-out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.stage:  # a child process: one measurement, result to --stage-out
        _PARTIAL_PATH.append(a.stage_out)
        res = STAGES[a.stage](json.loads(a.params))
        res.setdefault("peak_rss_mb", _rss_mb())
        res["peak_rss_children_mb"] = _rss_mb(resource.RUSAGE_CHILDREN)
        a.stage_out.write_text(json.dumps(res))
        return

    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    bad = sorted(set(sections) - set(SECTIONS))
    if bad:
        ap.error(f"--sections {bad} not allowed; choose from {SECTIONS}")
    os.environ[_T0_ENV] = str(time.time())
    t_start = time.perf_counter()
    cfg = QUICK if a.quick else FULL
    a.out.mkdir(parents=True, exist_ok=True)
    stem = "benchmarks_quick" if a.quick else "benchmarks"
    json_path, md_path = a.out / f"{stem}.json", a.out / f"{stem}.md"
    try:
        cmd_out = a.out.resolve().relative_to(REPO)
    except ValueError:
        cmd_out = a.out.resolve()
    res: dict[str, Any] = {
        "command": f"python benchmarks/run_benchmarks.py{' --quick' * a.quick} --out {cmd_out}"
        + (f" --sections {','.join(sections)}" if sections != list(SECTIONS) else ""),
        "quick": a.quick,
        "settings": {k: cfg[k] for k in sections} | {"seed": SEED},
        "machine": machine_facts(),
        "errors": [],
    }
    log(f"netbayes benchmarks ({'quick' if a.quick else 'full'}): {', '.join(sections)}")
    runners = {"predict": section_predict, "fits": section_fits, "scaling": section_scaling}
    for s in SECTIONS:
        if s in sections:
            log(f"section {s}")
            res[s] = runners[s](cfg[s], res["errors"])
            json_path.write_text(json.dumps(res, indent=2) + "\n")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    res["machine"]["load_average_end"] = None if load is None else [round(x, 2) for x in load]
    res["total_s"] = _r(time.perf_counter() - t_start, 1)
    json_path.write_text(json.dumps(res, indent=2) + "\n")
    md_path.write_text(markdown(res))
    log(f"total {res['total_s']:.0f} s; wrote {json_path} and {md_path}")
    print(f"total {res['total_s']:.0f} s ({res['total_s'] / 60:.1f} min)")
    if res["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
