"""The Rotterdam salvage-PRRT series (rotterdam2019): aggregate tables as typed designs.

Every number comes from ``data/`` through :func:`netbayes.data.load_table` (each row has its
source in ``data/sources.csv``). This module turns the tables into the pieces a model needs:
Table 5 summary rows with their Wald SEs, the selection rules, the median activities, the
published Spearman correlation, the tumour-type mix and the activity ranges the data cover.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from netbayes import vocab
from netbayes._lazy import LazyModule
from netbayes.calibration.base import Correlation, SelectionRule
from netbayes.cohorts import survival_summaries
from netbayes.data import load_table

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = [
    "STUDY_ID",
    "activity_ranges",
    "cohort_mix",
    "dose_medians",
    "followup_months",
    "selection_rules",
    "spearman",
    "summaries",
    "type_counts",
]

STUDY_ID = "rotterdam2019"
"""The study's key in ``data/sources.csv`` and in the calibration registry."""


def summaries(endpoint: str) -> pd.DataFrame:
    """Table 5 rows of ``endpoint`` with the Wald SE of each CI (see
    :func:`netbayes.cohorts.survival_summaries`)."""
    return survival_summaries(endpoint)


@cache
def selection_rules() -> tuple[SelectionRule, ...]:
    """The published selection for retreatment: minimum PFS after the previous line."""
    sel = load_table("rotterdam_selection")
    return tuple(
        SelectionRule(
            line=str(r["eligible_for"]),
            after=str(r["measured_from_line"]),
            min_months=float(r["min_months"]),
            source=f"rotterdam_selection:{r['row_id']}",
        )
        for _, r in sel.iterrows()
    )


@cache
def followup_months() -> dict[tuple[str, str, str], float]:
    """Median follow-up (months) behind each Table 5 survival row, by ``(endpoint, group, line)``.

    Table 5 prints one median follow-up per group and line (all tumour types), measured from
    the first cycle of that line; it applies to the line's PFS and OS rows of every tumour type.
    The first-line **PFS** of the retreatment group is left out: every retreated patient had
    progressed after I-PRRT before retreatment, so those times are complete (not censored).
    """
    fu = load_table("rotterdam_survival")
    fu = fu[fu["endpoint"] == "follow_up"]
    out: dict[tuple[str, str, str], float] = {}
    for g, ln, ty, m in fu[["group", "line", "tumour_type", "median_months"]].itertuples(
        index=False
    ):
        if str(ty) != vocab.ALL_TUMOURS:
            continue
        for ep in ("pfs", "os"):
            if ep == "pfs" and str(g) == "retreatment" and str(ln) == "I-PRRT":
                continue  # progressed before retreatment: complete
            out[(ep, str(g), str(ln))] = float(m)
    return out


@cache
def dose_medians() -> dict[str, float]:
    """Median activities (GBq) of the retreatment group by table row id."""
    doses = load_table("rotterdam_doses").set_index("row_id")["median_gbq"]
    return {str(k): float(v) for k, v in doses.items()}


@cache
def spearman() -> Correlation:
    """Spearman correlation of PFS after I-PRRT and after R-PRRT (selected patients)."""
    corr = load_table("rotterdam_correlations").set_index("row_id")
    row = corr.loc["rs_pfs_i_r"]
    return Correlation(
        x_line="I-PRRT",
        y_line="R-PRRT",
        spearman=float(row["spearman_rs"]),
        n=int(row["n"]),
        source="rotterdam_correlations:rs_pfs_i_r",
        study=STUDY_ID,
    )


@cache
def type_counts() -> dict[str, float]:
    """Patients per fine tumour type in the I-PRRT/R-PRRT efficacy cohort (Table 5 mix)."""
    mix = load_table("rotterdam_tumour_mix")
    mix = mix[(mix["reported_in"] == "table5_pfs") & (mix["line"] == "I-PRRT/R-PRRT")]
    return dict(zip(mix["tumour_type"].astype(str), mix["n"].astype(float), strict=True))


@cache
def cohort_mix() -> dict[str, dict[str, float]]:
    """Tumour-type counts of the retreated cohorts by line label (Table 5 mix)."""
    rr = load_table("rotterdam_tumour_mix")
    rr = rr[(rr["reported_in"] == "table5_pfs") & (rr["group"] == "retreatment")]
    rr = rr[rr["tumour_type"] != "all"]
    return {
        str(k): {str(t): float(n) for t, n in zip(g["tumour_type"], g["n"], strict=True)}
        for k, g in rr.groupby(rr["line"].astype(str))
    }


def table5_mix() -> pd.DataFrame:
    """The Table 5 tumour-type mix rows (``rotterdam_tumour_mix``, reported in Table 5 PFS)."""
    mix = load_table("rotterdam_tumour_mix")
    return mix[mix["reported_in"] == "table5_pfs"]


@cache
def activity_ranges() -> dict[str, object]:
    """Activity ranges of the retreatment group (GBq): ``planned_gbq`` (line -> (min, max)
    given in the phase), ``cumulative_gbq`` ((min, max) after a retreatment line) and
    ``phase_medians`` (line -> median given in the phase) and ``cumulative_medians``."""
    doses = load_table("rotterdam_doses")
    phase = doses[doses["quantity"] == "activity_in_phase"]
    planned = {
        str(ln): (float(g["min_gbq"].min()), float(g["max_gbq"].max()))
        for ln, g in phase.groupby(phase["phase"].astype(str))
    }
    cum = doses[doses["quantity"] == "cumulative_after_phase"]
    retre = doses[doses["group"].astype(str) == "retreatment"]

    def median(ph: str, quantity: str) -> float:
        row = retre[(retre["phase"].astype(str) == ph) & (retre["quantity"] == quantity)]
        return float(row["median_gbq"].iloc[0])

    return {
        "planned_gbq": planned,
        "cumulative_gbq": (float(cum["min_gbq"].min()), float(cum["max_gbq"].max())),
        "phase_medians": {ln: median(ln, "activity_in_phase") for ln in vocab.PRRT_LINES},
        "cumulative_after_r": median("R-PRRT", "cumulative_after_phase"),
    }


def coarse_weights() -> dict[str, dict[str, float]]:
    """Weights of the fine types behind each coarse type, from the Rotterdam mix."""
    n_by = type_counts()
    out = {}
    for coarse, members in vocab.COARSE_TUMOUR_TYPES.items():
        tot = sum(n_by[m] for m in members)
        out[coarse] = {m: n_by[m] / tot for m in members}
    return out


def type_weight_rows(types: pd.Series | list[str]) -> np.ndarray:
    """Rows of weights over the fine tumour types; a coarse type uses the Rotterdam mix."""
    n_by = type_counts()
    types = pd.Series(types)
    w = np.zeros((len(types), len(vocab.TUMOUR_TYPES)))
    for i, t in enumerate(types.astype(str)):
        members = vocab.fine_levels(t)
        tot = sum(n_by[m] for m in members)
        for m in members:
            w[i, vocab.TUMOUR_TYPES.index(m)] = n_by[m] / tot
    return w
