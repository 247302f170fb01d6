"""netbayes: Bayesian outcome prediction for neuroendocrine-tumour radionuclide therapy.

The public API is the names listed in ``__all__``; everything else is internal.

``import netbayes`` is light: the models (which need PyMC), the prediction API and the data
tables (pandas) are loaded on first use of their names, so ``netbayes.predict_patient(...)``
never imports PyMC, and ``netbayes predict`` neither pandas nor SciPy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from netbayes._version import __version__
from netbayes.intervals import DEFAULT_INTERVAL, Interval
from netbayes.vocab import CELL_LINES, LINES, TUMOUR_TYPES

_LAZY = {
    # the calibration tables (pandas when used)
    "calibration_summary": "netbayes.cohorts",
    "re188_cycle_grade_counts": "netbayes.cohorts",
    "survival_summaries": "netbayes.cohorts",
    "DataFormatError": "netbayes.data",
    "list_tables": "netbayes.data",
    "load_table": "netbayes.data",
    # models and fitting (import PyMC when used)
    "SurvivalModel": "netbayes.models.survival",
    "SurvivalPriors": "netbayes.models.survival",
    "ToxicityModel": "netbayes.models.toxicity",
    "ToxicityPriors": "netbayes.models.toxicity",
    "Prior": "netbayes.priors",
    "FitResult": "netbayes.fitting",
    "ConvergenceWarning": "netbayes.fitting",
    # prediction from stored posteriors (NumPy/pandas/xarray only)
    "Predictor": "netbayes.predict",
    "Prediction": "netbayes.predict",
    "StandardisedPrediction": "netbayes.predict",
    "ExtrapolationWarning": "netbayes.predict",
    "PriorDominatedWarning": "netbayes.predict",
    "predict_patient": "netbayes.predict",
    "load_posterior": "netbayes.store",
    "StoreError": "netbayes.store",
    # published cohorts typed in by the user (NumPy/pandas only)
    "load_published": "netbayes.calibration",
    # checks and reports
    "validate": "netbayes.validation",
    "validation_table": "netbayes.validation",
    "parameter_table": "netbayes.report",
    "diagnostics_table": "netbayes.report",
    "format_table": "netbayes.report",
    "write_table": "netbayes.report",
    "survival_table": "netbayes.report",
    "toxicity_table": "netbayes.report",
}

__all__ = [
    "CELL_LINES",
    "DEFAULT_INTERVAL",
    "LINES",
    "TUMOUR_TYPES",
    "ConvergenceWarning",
    "DataFormatError",
    "ExtrapolationWarning",
    "FitResult",
    "Interval",
    "Prediction",
    "Predictor",
    "Prior",
    "PriorDominatedWarning",
    "StandardisedPrediction",
    "StoreError",
    "SurvivalModel",
    "SurvivalPriors",
    "ToxicityModel",
    "ToxicityPriors",
    "__version__",
    "calibration_summary",
    "diagnostics_table",
    "format_table",
    "list_tables",
    "load_posterior",
    "load_published",
    "load_table",
    "parameter_table",
    "predict_patient",
    "re188_cycle_grade_counts",
    "survival_summaries",
    "survival_table",
    "toxicity_table",
    "validate",
    "validation_table",
    "write_table",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netbayes' has no attribute {name!r}")
    attr = "predict" if name == "predict_patient" else name
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
