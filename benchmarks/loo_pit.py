"""Cross-validated (PSIS-LOO) PIT check of the stored posteriors, with its figure and README block.

    python benchmarks/loo_pit.py                  # the shipped posteriors (about 1 minute)
    python benchmarks/loo_pit.py --models-dir DIR # a folder of your own
    python benchmarks/loo_pit.py --readme         # also rewrite the README's generated block

Writes to ``benchmarks/results/`` (``--out``):

* ``loo_pit.csv``: every published figure with its leave-one-out predictive median and 95%
  interval, PIT and Pareto k-hat (:data:`netbayes.checks.loo.LOO_COLUMNS`);
* ``loo_pit_summary.md``: per endpoint the PIT bins against uniform, the KS and chi-square
  p-values, the shares inside the central 50/80/95% intervals, the worst k-hats, next to the
  in-sample "n/n inside" it replaces;
* ``loo_pit.png``: the PIT histograms (:func:`netbayes.plots.plot_pit_histogram`).

``--readme`` replaces the text between ``<!-- loo-summary -->`` and ``<!-- /loo-summary -->``
in ``README.md`` with the summary's sentences, so the README's numbers are generated, never
typed. The method is in ``docs/validation.md``.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from netbayes.checks.psis import KHAT_OK
from netbayes.plots import plot_pit_histogram
from netbayes.validation import loo_validation, validate

ROOT = Path(__file__).resolve().parents[1]


def summary_markdown(summ: pd.DataFrame, in_sample: pd.DataFrame, table: pd.DataFrame) -> str:
    """The summary table (Markdown) with the in-sample count per endpoint beside it."""
    endpoint_of = {"Table 5 PFS median": "PFS", "Table 5 OS median": "OS", "188Re-HEDP OS": "OS"}
    ins = in_sample.assign(endpoint=in_sample["check"].map(endpoint_of).fillna("toxicity"))
    lines = [
        "| endpoint | figures | PIT bins (5, expected) | KS p | chi-square p | central 50/80/95% "
        "| max k-hat | k-hat > 0.7 | in-sample inside 95% |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summ.itertuples(index=False):
        g = ins if r.endpoint == "all" else ins[ins["endpoint"] == r.endpoint]
        cov = "/".join(f"{getattr(r, f'inside_central_{q}'):.0%}" for q in (50, 80, 95))
        lines.append(
            f"| {r.endpoint} | {r.figures} | {' '.join(map(str, r.pit_bins))} "
            f"({r.expected_per_bin:.1f}) | {r.ks_p:.2f} | {r.chi2_p:.2f} | {cov} | "
            f"{r.max_khat:.2f} | {r.khat_high} | {int(g['inside'].sum())}/{len(g)} |"
        )
    high = table[table["khat"] > KHAT_OK].sort_values("khat", ascending=False)
    lines += ["", f"Figures whose term has k-hat > {KHAT_OK} (importance weights unreliable):", ""]
    lines += [f"- {r.figure}: k-hat {r.khat:.2f}, PIT {r.pit:.3f}" for r in high.itertuples()]
    return "\n".join(lines) + "\n"


def readme_block(summ: pd.DataFrame, in_sample: pd.DataFrame) -> str:
    """The README's generated sentences (one bullet per endpoint)."""
    total = summ[summ["endpoint"] == "all"].iloc[0]
    out = [
        f"- **Every published figure, cross-validated** (`netbayes validate`; "
        f"`benchmarks/loo_pit.py`, `docs/validation.md`): each of the {total.figures} figures "
        "is scored under the leave-one-out predictive of the model without its likelihood "
        'term (PSIS-LOO; the 8 "all tumours" medians, held out of the likelihood but not '
        "independent, under the posterior predictive). PIT bins of 0.2 against uniform "
        "(expected count in brackets), KS and chi-square p-values, share inside the central "
        "50/80/95% leave-one-out intervals:"
    ]
    for r in summ.itertuples(index=False):
        cov = "/".join(f"{getattr(r, f'inside_central_{q}'):.0%}" for q in (50, 80, 95))
        out.append(
            f"  - {r.endpoint}: {r.figures} figures, bins {list(r.pit_bins)} "
            f"({r.expected_per_bin:.1f}), KS p = {r.ks_p:.2f}, chi-square p = {r.chi2_p:.2f}, "
            f"{cov}; worst k-hat {r.max_khat:.2f} ({r.khat_high} figures above 0.7)."
        )
    out.append(
        f"  The in-sample check it replaces (`netbayes validate --in-sample`) had "
        f"{int(in_sample['inside'].sum())}/{len(in_sample)} figures inside their 95% intervals, "
        'each against a fit that had seen it (or, for the "all tumours" rows, its patients).'
    )
    wrapped = [textwrap.fill(out[0], 100, subsequent_indent="  ")]
    wrapped += [textwrap.fill(x, 100, subsequent_indent="    ") for x in out[1:-1]]
    wrapped.append(textwrap.fill(out[-1], 100, initial_indent="", subsequent_indent="  "))
    return "\n".join(wrapped)


def main() -> None:
    """Run the check, write the results, optionally rewrite the README block."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--readme", action="store_true", help="rewrite README.md's generated block")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table, summ = loo_validation(args.models_dir)
    in_sample = validate(args.models_dir)
    table.to_csv(out / "loo_pit.csv", index=False)
    (out / "loo_pit_summary.md").write_text(
        "# Cross-validated (PSIS-LOO) PIT check\n\n"
        "Generated by `python benchmarks/loo_pit.py`; method in `docs/validation.md`.\n\n"
        + summary_markdown(summ, in_sample, table)
    )
    plot_pit_histogram(table[table["endpoint"].isin(["PFS", "OS", "toxicity"])],
                       path=str(out / "loo_pit.png"))  # fmt: skip
    print(summary_markdown(summ, in_sample, table))
    if args.readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        pat = re.compile(r"(<!-- loo-summary -->\n).*?(\n<!-- /loo-summary -->)", re.S)
        if not pat.search(text):
            raise SystemExit("README.md has no <!-- loo-summary --> block")
        readme.write_text(pat.sub(lambda m: m[1] + readme_block(summ, in_sample) + m[2], text))
        print(f"rewrote the generated block of {readme}")


if __name__ == "__main__":
    main()
