"""Toxicity checks: Rotterdam Table 6 grade III/IV counts and the 188Re per-cycle grades.

Both read one simulation (:func:`~netbayes.formulas.toxicity_ppc.toxicity_ppc_table`, 95%
equal-tailed, at most 2000 draws, seed 7), computed once per run and shared through
:meth:`Posteriors.memo <netbayes.checks.base.Posteriors.memo>`.
"""

from __future__ import annotations

import pandas as pd

from netbayes.checks.base import CHECK_COLUMNS, Check, CheckResult, Posteriors, source_labels
from netbayes.formulas.toxicity_ppc import toxicity_ppc_table
from netbayes.intervals import DEFAULT_INTERVAL

__all__ = ["Re188CycleGradeCheck", "Table6GradeCheck"]

_GRADE = ("0", "I", "II", "III", "IV")
_T6_PHASE = {
    "control I-PRRT": "contr_iprrt",
    "I-PRRT": "retre_iprrt",
    "R-PRRT": "retre_rprrt",
    "RR-PRRT": "retre_rrprrt",
}
_T6_TABLE = "rotterdam_toxicity"
_RE188_TABLE = "re188_toxicity_per_cycle"
_RE188_DERIVED = "re188pilot: Table 2, per-cycle column (grade 0 derived: cycles minus I-IV)"


def _ppc(posteriors: Posteriors) -> pd.DataFrame:
    return posteriors.memo(
        "toxicity_ppc",
        lambda: toxicity_ppc_table(posteriors.get("toxicity"), interval=DEFAULT_INTERVAL),
    )


def _rows(
    name: str, t: pd.DataFrame, table: str, row_ids: list[str], labels: list[str]
) -> CheckResult:
    lo_col, hi_col = DEFAULT_INTERVAL.columns
    fig = [
        f"{s}: {ph}, {cl}, grade {_GRADE[int(g)]}, count"
        for s, ph, cl, g in t[["source", "phase", "cell_line", "grade"]].itertuples(index=False)
    ]
    rows = pd.DataFrame(
        {
            "check": name,
            "figure": fig,
            "source": labels,
            "published": t["observed"].astype(float).to_numpy(),
            "predicted_median": t["pred_mean"].astype(float).to_numpy(),
            "pi95_lower": t[lo_col].astype(float).to_numpy(),
            "pi95_upper": t[hi_col].astype(float).to_numpy(),
            "inside": t["inside"].astype(bool).to_numpy(),
            "in_likelihood": True,
            "source_table": table,
            "source_row_id": row_ids,
        }
    )
    return CheckResult(name, rows[CHECK_COLUMNS])


class Table6GradeCheck(Check):
    """Every Rotterdam Table 6 grade III and IV count (per cell line and "any", per phase)."""

    name = "Table 6 grade III/IV counts"
    needs = "toxicity"

    def run(self, posteriors: Posteriors) -> CheckResult:
        """Rows of the shared toxicity simulation that come from Table 6."""
        t = _ppc(posteriors)
        t = t[~t["source"].astype(str).str.contains("188")]
        src = source_labels()
        ids = [
            f"t6_{_T6_PHASE.get(str(ph), str(ph))}_{cl}_g{int(g)}"
            for ph, cl, g in t[["phase", "cell_line", "grade"]].itertuples(index=False)
        ]
        return _rows(self.name, t, _T6_TABLE, ids, [src.get((_T6_TABLE, i), "") for i in ids])


class Re188CycleGradeCheck(Check):
    """Every 188Re-HEDP per-cycle grade count (grades 0-IV per cell line)."""

    name = "188Re per-cycle grades"
    needs = "toxicity"

    def run(self, posteriors: Posteriors) -> CheckResult:
        """Rows of the shared toxicity simulation that come from the 188Re pilot."""
        t = _ppc(posteriors)
        t = t[t["source"].astype(str).str.contains("188")]
        src = source_labels()
        ids = [
            f"t2_cycle_{cl}_g{int(g)}"
            for cl, g in t[["cell_line", "grade"]].itertuples(index=False)
        ]
        labels = [src.get((_RE188_TABLE, i), _RE188_DERIVED) for i in ids]
        return _rows(self.name, t, _RE188_TABLE, ids, labels)
