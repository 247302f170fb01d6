"""The toxicity model's design: Rotterdam Table 6 counts and doses, and the 188Re-HEDP cycles.

:class:`ToxicityData` holds everything the ordinal model's likelihood and its predictive check
see, as plain arrays; :meth:`ToxicityData.packaged` builds it from the two papers' tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from netbayes import vocab
from netbayes.cohorts import re188_cycle_grade_counts
from netbayes.data import load_table

__all__ = ["TOXICITY_PHASES", "ToxicityData"]

TOXICITY_PHASES: tuple[str, ...] = ("control I-PRRT", "I-PRRT", "R-PRRT", "RR-PRRT")
"""Rows of Rotterdam Table 6 used as likelihood, in model order."""
_PHASE_KEYS = (("control", "I-PRRT"), ("retreatment", "I-PRRT"), ("retreatment", "R-PRRT"),
               ("retreatment", "RR-PRRT"))  # fmt: skip
# AUDIT F11: how many of the "any grade IV" patients are also counted in "any grade III".
# control: footnote b (5 of 6); R-PRRT: text "12 patients (6.6%)" = 12 + 1 - 1; RR-PRRT: no
# grade IV; I-PRRT: unknown (0 or 1): the likelihood mixes both with equal weight.
_ANY_OVERLAP: dict[str, tuple[int, ...]] = {
    "control I-PRRT": (5,),
    "I-PRRT": (0, 1),
    "R-PRRT": (1,),
    "RR-PRRT": (0,),
}


# ----------------------------------------------------------------------------------------------
# toxicity data container (the ordinal model's likelihood and its predictive checks)
# ----------------------------------------------------------------------------------------------
@dataclass
class ToxicityData:
    """Everything the likelihood sees, as plain arrays (packaged data or a simulation).

    Attributes
    ----------
    n : ndarray, shape (4,)
        Patients per Table 6 phase (:data:`TOXICITY_PHASES` order).
    line_counts : ndarray, shape (4, 3, 2)
        Grade III and IV counts per phase and cell line.
    worst_counts : ndarray, shape (2, 4, 3)
        Worst-grade counts (<= II, III, IV) per phase; two versions for the unknown I-PRRT
        overlap (identical for the other phases).
    any_printed : ndarray, shape (4, 2)
        Printed "any" grade III and grade IV counts (overlapping; PPC only).
    phase_activity, phase_prior : ndarray, shape (4,)
        GBq given in the phase and before it.
    re_activity, re_prior_lu, re_cycle, re_patient : ndarray, shape (n_cycles,)
        188Re-HEDP cycles: GBq 188Re in the cycle, prior 177Lu GBq of the patient, cycle index
        within the patient (0-based: earlier 188Re cycles add to the prior activity), patient.
    re_counts : ndarray, shape (3, 5)
        Per-cycle grade counts per line.
    user : pandas.DataFrame or None
        Validated user records.
    """

    n: np.ndarray
    line_counts: np.ndarray
    worst_counts: np.ndarray
    any_printed: np.ndarray
    phase_activity: np.ndarray
    phase_prior: np.ndarray
    re_activity: np.ndarray
    re_prior_lu: np.ndarray
    re_cycle: np.ndarray
    re_patient: np.ndarray
    re_counts: np.ndarray
    user: pd.DataFrame | None = field(default=None)

    @classmethod
    def packaged(cls) -> ToxicityData:
        """Build from the packaged tables (Rotterdam Table 6 + doses, 188Re per-cycle table)."""
        tox = load_table("rotterdam_toxicity")
        doses = load_table("rotterdam_doses")
        n = np.zeros(4)
        line_counts = np.zeros((4, 3, 2))
        any_printed = np.zeros((4, 2))
        for p, (grp, ph) in enumerate(_PHASE_KEYS):
            rows = tox[(tox["group"] == grp) & (tox["phase"] == ph)]
            n[p] = rows["n"].iloc[0]
            for _, r in rows.iterrows():
                g = int(r["grade"]) - 3
                if r["cell_line"] == "any":
                    any_printed[p, g] = r["count"]
                elif r["cell_line"] in vocab.CELL_LINES:
                    line_counts[p, vocab.CELL_LINES.index(r["cell_line"]), g] = r["count"]
        worst = np.zeros((2, 4, 3))
        for p, ph in enumerate(TOXICITY_PHASES):
            ov = _ANY_OVERLAP[ph]
            for v in range(2):
                o = ov[min(v, len(ov) - 1)]
                w4 = any_printed[p, 1]
                w3 = any_printed[p, 0] - o
                worst[v, p] = (n[p] - w3 - w4, w3, w4)

        def dose(grp: str, ph: str, q: str) -> float:
            sel = (doses["group"] == grp) & (doses["phase"] == ph) & (doses["quantity"] == q)
            return float(doses.loc[sel, "median_gbq"].iloc[0])

        act = np.array([dose(g, p, "activity_in_phase") for g, p in _PHASE_KEYS])
        prior = np.array(
            [
                0.0,
                0.0,
                dose("retreatment", "I-PRRT", "activity_in_phase"),
                dose("retreatment", "R-PRRT", "cumulative_after_phase"),
            ]
        )
        pts = load_table("re188_patients")
        re_act, re_prior, re_cyc, re_pat = [], [], [], []
        for _, r in pts.iterrows():
            k = int(r["n_cycles"])
            for c in range(k):
                re_act.append(float(r["re188_cumulative_gbq"]) / k)
                re_prior.append(float(r["lu177_cumulative_gbq"]))
                re_cyc.append(c)
                re_pat.append(int(r["patient"]))
        counts = re188_cycle_grade_counts()
        re_counts = counts[[f"grade_{g}" for g in range(5)]].to_numpy(float)
        if int(counts["n_cycles"].iloc[0]) != len(re_act):  # pragma: no cover - audited data
            raise ValueError("188Re cycles per patient do not add up to the per-cycle table")
        return cls(
            n=n,
            line_counts=line_counts,
            worst_counts=worst,
            any_printed=any_printed,
            phase_activity=act,
            phase_prior=prior,
            re_activity=np.array(re_act),
            re_prior_lu=np.array(re_prior),
            re_cycle=np.array(re_cyc),
            re_patient=np.array(re_pat),
            re_counts=re_counts,
        )
