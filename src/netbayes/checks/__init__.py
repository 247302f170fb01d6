"""Published-figure checks: each one a :class:`~netbayes.checks.base.Check` object.

A check takes the posteriors (:class:`~netbayes.checks.base.Posteriors`) and returns a
:class:`~netbayes.checks.base.CheckResult`: a tidy table (one row per published figure, with its
source row) and a one-line sentence. :data:`~netbayes.checks.registry.CHECKS` lists them in report
order; :mod:`netbayes.validation` and ``netbayes validate`` iterate it.

Modules
-------
``base``
    ``Check``, ``CheckResult``, ``Posteriors``, the column names.
``survival_ppc``, ``toxicity_ppc``
    The NumPy posterior predictive simulations (no PyMC import).
``survival``, ``toxicity``
    The concrete checks.
``registry``
    ``CHECKS``.

Names are imported on first use, so importing one module of the package (as
:meth:`netbayes.models.toxicity.ToxicityModel.ppc_table` does) does not import the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "CHECK_COLUMNS": "netbayes.checks.base",
    "SOURCE_KEY_COLUMNS": "netbayes.checks.base",
    "VALIDATION_COLUMNS": "netbayes.checks.base",
    "Check": "netbayes.checks.base",
    "CheckResult": "netbayes.checks.base",
    "Posteriors": "netbayes.checks.base",
    "CHECKS": "netbayes.checks.registry",
    "Re188CycleGradeCheck": "netbayes.checks.toxicity",
    "Re188OSCheck": "netbayes.checks.survival",
    "Table5MedianCheck": "netbayes.checks.survival",
    "Table6GradeCheck": "netbayes.checks.toxicity",
    "re188_os_ppc_table": "netbayes.checks.survival_ppc",
    "survival_ppc_table": "netbayes.checks.survival_ppc",
    "toxicity_ppc_table": "netbayes.formulas.toxicity_ppc",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netbayes.checks' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
