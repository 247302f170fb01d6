"""Survival checks: Rotterdam Table 5 medians (PFS, OS) and each 188Re-HEDP patient's OS."""

from __future__ import annotations

from typing import Literal

import pandas as pd

from netbayes.calibration import re188, rotterdam
from netbayes.checks.base import CHECK_COLUMNS, Check, CheckResult, Posteriors, source_labels
from netbayes.checks.survival_ppc import re188_os_ppc_table, survival_ppc_table

__all__ = ["Re188OSCheck", "Table5MedianCheck"]

_SURVIVAL_TABLE = "rotterdam_survival"
_RE188_TABLE = "re188_patients"


class Table5MedianCheck(Check):
    """Every Rotterdam Table 5 median of one endpoint (a cohort's KM median per draw).

    Parameters
    ----------
    endpoint : {"pfs", "os"}
    """

    def __init__(self, endpoint: Literal["pfs", "os"]) -> None:
        if endpoint not in ("pfs", "os"):
            raise ValueError(f"endpoint={endpoint!r}; expected 'pfs' or 'os'")
        self.endpoint = endpoint
        self.label = "PFS" if endpoint == "pfs" else "OS"
        self.name = f"Table 5 {self.label} median"
        self.needs = "survival_pfs" if endpoint == "pfs" else "survival_os"

    def run(self, posteriors: Posteriors) -> CheckResult:
        """Simulate each row's cohort median (:func:`survival_ppc_table`, seed 1)."""
        t = survival_ppc_table(
            dict(posteriors.draws(self.needs)),
            self.endpoint,
            family=posteriors.family(self.needs),
            study_effect=posteriors.study_effect(self.needs, rotterdam.STUDY_ID),
        )
        src = source_labels()
        label = self.label
        rows = pd.DataFrame(
            {
                "check": self.name,
                "figure": [
                    f"{label} {g} {ln} {ty} (n={n}) median, months"
                    for g, ln, ty, n in t[["group", "line", "tumour_type", "n"]].itertuples(
                        index=False
                    )
                ],
                "source": [src.get((_SURVIVAL_TABLE, r), "") for r in t["row_id"]],
                "published": t["published_median_months"],
                "predicted_median": t["predicted_median_months"],
                "pi95_lower": t["pi95_eti_lower_months"],
                "pi95_upper": t["pi95_eti_upper_months"],
                "inside": t["inside_pi95"],
                "in_likelihood": t["in_likelihood"],
                "source_table": _SURVIVAL_TABLE,
                "source_row_id": t["row_id"].astype(str),
            }
        )
        return CheckResult(self.name, rows[CHECK_COLUMNS])


class Re188OSCheck(Check):
    """Each 188Re-HEDP patient's OS (death or censoring) against the OS model's prediction."""

    name = "188Re-HEDP OS"
    needs = "survival_os"

    def run(self, posteriors: Posteriors) -> CheckResult:
        """One predictive time per thinned draw (:func:`re188_os_ppc_table`, seed 2)."""
        t = re188_os_ppc_table(
            dict(posteriors.draws(self.needs)),
            family=posteriors.family(self.needs),
            study_effect=posteriors.study_effect(self.needs, re188.STUDY_ID),
        )
        src = source_labels()
        fig = [
            f"188Re-HEDP patient {p} ({ty}) OS, months" + ("" if e else " (censored)")
            for p, ty, e in t[["patient", "tumour_type", "os_event"]].itertuples(index=False)
        ]
        rows = pd.DataFrame(
            {
                "check": self.name,
                "figure": fig,
                "source": [src.get((_RE188_TABLE, str(p)), "") for p in t["patient"]],
                "published": t["os_months"],
                "predicted_median": t["predicted_median_months"],
                "pi95_lower": t["pi95_eti_lower_months"],
                "pi95_upper": t["pi95_eti_upper_months"],
                "inside": t["inside_pi95"],
                "in_likelihood": True,
                "source_table": _RE188_TABLE,
                "source_row_id": t["patient"].astype(str),
            }
        )
        return CheckResult(self.name, rows[CHECK_COLUMNS])
