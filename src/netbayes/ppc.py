"""Posterior predictive checks of the survival model (moved to :mod:`netbayes.checks.survival_ppc`).

Kept so that ``from netbayes.ppc import survival_ppc_table`` keeps working.
"""

from __future__ import annotations

from netbayes.checks.survival_ppc import INTERVAL, re188_os_ppc_table, survival_ppc_table

__all__ = ["INTERVAL", "re188_os_ppc_table", "survival_ppc_table"]
