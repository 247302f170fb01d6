"""What coarser quadratures would buy the default fits (issue 19, item 1), and what they cost.

The default fits' gradients are dominated by the models' own quadratures: the survival model's
prior-PFS grid (``SurvivalModel(n_grid=16)``: the KM-median order statistics of Table 5 over 16
prior-PFS nodes, 8 for the nested RR-PRRT grid) and the toxicity model's 64-node quadrature of
Table 6's pattern probabilities (``ToxicityModel(n_nodes=64)``). Halving them changes the
models' numbers; this measures by how much against the time saved, with the default settings
otherwise (4 x 1000 draws, the default seed, a warm compile cache: each model is compiled once
in a process of its own before the timed fit).

Per setting: wall time, sampling time, gradients, divergences, R-hat, bulk ESS, and the move of
each scalar parameter's posterior mean from the default setting's in units of the pair's Monte
Carlo SE (``sqrt(mcse_a^2 + mcse_b^2)``, mcse = SD / sqrt(bulk ESS)) and of its posterior SD.

Usage::

    python benchmarks/grid_tradeoff.py            # writes results/grid_tradeoff.{json,md}
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed  # noqa: E402  (its process helpers)

OUT = ROOT / "benchmarks" / "results"

SETTINGS = [("pfs", 16), ("pfs", 8), ("toxicity", 64), ("toxicity", 32)]

FIT = """
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from netbayes.models.survival import SurvivalModel
from netbayes.models.toxicity import ToxicityModel
model, n, warm = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "warm"
def make():
    return SurvivalModel("pfs", n_grid=n) if model == "pfs" else ToxicityModel(n_nodes=n)
if warm:  # compile once (the timed fit then loads it from the cache, as a user's second fit)
    make().fit(draws=20, tune=20, chains=1, progress=False, seed=1)
    print("RESULT", json.dumps({}))
    raise SystemExit
t0 = time.perf_counter()
f = make().fit(progress=False)
wall = time.perf_counter() - t0
ss = f.posterior["sample_stats"].dataset
grads = int(ss["n_steps"].sum()) + int(f.posterior["warmup_sample_stats"].dataset["n_steps"].sum())
d = f.all_draws()
ess = f.diagnostics["ess_bulk"]
scalars = {}
for k, v in d.items():
    v = np.asarray(v, float)
    if v.ndim == 1 and k in ess.index:
        scalars[k] = {"mean": float(v.mean()), "sd": float(v.std()), "ess": float(ess[k])}
print("RESULT", json.dumps({
    "model": model, "n": n, "wall_s": wall, "compile_s": f.seconds["compile"],
    "sample_s": f.seconds["sample"], "gradients": grads, "divergences": f.n_divergences,
    "max_r_hat": float(f.diagnostics["r_hat"].max()), "min_ess_bulk": float(ess.min()),
    "scalars": scalars}))
"""


def _fit(*args: str) -> dict[str, Any]:
    """One fit of ``FIT`` in a new process, on this tree's sources (``speed.py``'s helpers)."""
    return speed._result(speed._run(["-c", FIT, *args], speed._env(ROOT / "src"))[1])


def _moves(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per scalar: the move of the mean from ``a`` to ``b`` in MCSE and in posterior SD."""
    out = {}
    for k, x in a["scalars"].items():
        y = b["scalars"].get(k)
        if y is None or x["sd"] == 0:
            continue
        mcse = (x["sd"] ** 2 / x["ess"] + y["sd"] ** 2 / y["ess"]) ** 0.5
        diff = y["mean"] - x["mean"]
        out[k] = {"mcse": diff / mcse, "sd": diff / x["sd"]}
    return out


def main() -> None:
    res: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}",
        "load_average_at_start": list(os.getloadavg()),
        "fits": [],
    }
    for model, n in SETTINGS:
        _fit(model, str(n), "warm")
        r = _fit(model, str(n), "time")
        print(f"{model} {n}: {r['wall_s']:.1f} s", file=sys.stderr, flush=True)
        res["fits"].append(r)
    by = {(r["model"], r["n"]): r for r in res["fits"]}
    res["moves"] = {
        "pfs": _moves(by[("pfs", 16)], by[("pfs", 8)]),
        "toxicity": _moves(by[("toxicity", 64)], by[("toxicity", 32)]),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "grid_tradeoff.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [
        f"# Coarser quadratures in the default fits ({res['date']})",
        "",
        f"Machine: {res['machine']}; load average at the start {res['load_average_at_start']}.",
        "",
        "| model | nodes | wall s | sampling s | gradients | divergences | max R-hat | "
        "min bulk ESS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["fits"]:
        lines.append(
            f"| {r['model']} | {r['n']} | {r['wall_s']:.1f} | {r['sample_s']:.1f} | "
            f"{r['gradients']} | {r['divergences']} | {r['max_r_hat']:.3f} | "
            f"{r['min_ess_bulk']:.0f} |"
        )
    lines.append("")
    for m, mv in res["moves"].items():
        worst = sorted(mv.items(), key=lambda kv: -abs(kv[1]["mcse"]))[:4]
        lines.append(
            f"- {m}: largest moves of a posterior mean (coarse against default): "
            + "; ".join(f"{k} {v['mcse']:+.1f} MCSE ({v['sd']:+.2f} SD)" for k, v in worst)
            + "."
        )
    (OUT / "grid_tradeoff.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
