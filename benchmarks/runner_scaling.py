"""Simulation studies on Dask: the same SBC study before the change, after it in one process,
and on a two-worker local Dask cluster, in one run (issue 19, item 5).

The study is :func:`benchmarks.sbc.run_sbc` of the toxicity model: ``--reps`` replicates with
short chains. Three variants, each in a fresh Python process (so each pays its own imports
and model compilation, as a user's run would):

``before``
    ``benchmarks/sbc.py`` as committed at ``--before-ref``, extracted with ``git show`` and run
    as it was: by default the parent of the commit that added ``src/netbayes/runner.py`` (or
    ``HEAD`` while that is uncommitted), the sequential loop before :mod:`netbayes.runner`.
``sequential``
    the current ``run_sbc`` with ``workers=1``: in-process, no Dask.
``dask2``
    the current ``run_sbc`` with ``workers=2``: an embedded ``LocalCluster`` of two
    single-thread worker processes, each compiling the model once and fitting with
    ``cores_per_task`` cores (1 on two cores, where a sequential fit gets 2).

Each variant's wall time covers the whole ``run_sbc`` call (compilation included; not the
interpreter's start), and the sum of its fits' sampling seconds is recorded too. The
per-replicate results (every rank, divergences, R-hat, ESS, tree-depth share: every column but
the timing) must be identical across the variants; the script exits with status 1 if not.

Usage::

    python benchmarks/runner_scaling.py [--reps 8] [--draws 200] [--tune 200]

Writes ``benchmarks/results/runner_scaling.json``: per variant ``wall_s`` and
``sampling_s``; ``ratio_before_over_dask2`` (> 1: the Dask run is faster),
``ratio_before_over_sequential`` and ``ratio_sequential_over_dask2``; ``identical`` (per
variant pair); the machine (CPU count, load average at start and end) and a ``note``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = ("before", "sequential", "dask2")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _one(a: argparse.Namespace) -> None:
    """Run one variant in this process; write its table (CSV) and timings (JSON)."""
    import pandas as pd

    path = ROOT / "benchmarks" / "sbc.py" if a.variant != "before" else Path(a.before_file)
    sbc = _load(path, f"sbc_{a.variant}")
    kw = {"workers": 2} if a.variant == "dask2" else {}
    settings = {"draws": a.draws, "tune": a.tune, "chains": a.chains}
    t0 = time.perf_counter()
    res = sbc.run_sbc("toxicity", a.reps, seed=a.seed, settings=settings, verbose=True, **kw)
    wall = time.perf_counter() - t0
    res = pd.DataFrame(res).sort_values("rep").reset_index(drop=True)
    res.to_csv(a.out / f"{a.variant}.csv", index=False)
    (a.out / f"{a.variant}.json").write_text(
        json.dumps({"wall_s": wall, "sampling_s": float(res["seconds"].sum())})
    )


def _machine() -> dict:
    import dask
    import nutpie
    import pymc

    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "dask": dask.__version__,
        "nutpie": nutpie.__version__,
        "pymc": pymc.__version__,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--tune", type=int, default=200)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=61)
    ap.add_argument("--before-ref", default=None, help="git ref of the code before the change")
    ap.add_argument("--out", type=Path, default=RESULTS / "runner_scaling.json")
    ap.add_argument("--note", default="", help="a sentence stored with the results")
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--before-file", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.variant:  # a child process
        a.out = Path(a.out)
        _one(a)
        return 0

    import pandas as pd

    if a.before_ref is None:
        added = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%H", "--", "src/netbayes/runner.py"],
            cwd=ROOT, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        a.before_ref = f"{added[-1]}^" if added else "HEAD"
    tmp = Path(tempfile.mkdtemp(prefix="runner_scaling_"))
    before = tmp / "sbc_before.py"
    before.write_text(
        subprocess.run(
            ["git", "show", f"{a.before_ref}:benchmarks/sbc.py"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", a.before_ref], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    load_start = os.getloadavg()
    times, tables = {}, {}
    for v in VARIANTS:
        print(f"== {v}", file=sys.stderr, flush=True)
        cmd = [
            sys.executable, __file__, "--variant", v, "--out", str(tmp), "--before-file",
            str(before), "--reps", str(a.reps), "--draws", str(a.draws), "--tune", str(a.tune),
            "--chains", str(a.chains), "--seed", str(a.seed),
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
        times[v] = json.loads((tmp / f"{v}.json").read_text())
        tables[v] = pd.read_csv(tmp / f"{v}.csv").drop(columns=["seconds"])
    load_end = os.getloadavg()
    identical = {
        f"{x}_vs_{y}": bool(tables[x].equals(tables[y]))
        for x, y in (("before", "sequential"), ("before", "dask2"), ("sequential", "dask2"))
    }
    w = {v: times[v]["wall_s"] for v in VARIANTS}
    out = {
        "study": (
            f"SBC of the toxicity model (benchmarks/sbc.py run_sbc): {a.reps} replicates, "
            f"{a.chains} chains x {a.draws} draws after {a.tune} tuning, seed {a.seed}"
        ),
        "before_ref": a.before_ref,
        "before_commit": commit,
        "variants": {
            "before": "benchmarks/sbc.py at before_ref: the sequential loop, in-process",
            "sequential": "run_sbc(workers=1): in-process through netbayes.runner",
            "dask2": "run_sbc(workers=2): LocalCluster, 2 single-thread worker processes",
        },
        "wall_s": w,
        "sampling_s": {v: times[v]["sampling_s"] for v in VARIANTS},
        "ratio_before_over_dask2": w["before"] / w["dask2"],
        "ratio_before_over_sequential": w["before"] / w["sequential"],
        "ratio_sequential_over_dask2": w["sequential"] / w["dask2"],
        "identical": identical,
        "replicates_compared": len(tables["before"]),
        "columns_compared": [c for c in tables["before"].columns],
        "load_average_start": load_start,
        "load_average_end": load_end,
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "note": a.note,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0 if all(identical.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
