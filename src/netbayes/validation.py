"""Every published calibration figure against its 95% posterior predictive interval.

One table for ``netbayes validate`` and for papers' supplements: Rotterdam Table 5 PFS and OS
medians (each row's KM median of a simulated cohort of its size), Table 6 grade III and IV
counts (per line and any, per phase), the 188Re-HEDP per-cycle grade counts and each 188Re-HEDP
patient's OS. Each row names the figure, its source (paper, table, row), the published value,
the predicted median with its 95% predictive interval, whether the figure lies inside, and
whether it was in the likelihood (the "all tumours" medians are held out).

The checks are the objects of :data:`netbayes.checks.registry.CHECKS`; this module runs them.
Nothing here imports PyMC or PyTensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from netbayes.checks.base import (
    CHECK_COLUMNS,
    VALIDATION_COLUMNS,
    Check,
    CheckResult,
    Posteriors,
)
from netbayes.checks.registry import CHECKS

__all__ = [
    "VALIDATION_COLUMNS",
    "results_table",
    "run_checks",
    "validate",
    "validation_results",
    "validation_table",
]

_MODELS = {"survival_pfs": "survival-pfs", "survival_os": "survival-os", "toxicity": "toxicity"}


def run_checks(
    survival_pfs: Any | None = None,
    survival_os: Any | None = None,
    toxicity: Any | None = None,
    *,
    checks: Sequence[Check] = CHECKS,
) -> list[CheckResult]:
    """Run every check whose posterior is given.

    Parameters
    ----------
    survival_pfs, survival_os, toxicity : StoredPosterior, FitResult or mapping, optional
        Posteriors (anything with ``all_draws()``/``draws()``, or a dict of draw arrays). A
        missing one skips its checks.
    checks : sequence of Check
        The checks, in report order (default :data:`netbayes.checks.registry.CHECKS`).

    Returns
    -------
    list of CheckResult
        One per check that ran.

    Raises
    ------
    ValueError
        If no posterior is given.
    """
    post = Posteriors(survival_pfs, survival_os, toxicity)
    if not post.available():
        raise ValueError(
            "validation_table needs at least one posterior: survival_pfs, survival_os or toxicity"
        )
    return [c.run(post) for c in checks if c.applies(post)]


def results_table(results: Sequence[CheckResult], *, keys: bool = False) -> pd.DataFrame:
    """The rows of several check results as one table.

    Parameters
    ----------
    results : sequence of CheckResult
    keys : bool
        Also return the source key columns (``source_table``, ``source_row_id``).

    Returns
    -------
    pandas.DataFrame
        :data:`VALIDATION_COLUMNS` (plus the keys), one row per published figure.
    """
    cols = CHECK_COLUMNS if keys else VALIDATION_COLUMNS
    if not results:
        return pd.DataFrame(columns=cols)
    return pd.concat([r.table for r in results], ignore_index=True)[cols]


def validation_table(
    survival_pfs: Any | None = None,
    survival_os: Any | None = None,
    toxicity: Any | None = None,
    *,
    keys: bool = False,
) -> pd.DataFrame:
    """Every published calibration figure against its 95% posterior predictive interval.

    Parameters
    ----------
    survival_pfs, survival_os, toxicity : StoredPosterior, FitResult or mapping, optional
        Posteriors (anything with ``all_draws()``/``draws()``, or a dict of draw arrays). A
        missing one skips its checks.
    keys : bool
        Also return each figure's source key (``source_table``, ``source_row_id``).

    Returns
    -------
    pandas.DataFrame
        :data:`VALIDATION_COLUMNS`, one row per published figure.
    """
    return results_table(run_checks(survival_pfs, survival_os, toxicity), keys=keys)


def validation_results(folder: str | Path | None = None) -> list[CheckResult]:
    """:func:`run_checks` on the stored posteriors (default: the shipped ones).

    A folder of your own may hold only some model types (e.g. one survival fit): the checks of
    the others are skipped. The shipped folder must hold all three.

    Raises
    ------
    netbayes.store.StoreError
        A posterior is corrupt or does not match, or (shipped folder) one is missing, or the
        folder holds none.
    """
    from netbayes.store import StoreError, load_posterior

    posteriors = {}
    for arg, m in _MODELS.items():
        if folder is not None and not (Path(folder) / f"{m}.json").is_file():
            continue
        posteriors[arg] = load_posterior(m, folder)
    if not posteriors:
        raise StoreError(
            f"no stored posterior in {folder}: expected one or more of "
            f"{', '.join(f'{m}.json' for m in _MODELS.values())}"
        )
    return run_checks(**posteriors)


def validate(folder: str | Path | None = None) -> pd.DataFrame:
    """:func:`validation_table` of the stored posteriors (default: the shipped ones)."""
    return results_table(validation_results(folder))
