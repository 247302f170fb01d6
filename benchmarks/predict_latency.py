"""Latency of patient predictions from the shipped posteriors (in-process and CLI cold start).

Measures, on this machine:

* ``in_process``: loading the stored posteriors (``Predictor.load``) and one-patient predictions
  (``Predictor.patient``, 4000 draws), median of repeated calls;
* ``cli_cold_start``: wall time of ``netbayes predict ...`` in a fresh process (the console
  script, or ``python -m netbayes.cli`` if it is not on the path), several runs;
* ``import_pymc``: wall time of ``python -c "import pymc"`` for comparison (what the CLI would
  pay if it imported the model builders), against ``python -c "pass"``;
* for each cold start also the median CPU time of the child process (on a loaded, shared
  machine the wall time includes waiting for a core; the CPU time does not);
* whether the CLI process imported PyMC, PyTensor, ArviZ or nutpie (it must not).

Writes ``benchmarks/results/predict_latency.json``. Run from the repository root::

    python benchmarks/predict_latency.py [--runs 7]

Timings depend on the machine and its load (reported in the output); the target is a CLI
answer under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PATIENT = dict(
    tumour_type="midgut", prior_pfs_months=30.0, prior_gbq=29.9, planned_gbq=14.9, line="R-PRRT"
)
CLI_ARGS = [
    "predict",
    "--tumour-type",
    "midgut",
    "--prior-pfs",
    "30",
    "--prior-gbq",
    "29.9",
    "--planned-gbq",
    "14.9",
    "--line",
    "R-PRRT",
]
HEAVY = ("pymc", "pytensor", "arviz", "nutpie")


_CPU: list[float] = []  # CPU seconds (user + system) of each child run, in _wall order


def _wall(cmd: list[str]) -> float:
    """Wall time of one run of ``cmd``; its CPU time is appended to ``_CPU``."""
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    _CPU.append(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return dt


def _timed(cmd: list[str], runs: int) -> dict[str, float | list[float]]:
    """Wall and CPU statistics of ``runs`` cold starts of ``cmd``.

    On a loaded machine the wall time exceeds the CPU time (waiting for a core); the CPU time
    is close to what an idle machine's wall time would be.
    """
    del _CPU[:]
    walls = [_wall(cmd) for _ in range(runs)]
    return _stats(walls) | {"cpu_median_s": round(statistics.median(_CPU), 4)}


def _stats(xs: list[float]) -> dict[str, float | list[float]]:
    return {
        "median_s": round(statistics.median(xs), 4),
        "min_s": round(min(xs), 4),
        "max_s": round(max(xs), 4),
        "runs_s": [round(x, 4) for x in xs],
    }


def heavy_modules_imported(python: str) -> list[str]:
    """Which of :data:`HEAVY` a fresh ``python`` process has imported after the CLI prediction."""
    probe = (
        "import sys, io, contextlib\n"
        "from netbayes.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main({CLI_ARGS!r})\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    r = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in r.stdout.strip().split(",") if m]


def main() -> None:
    """Run the benchmark and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="repetitions of each cold-start timing")
    args = ap.parse_args()

    # in-process
    t0 = time.perf_counter()
    from netbayes.predict import Predictor

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = Predictor.load()
    t_load = time.perf_counter() - t0
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        p = pred.patient(**PATIENT)
        times.append(time.perf_counter() - t0)
    sentence = p.sentence()

    # CLI cold start
    exe = shutil.which("netbayes", path=str(Path(sys.executable).parent))
    cli = [exe] if exe else [sys.executable, "-m", "netbayes.cli"]
    _wall([*cli, *CLI_ARGS])  # warm the OS file cache once
    cli_stats = _timed([*cli, *CLI_ARGS], args.runs)
    json_stats = _timed([*cli, *CLI_ARGS, "--json"], args.runs)
    heavy = heavy_modules_imported(sys.executable)

    # comparison: the interpreter alone and import pymc
    base = _timed([sys.executable, "-c", "pass"], args.runs)
    pymc_stats = _timed([sys.executable, "-c", "import pymc"], 3)

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {
        "what": "netbayes predict latency (shipped posteriors, one patient)",
        "patient": PATIENT,
        "sentence": sentence,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15": None if load is None else [round(x, 2) for x in load],
        },
        "in_process": {
            "import_netbayes_predict_s": round(t_import, 4),
            "load_posteriors_s": round(t_load, 4),
            "n_draws": pred.n_draws,
            "one_patient": _stats(times),
        },
        "cli_command": " ".join(["netbayes" if exe else "python -m netbayes.cli", *CLI_ARGS]),
        "cli_cold_start_table": cli_stats,
        "cli_cold_start_json": json_stats,
        "cli_imported_heavy_modules": heavy,
        "python_startup": base,
        "import_pymc": pymc_stats,
        "target_s": 1.0,
        "cli_under_target": cli_stats["median_s"] < 1.0,
    }
    out = Path(__file__).resolve().parent / "results" / "predict_latency.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if heavy:
        raise SystemExit(f"the CLI imported {heavy}: predictions must not import PyMC")


if __name__ == "__main__":
    main()
