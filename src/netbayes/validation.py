"""Every published calibration figure against its 95% posterior predictive interval.

One table for ``netbayes validate`` and for papers' supplements: Rotterdam Table 5 PFS and OS
medians (each row's KM median of a simulated cohort of its size), Table 6 grade III and IV
counts (per line and any, per phase), the 188Re-HEDP per-cycle grade counts and each 188Re-HEDP
patient's OS. Each row names the figure, its source (paper, table, row), the published value,
the predicted median with its 95% predictive interval, whether the figure lies inside, and
whether it was in the likelihood (the "all tumours" medians are held out).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from netbayes.data import load_table
from netbayes.intervals import DEFAULT_INTERVAL

__all__ = ["VALIDATION_COLUMNS", "validate", "validation_table"]

VALIDATION_COLUMNS = [
    "check",
    "figure",
    "source",
    "published",
    "predicted_median",
    "pi95_lower",
    "pi95_upper",
    "inside",
    "in_likelihood",
]
"""Columns of :func:`validation_table` (the interval is a 95% equal-tailed predictive one)."""


def _sources() -> dict[tuple[str, str], str]:
    """(table, row_id) -> "paper: location" from ``data/sources.csv``."""
    s = load_table("sources")
    return {
        (str(f).removesuffix(".csv"), str(rid)): f"{paper}: {str(loc).split(' (')[0]}"
        for f, rid, paper, loc in s[["file", "row_id", "paper", "location"]].itertuples(index=False)
    }


def _draws(src: Any) -> dict[str, np.ndarray]:
    if isinstance(src, Mapping):
        return {k: np.asarray(v) for k, v in src.items()}
    return src.all_draws()


def _survival_rows(draws: Mapping[str, np.ndarray], endpoint: str, src: dict) -> pd.DataFrame:
    from netbayes.ppc import survival_ppc_table

    t = survival_ppc_table(dict(draws), endpoint)
    label = "PFS" if endpoint == "pfs" else "OS"
    return pd.DataFrame(
        {
            "check": f"Table 5 {label} median",
            "figure": [
                f"{label} {g} {ln} {ty} (n={n}) median, months"
                for g, ln, ty, n in t[["group", "line", "tumour_type", "n"]].itertuples(index=False)
            ],
            "source": [src.get(("rotterdam_survival", r), "") for r in t["row_id"]],
            "published": t["published_median_months"],
            "predicted_median": t["predicted_median_months"],
            "pi95_lower": t["pi95_eti_lower_months"],
            "pi95_upper": t["pi95_eti_upper_months"],
            "inside": t["inside_pi95"],
            "in_likelihood": t["in_likelihood"],
        }
    )


def _re188_os_rows(draws: Mapping[str, np.ndarray], src: dict) -> pd.DataFrame:
    from netbayes.ppc import re188_os_ppc_table

    t = re188_os_ppc_table(dict(draws))
    fig = [
        f"188Re-HEDP patient {p} ({ty}) OS, months" + ("" if e else " (censored)")
        for p, ty, e in t[["patient", "tumour_type", "os_event"]].itertuples(index=False)
    ]
    return pd.DataFrame(
        {
            "check": "188Re-HEDP OS",
            "figure": fig,
            "source": [src.get(("re188_patients", str(p)), "") for p in t["patient"]],
            "published": t["os_months"],
            "predicted_median": t["predicted_median_months"],
            "pi95_lower": t["pi95_eti_lower_months"],
            "pi95_upper": t["pi95_eti_upper_months"],
            "inside": t["inside_pi95"],
            "in_likelihood": True,
        }
    )


_T6_PHASE = {
    "control I-PRRT": "contr_iprrt",
    "I-PRRT": "retre_iprrt",
    "R-PRRT": "retre_rprrt",
    "RR-PRRT": "retre_rrprrt",
}


def _toxicity_source(src: dict, source: str, phase: str, line: str, grade: Any) -> str:
    g = int(grade)
    if "188" in source:
        key = ("re188_toxicity_per_cycle", f"t2_cycle_{line}_g{g}")
        derived = "re188pilot: Table 2, per-cycle column (grade 0 derived: cycles minus I-IV)"
        return src.get(key, derived)
    return src.get(("rotterdam_toxicity", f"t6_{_T6_PHASE.get(phase, phase)}_{line}_g{g}"), "")


def _toxicity_rows(toxicity: Any, src: dict) -> pd.DataFrame:
    from netbayes.models.toxicity import ToxicityModel

    t = ToxicityModel().ppc_table(toxicity, interval=DEFAULT_INTERVAL)
    lo_col, hi_col = DEFAULT_INTERVAL.columns
    grade = ("0", "I", "II", "III", "IV")
    fig = [
        f"{s}: {ph}, {cl}, grade {grade[int(g)]}, count"
        for s, ph, cl, g in t[["source", "phase", "cell_line", "grade"]].itertuples(index=False)
    ]
    return pd.DataFrame(
        {
            "check": np.where(
                t["source"].astype(str).str.contains("188"),
                "188Re per-cycle grades",
                "Table 6 grade III/IV counts",
            ),
            "figure": fig,
            "source": [
                _toxicity_source(src, str(s_), str(ph), str(cl), g)
                for s_, ph, cl, g in t[["source", "phase", "cell_line", "grade"]].itertuples(
                    index=False
                )
            ],
            "published": t["observed"].astype(float),
            "predicted_median": t["pred_mean"].astype(float),
            "pi95_lower": t[lo_col].astype(float),
            "pi95_upper": t[hi_col].astype(float),
            "inside": t["inside"].astype(bool),
            "in_likelihood": True,
        }
    )


def validation_table(
    survival_pfs: Any | None = None, survival_os: Any | None = None, toxicity: Any | None = None
) -> pd.DataFrame:
    """Every published calibration figure against its 95% posterior predictive interval.

    Parameters
    ----------
    survival_pfs, survival_os, toxicity : StoredPosterior, FitResult or mapping, optional
        Posteriors (anything with ``all_draws()``/``draws()``, or a dict of draw arrays for
        the survival models). A missing one skips its checks.

    Returns
    -------
    pandas.DataFrame
        :data:`VALIDATION_COLUMNS`, one row per published figure.
    """
    src = _sources()
    parts = []
    if survival_pfs is not None:
        parts.append(_survival_rows(_draws(survival_pfs), "pfs", src))
    if survival_os is not None:
        d = _draws(survival_os)
        parts.append(_survival_rows(d, "os", src))
        parts.append(_re188_os_rows(d, src))
    if toxicity is not None:
        parts.append(_toxicity_rows(toxicity, src))
    if not parts:
        raise ValueError("validation_table needs at least one posterior")
    return pd.concat(parts, ignore_index=True)[VALIDATION_COLUMNS]


def validate(folder: str | Path | None = None) -> pd.DataFrame:
    """:func:`validation_table` of the stored posteriors (default: the shipped ones)."""
    from netbayes.store import load_posterior

    return validation_table(
        load_posterior("survival-pfs", folder),
        load_posterior("survival-os", folder),
        load_posterior("toxicity", folder),
    )
