"""netbayes: Bayesian outcome prediction for neuroendocrine-tumour radionuclide therapy.

The public API is the names listed in ``__all__``; everything else is internal.
"""

from netbayes.cohorts import calibration_summary, re188_cycle_grade_counts, survival_summaries
from netbayes.data import DataFormatError, list_tables, load_table
from netbayes.vocab import CELL_LINES, LINES, TUMOUR_TYPES

__version__ = "0.1.0"

__all__ = [
    "CELL_LINES",
    "LINES",
    "TUMOUR_TYPES",
    "DataFormatError",
    "__version__",
    "calibration_summary",
    "list_tables",
    "load_table",
    "re188_cycle_grade_counts",
    "survival_summaries",
]
