"""The published-figure checks, in report order."""

from __future__ import annotations

from netbayes.checks.base import Check
from netbayes.checks.survival import Re188OSCheck, Table5MedianCheck
from netbayes.checks.toxicity import Re188CycleGradeCheck, Table6GradeCheck

__all__ = ["CHECKS"]

CHECKS: tuple[Check, ...] = (
    Table5MedianCheck("pfs"),
    Table5MedianCheck("os"),
    Re188OSCheck(),
    Table6GradeCheck(),
    Re188CycleGradeCheck(),
)
"""Every check ``netbayes validate`` runs; a check whose posterior is missing is skipped."""
