"""Print the tables of docs/prior_share.md from the stored posteriors (no MCMC).

    PYTHONPATH=src python tools/prior_share_tables.py [MODELS_DIR]

Prints Markdown: the SD ratio of every parameter element the predictions use (per model), and
the prior shares of the README patient and of the issue-16 patient (29.6 GBq cumulative) for
each centre choice. Rerun it after a refit and paste its output into the document.
"""

from __future__ import annotations

import sys
import warnings

from netbayes.predict import Predictor

README = dict(tumour_type="midgut", line="R-PRRT", prior_pfs_months=30.0, prior_gbq=29.9,
              planned_gbq=14.9)  # fmt: skip
ISSUE = dict(README, prior_gbq=14.7)  # 14.7 + 14.9 = 29.6 GBq cumulative


def main(folder: str | None = None) -> None:
    pred = Predictor.load("pfs", folder)
    pp = pred.prior_parameters("new")
    print(f"Priors from: {pp.attrs['prior_source']}\n")
    print("| model | parameter | prior | kind | prior SD | posterior SD | SD ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in pp.itertuples():
        mark = " **(prior-dominated)**" if r.prior_dominated else ""
        print(f"| {r.model} | `{r.parameter}` | {r.prior} | {r.kind} | {r.prior_sd:.3g} | "
              f"{r.posterior_sd:.3g} | {r.sd_ratio:.2f}{mark} |")  # fmt: skip
    for name, patient in (("README patient (44.8 GBq cumulative)", README),
                          ("issue-16 patient (29.6 GBq cumulative)", ISSUE)):  # fmt: skip
        print(f"\n**{name}**\n")
        print("| centre | answer | posterior median (95% ETI) | prior share | by parameter |")
        print("|---|---|---|---|---|")
        for centre in ("new", "rotterdam2019", "typical"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = pred.patient(**patient, centre=centre)
            lo, hi = p.interval.columns
            for (_, s), (_, r) in zip(p.summary.iterrows(), p.prior_share.iterrows(),
                                      strict=True):  # fmt: skip
                what = r.quantity + (f" ({r.t_months:g} mo)" if r.quantity.endswith("_gt")
                                     else f" ({r.cell_line})" if r.quantity == "p_grade3plus"
                                     else "")  # fmt: skip
                parts = ", ".join(f"`{k}` {100 * v:.0f}%" for k, v in
                                  sorted(r.parameters.items(), key=lambda kv: -kv[1])
                                  if v >= 0.005) or "-"  # fmt: skip
                f = ".1f" if s["unit"] == "months" else ".3f"
                print(f"| {centre} | {what} | {s['median']:{f}} ({s[lo]:{f}}-{s[hi]:{f}}) | "
                      f"{100 * r.share:.0f}% | {parts} |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
