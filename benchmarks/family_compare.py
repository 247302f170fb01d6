"""A second survival family on the published data: log-normal against the shipped Weibull.

    python benchmarks/family_compare.py [--out DIR]

Fits ``SurvivalModel(endpoint, family="lognormal")`` for PFS and OS with the shipped settings
(4 chains x 1000 draws, seed 20261121), saves both into ``--out`` (default a temporary folder),
runs the survival checks of ``netbayes validate`` on them and on the shipped Weibull
posteriors, predicts the README patient with each, and writes
``results/family_compare.md``: fit time, divergences, R-hat, ESS, figures inside, mean width of
the 95% predictive intervals per check, and the held-out "all tumours" rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATIENT = dict(
    tumour_type="midgut", line="R-PRRT", prior_pfs_months=30, prior_gbq=29.9, planned_gbq=14.9
)


def main() -> int:
    from netbayes.models.survival import SurvivalModel
    from netbayes.predict import Predictor
    from netbayes.store import load_posterior
    from netbayes.validation import results_table, run_checks

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="folder for the log-normal fits")
    args = p.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="lognormal-"))
    lines = ["# Log-normal against the shipped Weibull (published data)", ""]
    lines += [
        "| endpoint | seconds | divergences | max R-hat | min bulk ESS |",
        "|---|---|---|---|---|",
    ]
    for ep in ("pfs", "os"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = SurvivalModel(ep, family="lognormal").fit(seed=20261121, progress=False)
        d = fit.diagnostics
        lines.append(
            f"| {ep} | {time.perf_counter() - t0:.0f} | {fit.n_divergences} | "
            f"{d['r_hat'].max():.3f} | {d['ess_bulk'].min():.0f} |"
        )
        fit.save(out, overwrite=True)
    lines += ["", "| family | check | inside | mean 95% PI width |", "|---|---|---|---|"]
    held = {}
    for fam, folder in (("weibull", None), ("lognormal", out)):
        res = run_checks(
            survival_pfs=load_posterior("survival-pfs", folder),
            survival_os=load_posterior("survival-os", folder),
        )
        for r in res:
            w = float((r.table["pi95_upper"] - r.table["pi95_lower"]).mean())
            lines.append(f"| {fam} | {r.name} | {r.n_inside}/{r.n} | {w:.1f} |")
        t = results_table(res)
        held[fam] = t[~t["in_likelihood"].astype(bool)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = Predictor.load("pfs", folder, toxicity=False)
        held[fam + " patient"] = pred.patient(**PATIENT).sentence()
    lines += ["", "README patient:", ""]
    lines += [f"- {fam}: {held[fam + ' patient']}" for fam in ("weibull", "lognormal")]
    lines += [
        "",
        "Held-out 'all tumours' rows (published; Weibull; log-normal median [95% PI]):",
        "",
    ]
    w, ln = held["weibull"].reset_index(drop=True), held["lognormal"].reset_index(drop=True)
    for i in range(len(w)):
        lines.append(
            f"- {w.loc[i, 'figure']}: {w.loc[i, 'published']:.1f}; "
            f"{w.loc[i, 'predicted_median']:.1f} [{w.loc[i, 'pi95_lower']:.1f}-"
            f"{w.loc[i, 'pi95_upper']:.1f}]; {ln.loc[i, 'predicted_median']:.1f} "
            f"[{ln.loc[i, 'pi95_lower']:.1f}-{ln.loc[i, 'pi95_upper']:.1f}]"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results" / "family_compare.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
