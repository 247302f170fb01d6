"""Issue 19's speed figures in one run, each against the code before the change where it changed.

    python benchmarks/speed.py --base-ref 7efc90c~1 [--sections all] [--runs 3] [--merge]

Checks ``--base-ref`` out into a temporary git worktree and runs every measurement in fresh
processes with ``PYTHONPATH`` pointing at the base tree's ``src`` or at this tree's, interleaved
(base, new, base, new, ...) so that the machine's load affects both alike. Sections:

* ``validate``: wall time of ``netbayes validate`` (the cross-validated check), both trees,
  ``--runs`` each; their outputs must be identical.
* ``refit``: one process fits the default PFS model twice (2 chains x 50 draws): the compile
  time of the second fit, both trees (the new code re-uses the compiled model).
* ``compile_cache``: a new process compiles the default PFS and toxicity models, twice per
  tree; the second process's compile time (the new code loads nutpie's C callbacks from the
  disk cache).
* ``cold_start``: ``netbayes predict`` (the README command) against ``python -c "import
  pymc"`` and ``python -c "import numpy"`` (the floor), both trees, ``--runs`` each (compiled
  bytecode present, as after ``pip install``; the calibrated-ranges cache written by one
  untimed first run, also reported); the text output compared, the ``--json`` numbers
  compared, and which of pandas, SciPy and xarray the command loads.
* ``fits``: the default fits (PFS and toxicity, 4 x 1000 draws, each model's default
  settings), both trees, each on a warm compile cache (this tree's model is fitted once
  before the one measured): wall, compile and sampling seconds, gradient evaluations
  (leapfrog steps, warm-up included), seconds per gradient, divergences, R-hat, bulk ESS.
* ``batch``: ``Predictor.summaries`` on 10,000 R-PRRT patients (as ``run_benchmarks.py``
  makes them), with and without the prior share, both trees; and what a plain
  ``numpy.partition`` of every answer's draws would cost.
* ``jax``: the PFS model through nutpie's JAX backend (if JAX is installed): compile seconds
  and seconds per gradient, against the numba backend.
* ``registry``: the PFS model with 1,000, 10,000 and 100,000 simulated user rows: the cost of
  one log-density gradient (the same PyTensor graph compiled by numba and, if installed, by
  JAX), and the time to build the function and make its first call.
* ``registry_fit``: the default PFS fit (4 x 1000 draws) with ``--registry-rows`` simulated
  user rows (100,000): the new code to the end, the base code stopped after
  ``--registry-base-limit`` seconds (600, the issue's target).

Writes ``results/speed.json`` and ``results/speed.md``. The machine (cores, load average) is
recorded; on a shared machine compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PREDICT = [
    "-m", "netbayes.cli", "predict", "--tumour-type", "midgut", "--line", "R-PRRT",
    "--prior-pfs", "30", "--prior-gbq", "29.9", "--planned-gbq", "14.9",
]  # fmt: skip

REFIT = """
import json, time, warnings
warnings.simplefilter("ignore")
from netbayes.models.survival import SurvivalModel
out = []
for _ in range(2):
    t0 = time.perf_counter()
    f = SurvivalModel("pfs").fit(draws=50, tune=50, chains=2, seed=3, progress=False)
    out.append({"compile_s": f.seconds["compile"], "total_s": time.perf_counter() - t0})
print("RESULT", json.dumps(out))
"""

FIT = """
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from netbayes.models.survival import SurvivalModel
from netbayes.models.toxicity import ToxicityModel
m = SurvivalModel("pfs") if sys.argv[1] == "pfs" else ToxicityModel()
t0 = time.perf_counter()
f = m.fit(progress=False, seed=20261121)
wall = time.perf_counter() - t0
ss = f.posterior["sample_stats"].dataset
steps = int(ss["n_steps"].sum())
warm = int(f.posterior["warmup_sample_stats"].dataset["n_steps"].sum())
grads = steps + warm
print("RESULT", json.dumps({
    "model": sys.argv[1], "wall_s": wall, "compile_s": f.seconds["compile"],
    "sample_s": f.seconds["sample"], "settings": f.settings,
    "mean_leapfrog_steps": float(ss["n_steps"].mean()),
    "gradients_estimated": grads,
    "ms_per_gradient_per_chain": 1000 * f.seconds["sample"] * min(2, f.settings["chains"])
        / grads,
    "divergences": f.n_divergences, "max_r_hat": float(f.diagnostics["r_hat"].max()),
    "min_ess_bulk": float(f.diagnostics["ess_bulk"].min())}))
"""

BATCH = """
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
sys.path.insert(0, "benchmarks")
from run_benchmarks import _batch_patients
from netbayes.predict import Predictor
pred = Predictor.load()
n = 10_000
pts = _batch_patients(n, 5)
df = pd.DataFrame({"tumour_type": pts["tumour_type"], "line": "R-PRRT",
    "prior_pfs_months": pts["prior_pfs"], "prior_gbq": pts["prior_gbq"],
    "planned_gbq": pts["planned_gbq"]})
pred.summaries(df.iloc[:2])
res = {"n_patients": n}
for ps in (False, True):
    t0 = time.perf_counter(); r = pred.summaries(df, prior_share=ps)
    res[f"summaries_prior_share_{ps}_s"] = time.perf_counter() - t0
S = pred.n_draws
a = np.random.default_rng(1).standard_normal((64, S))
k = [int(0.025 * (S - 1)), (S - 1) // 2, int(0.975 * (S - 1))]
t0 = time.perf_counter()
for _ in range(50):
    np.partition(a, k, axis=-1)
per_answer = (time.perf_counter() - t0) / (50 * 64)
res["partition_s_per_answer"] = per_answer
res["answers_per_patient"] = 7
res["partition_floor_100k_s"] = per_answer * 7 * 100_000
# the draws the answers' means need, one core: 3 per-line normal CDFs and 2 Weibull survival
# probabilities per draw and patient (the any-line answer and the median PFS come on top)
try:  # the new code's CDF (the base used SciPy's) and Weibull survival kernel
    from netbayes.normal import ndtr
    from netbayes.predict.kernels import _weibull_sf_into
except ImportError:
    ndtr = None
x = np.random.default_rng(2).normal(-2.0, 1.0, (3, S, 1000))
k_w = np.random.default_rng(3).uniform(1.0, 2.0, (S, 1000))
lam = np.random.default_rng(4).uniform(10.0, 30.0, (S, 1000))
out = np.empty_like(lam)
if ndtr is not None:
    for _ in range(2):  # warm (the CDF's table), then timed
        t0 = time.perf_counter()
        ndtr(x, out=x)
        cdf = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in (12.0, 24.0):
        _weibull_sf_into(t, k_w, lam, out)
    sf = time.perf_counter() - t0
    res["per_line_cdf_floor_100k_s"] = cdf * 100
    res["weibull_sf_floor_100k_s"] = sf * 100
print("RESULT", json.dumps(res))
"""

JAX = """
import json, time, warnings
import numpy as np
warnings.simplefilter("ignore")
import jax
jax.config.update("jax_enable_x64", True)
import nutpie
from netbayes.models.survival import SurvivalModel
model = SurvivalModel("pfs").build()
out = {"jax_version": jax.__version__}
for backend in ("jax", "numba"):
    t0 = time.perf_counter()
    kw = {"gradient_backend": "jax"} if backend == "jax" else {}
    c = nutpie.compile_pymc_model(model, backend=backend, **kw)
    comp = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr = nutpie.sample(c, draws=100, tune=100, chains=1, cores=1, seed=1, progress_bar=False,
                       target_accept=0.98)
    samp = time.perf_counter() - t0
    steps = float(tr.sample_stats["n_steps"].sum()) * 2
    out[backend] = {"compile_s": comp, "sample_s": samp, "gradients_estimated": steps,
                    "ms_per_gradient": 1000 * samp / steps}
print("RESULT", json.dumps(out))
"""


REGISTRY = """
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
sys.path.insert(0, "benchmarks")
from run_benchmarks import _user_rows
import pymc as pm
from nutpie.compile_pymc import _make_functions
from netbayes.models.survival import SurvivalModel
n, mode = int(sys.argv[1]), sys.argv[2]
if mode == "JAX":
    import jax
    jax.config.update("jax_enable_x64", True)
pts, _ = _user_rows(n, 7 + n)
model = SurvivalModel("pfs", patients=pts).build()
ipf = pm.initial_point.make_initial_point_fn(model=model, return_transformed=True)
t0 = time.perf_counter()
dim, _, f, *_ = _make_functions(model, mode=mode, compute_grad=True, join_expanded=True,
                                pymc_initial_point_fn=ipf, var_names=None)
x = np.zeros(dim)
lp, g = f(x)
first = time.perf_counter() - t0
times = []
for _ in range(20):
    t0 = time.perf_counter()
    lp, g = f(x)
    np.asarray(g)
    times.append(time.perf_counter() - t0)
print("RESULT", json.dumps({"n_rows": n, "mode": mode, "build_and_first_call_s": first,
      "ms_per_gradient": 1000 * float(np.median(times)), "logp": float(lp)}))
"""


REGISTRY_FIT = """
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
sys.path.insert(0, "benchmarks")
from run_benchmarks import _user_rows
from netbayes.models.survival import SurvivalModel
import os
import pandas as pd
n, rows = int(sys.argv[1]), sys.argv[2]
if os.path.exists(rows):  # the same rows for both trees (the base tree lacks today's drivers)
    pts = pd.read_csv(rows)
else:
    pts, _ = _user_rows(n, 3)
    pts.to_csv(rows, index=False, float_format="%.17g")
m = SurvivalModel("pfs", patients=pts)
t0 = time.perf_counter()
f = m.fit(progress=False, seed=1, prior_draws=0)
ss = f.posterior["sample_stats"].dataset
print("RESULT", json.dumps({
    "n_rows": n, "wall_s": time.perf_counter() - t0, "compile_s": f.seconds["compile"],
    "sample_s": f.seconds["sample"], "settings": f.settings,
    "mean_leapfrog_steps": float(ss["n_steps"].mean()), "mean_depth": float(ss["depth"].mean()),
    "divergences": f.n_divergences, "max_r_hat": float(f.diagnostics["r_hat"].max()),
    "min_ess_bulk": float(f.diagnostics["ess_bulk"].min()),
    "slowest": str(f.diagnostics["ess_bulk"].idxmin())}))
"""


COLD = """
import json, time, warnings
warnings.simplefilter("ignore")
from netbayes.models.survival import SurvivalModel
from netbayes.models.toxicity import ToxicityModel
out = {}
for name, m in (("pfs", SurvivalModel("pfs")), ("toxicity", ToxicityModel())):
    f = m.fit(draws=20, tune=20, chains=1, seed=3, progress=False)
    out[name] = f.seconds["compile"]
print("RESULT", json.dumps(out))
"""


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    env.pop("NETBAYES_MODELS_DIR", None)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                       text=True, check=True)  # fmt: skip
    return time.perf_counter() - t0, p.stdout


def _result(out: str) -> Any:
    line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def _med(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def validate(trees: dict[str, Path], runs: int) -> dict[str, Any]:
    t: dict[str, list[float]] = {k: [] for k in trees}
    outs: dict[str, str] = {}
    for _ in range(runs):
        for k, src in trees.items():
            dt, out = _run(["-m", "netbayes.cli", "validate"], _env(src), cwd=src.parent)
            t[k].append(dt)
            outs[k] = out
    return {
        "runs_s": t, "base_median_s": _med(t["base"]), "new_median_s": _med(t["new"]),
        "new_over_base": round(statistics.median(t["new"]) / statistics.median(t["base"]), 3),
        "identical_output": outs["base"] == outs["new"],
    }  # fmt: skip


def refit(trees: dict[str, Path]) -> dict[str, Any]:
    res = {}
    for k, src in trees.items():
        res[k] = _result(_run(["-c", REFIT], _env(src), cwd=src.parent)[1])
    second = {k: v[1]["total_s"] for k, v in res.items()}
    return {
        "fits": res,
        "second_fit_new_over_base": round(second["new"] / second["base"], 3),
    }


def compile_cache(trees: dict[str, Path]) -> dict[str, Any]:
    """The compile of the default models in a new process, the second time on this machine."""
    res: dict[str, Any] = {}
    for k, src in trees.items():
        runs = [_result(_run(["-c", COLD], _env(src), cwd=src.parent)[1]) for _ in range(2)]
        res[k] = {"first_process": runs[0], "second_process": runs[1]}
    for m in ("pfs", "toxicity"):
        res[f"{m}_second_process_new_over_base"] = round(
            res["new"]["second_process"][m] / res["base"]["second_process"][m], 3
        )
    return res


COLD_PARTS = """
import contextlib, io, json, sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import netbayes.cli as cli
import netbayes.formulas.toxicity as tox
t2 = time.perf_counter()
cli.build_parser()
t3 = time.perf_counter()
argv = sys.argv[1:]
with contextlib.redirect_stdout(io.StringIO()):
    cli.main(argv)
t4 = time.perf_counter()
real, spent = tox._prod_cdf_expectation, [0.0]
def timed(*a, **k):
    s = time.perf_counter()
    try:
        return real(*a, **k)
    finally:
        spent[0] += time.perf_counter() - s
tox._prod_cdf_expectation = timed
t5 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    cli.main(argv)
t6 = time.perf_counter()
print("RESULT", json.dumps({"import_numpy_s": t1 - t0, "import_cli_s": t2 - t1,
    "parser_s": t3 - t2, "first_command_s": t4 - t3, "answers_s": t6 - t5,
    "any_line_quadratures_s": spent[0]}))
"""


def cold_start(trees: dict[str, Path], runs: int) -> dict[str, Any]:
    for src in trees.values():  # what `pip install` leaves: bytecode for every module
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True,
                       capture_output=True)  # fmt: skip
    cache = Path(tempfile.mkdtemp(prefix="netbayes-speed-cache-"))  # the ranges cache, empty
    envs = {k: dict(_env(src), NETBAYES_CACHE_DIR=str(cache)) for k, src in trees.items()}
    first = {k: _run(PREDICT, envs[k], cwd=src.parent)[0] for k, src in trees.items()}
    t: dict[str, list[float]] = {"base": [], "new": [], "import pymc": [], "import numpy": []}
    outs = {}
    for _ in range(runs):
        for k, src in trees.items():
            dt, outs[k] = _run(PREDICT, envs[k], cwd=src.parent)
            t[k].append(dt)
        t["import pymc"].append(_run(["-c", "import pymc"], dict(os.environ))[0])
        t["import numpy"].append(_run(["-c", "import numpy"], dict(os.environ))[0])
    js = {k: json.loads(_run([*PREDICT, "--json"], envs[k], cwd=src.parent)[1])
          for k, src in trees.items()}  # fmt: skip
    a, b = _json_numbers(js["base"]), _json_numbers(js["new"])
    probe = "import sys, runpy; sys.argv = ['netbayes', *sys.argv[1:]]\n" + (
        "try:\n    runpy.run_module('netbayes.cli', run_name='__main__')\nexcept SystemExit:\n"
        "    pass\nprint(sorted(m for m in ('pandas', 'scipy', 'xarray') if m in sys.modules),"
        " file=sys.stderr)"
    )
    loaded = {}
    for k, src in trees.items():
        p = subprocess.run([sys.executable, "-c", probe, *PREDICT[2:]], env=envs[k],
                           cwd=src.parent, capture_output=True, text=True, check=True)  # fmt: skip
        loaded[k] = p.stderr.strip().splitlines()[-1]
    parts = [  # where the new command's time goes, in one process (the second call: answers)
        _result(_run(["-c", COLD_PARTS, *PREDICT[2:]], envs["new"], cwd=trees["new"].parent)[1])
        for _ in range(runs)
    ]
    shutil.rmtree(cache, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in t.items()}
    return {
        "runs_s": t,
        **{f"{k}_median_s": round(v, 3) for k, v in med.items()},
        "first_run_s": {k: round(v, 3) for k, v in first.items()},
        "new_over_import_pymc": round(med["new"] / med["import pymc"], 3),
        "base_over_import_pymc": round(med["base"] / med["import pymc"], 3),
        "new_over_base": round(med["new"] / med["base"], 3),
        "identical_output": outs["base"] == outs["new"],
        "json_keys_identical": [x[0] for x in a] == [x[0] for x in b],
        "json_max_abs_difference": max(
            (abs(x[1] - y[1]) for x, y in zip(a, b, strict=True)), default=0.0
        ),
        "loaded_by_predict": loaded,
        "new_parts_median_s": {
            k: round(statistics.median(p[k] for p in parts), 3) for k in parts[0]
        },
    }


def _json_numbers(doc: Any, path: str = "") -> list[tuple[str, float]]:
    """The numbers of a JSON document in order, by path (``created`` dates left out)."""
    if isinstance(doc, dict):
        return [x for k, v in doc.items() for x in _json_numbers(v, f"{path}/{k}")]
    if isinstance(doc, list):
        return [x for i, v in enumerate(doc) for x in _json_numbers(v, f"{path}[{i}]")]
    if isinstance(doc, (int, float)) and not isinstance(doc, bool):
        return [(path, float(doc))]
    return []


def fits(trees: dict[str, Path]) -> dict[str, Any]:
    """The default fits with the code before and after, each on a warm compile cache (the new
    code's model is fitted once first, so its compiled callbacks are on disk)."""
    res: dict[str, Any] = {}
    for k, src in trees.items():
        env = _env(src)
        res[k] = {}
        for m in ("pfs", "toxicity"):
            if k == "new":
                _run(["-c", FIT, m], env)  # warm the disk cache of this model
            res[k][m] = _result(_run(["-c", FIT, m], env)[1])
    for m in ("pfs", "toxicity"):
        res[f"{m}_new_over_base"] = round(res["new"][m]["wall_s"] / res["base"][m]["wall_s"], 3)
    return res


def batch(trees: dict[str, Path]) -> dict[str, Any]:
    res = {k: _result(_run(["-c", BATCH], _env(src), cwd=ROOT)[1]) for k, src in trees.items()}
    for ps in (False, True):
        key = f"summaries_prior_share_{ps}_s"
        res[f"new_over_base_prior_share_{ps}"] = round(res["new"][key] / res["base"][key], 3)
    return res


def registry_fit(trees: dict[str, Path], n: int, base_limit_s: float) -> dict[str, Any]:
    """The default PFS fit (4 x 1000 draws, 1000 warm-up) with ``n`` simulated user rows: the
    new code to the end, the base code stopped after ``base_limit_s`` seconds."""
    res: dict[str, Any] = {"n_rows": n, "base_limit_s": base_limit_s}
    rows = str(trees["base"].parent / "registry_rows.csv")  # in the temporary worktree
    res["new"] = _result(_run(["-c", REGISTRY_FIT, str(n), rows], _env(trees["new"]))[1])
    try:
        out = subprocess.run(
            [sys.executable, "-c", REGISTRY_FIT, str(n), rows], env=_env(trees["base"]), cwd=ROOT,
            capture_output=True, text=True, check=True, timeout=base_limit_s,
        )  # fmt: skip
        res["base"] = _result(out.stdout)
    except subprocess.TimeoutExpired:
        res["base"] = {"not_finished_after_s": base_limit_s}
    except subprocess.CalledProcessError as e:  # recorded, so that the other sections are kept
        res["base"] = {"failed": (e.stderr or "")[-2000:]}
    return res


def jax_backend() -> dict[str, Any]:
    try:
        import jax  # noqa: F401
    except ImportError:
        return {"skipped": "JAX is not installed"}
    return _result(_run(["-c", JAX], _env(ROOT / "src"))[1])


def registry() -> dict[str, Any]:
    env = _env(ROOT / "src")
    out: dict[str, Any] = {}
    modes = ["NUMBA"]
    try:
        import jax  # noqa: F401

        modes.append("JAX")
    except ImportError:
        out["jax"] = "not installed"
    for n in (1_000, 10_000, 100_000):
        for mode in modes:
            out[f"{n}_{mode}"] = _result(_run(["-c", REGISTRY, str(n), mode], env)[1])
    return out


def _markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"# Speed (issue 19), {res['date']}",
        "",
        f"Machine: {m['cpu_count']} cores, {m['platform']}, Python {m['python']}; load average "
        f"at the start {m['load_average_start']}. Base: `{res['base_ref']}`.",
        "",
    ]
    if res.get("runs"):
        lines[-2:] = [
            f"Machine: {m['cpu_count']} cores, {m['platform']}, Python {m['python']}.",
            "",
            "The sections come from these runs (each measured base and new in one command):",
            "",
            *(
                f"- `{r['commit']}` ({r['date']}, base `{r.get('base_ref', res['base_ref'])}`, "
                f"load average at the start {r['machine']['load_average_start']}): "
                f"{', '.join(r['sections'])}"
                for r in res["runs"]
            ),
            "",
        ]
    if "validate" in res:
        v = res["validate"]
        lines += [
            f"- `netbayes validate`: base {v['base_median_s']} s, new {v['new_median_s']} s"
            f" (new/base {v['new_over_base']}); identical output: {v['identical_output']}."
        ]
    if "refit" in res:
        r = res["refit"]
        b, n = r["fits"]["base"], r["fits"]["new"]
        lines += [
            f"- Refit of the same PFS model in one process: compile of the second fit "
            f"base {b[1]['compile_s']:.2f} s, new {n[1]['compile_s']:.2f} s; its total "
            f"new/base {r['second_fit_new_over_base']} (first fits: compile "
            f"{b[0]['compile_s']:.1f} s and {n[0]['compile_s']:.1f} s)."
        ]
    if "compile_cache" in res:
        c = res["compile_cache"]
        b, n = c["base"]["second_process"], c["new"]["second_process"]
        lines += [
            f"- Compile of the default models in a new process, the second time on this machine: "
            f"PFS base {b['pfs']:.1f} s, new {n['pfs']:.1f} s "
            f"({c['pfs_second_process_new_over_base']}); toxicity base {b['toxicity']:.1f} s, "
            f"new {n['toxicity']:.1f} s ({c['toxicity_second_process_new_over_base']})."
        ]
    if "cold_start" in res:
        c = res["cold_start"]
        lines += [
            f"- Cold start, `netbayes predict` (bytecode compiled): base "
            f"{c['base_median_s']} s, new {c['new_median_s']} s, `import pymc` "
            f"{c['import pymc_median_s']} s: new/import pymc {c['new_over_import_pymc']}"
            f"; identical output: {c['identical_output']}."
        ]
        if "first_run_s" in c:
            lines[-1] += (
                f" New/base {c['new_over_base']}; `import numpy` alone "
                f"{c['import numpy_median_s']} s. The first run on a machine (it writes the "
                f"calibrated-ranges cache): base {c['first_run_s']['base']} s, new "
                f"{c['first_run_s']['new']} s. `--json`: the same keys "
                f"({c['json_keys_identical']}), numbers within "
                f"{c['json_max_abs_difference']:.1e} (the normal CDF in NumPy). Loaded by "
                f"the command: base {c['loaded_by_predict']['base']}, new "
                f"{c['loaded_by_predict']['new']}."
            )
        if "new_parts_median_s" in c:
            p = c["new_parts_median_s"]
            lines[-1] += (
                f" Where the new command's time goes (one process): `import numpy` "
                f"{p['import_numpy_s']} s, netbayes' command module {p['import_cli_s']} s, its "
                f"argument parser {p['parser_s']} s, the first command {p['first_command_s']} s "
                f"(the modules it imports, the stored draws, the answers); the answers alone (a "
                f"second command in the same process) {p['answers_s']} s, of which the seven "
                f"any-line quadratures (the answer and the six re-evaluations of its prior "
                f"share) {p['any_line_quadratures_s']} s."
            )
    if "fits" in res:
        for (tree, k), f in (
            ((t, m), res["fits"][t][m]) for m in ("pfs", "toxicity") for t in ("base", "new")
        ):
            ratio = f" (new/base {res['fits'][f'{k}_new_over_base']})" if tree == "new" else ""
            lines += [
                f"- Default fit, {k}, {tree}: {f['wall_s']:.1f} s wall{ratio} (compile "
                f"{f['compile_s']:.1f} s, sampling {f['sample_s']:.1f} s); "
                f"{f['mean_leapfrog_steps']:.1f} leapfrog steps per draw, "
                f"~{f['gradients_estimated']:.0f} gradients, "
                f"{f['ms_per_gradient_per_chain']:.3f} ms per gradient per core; "
                f"{f['divergences']} divergences, max R-hat {f['max_r_hat']:.3f}, "
                f"min bulk ESS {f['min_ess_bulk']:.0f}; target acceptance "
                f"{f['settings']['target_accept']}, adaptation "
                f"{f['settings'].get('adaptation', 'diag')}."
            ]
    if "batch" in res:
        b = res["batch"]
        n, nb, bb = b["new"]["n_patients"], b["new"], b["base"]
        k0, k1 = "summaries_prior_share_False_s", "summaries_prior_share_True_s"
        lines += [
            f"- `Predictor.summaries`, {n:,} R-PRRT patients: without the prior share base "
            f"{bb[k0]:.1f} s, new {nb[k0]:.1f} s (new/base "
            f"{b['new_over_base_prior_share_False']}); with it base {bb[k1]:.1f} s, new "
            f"{nb[k1]:.1f} s (new/base {b['new_over_base_prior_share_True']}); x10 for 100,000 "
            f"patients. A plain numpy.partition of every answer's 4000 draws (3 order "
            f"statistics, 7 answers) would take {nb['partition_floor_100k_s']:.0f} s per "
            "100,000 patients on one core; the summaries select among the draws that can hold "
            "them."
        ]
        if "per_line_cdf_floor_100k_s" in nb:
            lines[-1] += (
                " The answers' means need every draw's value: for 100,000 patients the 1.2e9 "
                "normal CDFs of the three per-line grade >= III probabilities take "
                f"{nb['per_line_cdf_floor_100k_s']:.0f} s on one core (`netbayes.normal.ndtr`) "
                "and the 8e8 Weibull survival probabilities at 12 and 24 months "
                f"{nb['weibull_sf_floor_100k_s']:.0f} s, before any order statistic, median "
                "PFS or any-line answer."
            )
    if "jax" in res and "skipped" not in res["jax"]:
        j = res["jax"]
        lines += [
            f"- PFS model, nutpie backends (1 chain x 200 iterations): JAX "
            f"{j['jax']['compile_s']:.1f} s compile, {j['jax']['ms_per_gradient']:.3f} ms "
            f"per gradient; numba {j['numba']['compile_s']:.1f} s, "
            f"{j['numba']['ms_per_gradient']:.3f} ms (JAX {j['jax_version']})."
        ]
    if "registry" in res:
        r = res["registry"]
        for n in (1_000, 10_000, 100_000):
            parts = [
                f"{mode.lower()} {r[f'{n}_{mode}']['ms_per_gradient']:.2f} ms (build and first "
                f"call {r[f'{n}_{mode}']['build_and_first_call_s']:.1f} s)"
                for mode in ("NUMBA", "JAX")
                if f"{n}_{mode}" in r
            ]
            lines += [f"- PFS model with {n:,} user rows, one gradient: " + "; ".join(parts) + "."]
    if "registry_fit" in res:
        r = res["registry_fit"]
        f, b = r["new"], r["base"]
        if "not_finished_after_s" in b:
            before = f"base not finished after {b['not_finished_after_s']:.0f} s"
        elif "failed" in b:
            before = f"base failed: {b['failed'].strip().splitlines()[-1:]}"
        else:
            before = (
                f"base {b['wall_s']:.0f} s ({b['divergences']} divergences, max R-hat "
                f"{b['max_r_hat']:.3f}, min bulk ESS {b['min_ess_bulk']:.0f})"
            )
        lines += [
            f"- Default PFS fit with {r['n_rows']:,} user rows (4 x 1000 draws): new "
            f"{f['wall_s']:.0f} s (compile {f['compile_s']:.0f} s, sampling {f['sample_s']:.0f} "
            f"s; {f['mean_leapfrog_steps']:.1f} leapfrog steps per draw); {f['divergences']} "
            f"divergences, max R-hat {f['max_r_hat']:.3f}, min bulk ESS {f['min_ess_bulk']:.0f} "
            f"({f['slowest']}); {before}."
        ]
    return "\n".join(lines) + "\n"


SECTIONS = (
    "validate", "refit", "compile_cache", "cold_start", "fits", "batch", "jax", "registry",
    "registry_fit",
)  # fmt: skip


def _merged(old: dict[str, Any], new: dict[str, Any], sections: tuple[str, ...]) -> dict[str, Any]:
    """``old`` results with ``new``'s sections, and ``new``'s run added to ``runs``."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    runs = [
        {**r, "sections": [x for x in r["sections"] if x not in sections]}
        for r in old.get("runs", [])
    ]
    runs = [r for r in runs if r["sections"]]
    runs.append({"commit": commit + ("+uncommitted src" if dirty else ""), "date": new["date"],
                 "base_ref": new["base_ref"], "machine": new["machine"],
                 "sections": list(sections)})  # fmt: skip
    out = {k: v for k, v in old.items() if k != "runs"}
    out.update({k: v for k, v in new.items() if k in sections})
    out["date"], out["machine"], out["runs"] = new["date"], new["machine"], runs
    out["base_ref"] = new["base_ref"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-ref", required=True, help="git commit of the code before")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sections", nargs="+", default=["all"], choices=["all", *SECTIONS])
    ap.add_argument("--registry-rows", type=int, default=100_000)
    ap.add_argument("--registry-base-limit", type=float, default=600.0,
                    help="seconds after which the base code's registry fit is stopped")  # fmt: skip
    ap.add_argument("--merge", action="store_true",
                    help="keep the other sections of the results file, replace those run and "
                    "record this run (commit, date, machine) in its 'runs'")  # fmt: skip
    a = ap.parse_args()
    todo = SECTIONS if "all" in a.sections else tuple(a.sections)
    res: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "base_ref": a.base_ref,
        "machine": {
            "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        },
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base),
                        a.base_ref], check=True)  # fmt: skip
        trees = {"base": base / "src", "new": ROOT / "src"}
        try:
            for s in todo:
                print(f"speed: {s} ...", flush=True)
                t0 = time.perf_counter()
                if s == "validate":
                    res[s] = validate(trees, a.runs)
                elif s == "refit":
                    res[s] = refit(trees)
                elif s == "cold_start":
                    res[s] = cold_start(trees, a.runs)
                elif s == "compile_cache":
                    res[s] = compile_cache(trees)
                elif s == "fits":
                    res[s] = fits(trees)
                elif s == "batch":
                    res[s] = batch(trees)
                elif s == "registry":
                    res[s] = registry()
                elif s == "registry_fit":
                    res[s] = registry_fit(trees, a.registry_rows, a.registry_base_limit)
                else:
                    res[s] = jax_backend()
                print(f"speed: {s} done in {time.perf_counter() - t0:.0f} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=True)  # fmt: skip
    res["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    old = {}  # the run is recorded (commit, date, machine) with its sections either way
    if a.merge and (RESULTS / "speed.json").is_file():
        old = json.loads((RESULTS / "speed.json").read_text())
    res = _merged(old, res, todo)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps(res, indent=2) + "\n")
    text = _markdown(res)
    (RESULTS / "speed.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
