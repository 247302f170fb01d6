"""Every published calibration figure against its predictive: cross-validated and in-sample.

:func:`loo_validation` (what ``netbayes validate`` leads with) scores each figure under the
leave-one-out predictive of the model without its likelihood term (PSIS-LOO,
:mod:`netbayes.checks.loo`): PIT values, their histogram against uniform and uniformity tests
per endpoint. The functions below it give the in-sample table (``netbayes validate
--in-sample``, also for papers' supplements): Rotterdam Table 5 PFS and OS medians (each row's
KM median of a simulated cohort of its size), Table 6 grade III and IV counts (per line and
any, per phase), the 188Re-HEDP per-cycle grade counts and each 188Re-HEDP patient's OS. Each
row names the figure, its source (paper, table, row), the published value, the predicted
median with its 95% predictive interval, whether the figure lies inside, and whether it was in
the likelihood. The "all tumours" medians are held out of the likelihood, but they are the same
patients as the tumour-type rows: held out, not independent.

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
    "loo_validation",
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
    return run_checks(**_load(folder))


def _load(folder: str | Path | None) -> dict[str, Any]:
    """The stored posteriors of a folder, by :func:`run_checks` argument name."""
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
    return posteriors


def validate(folder: str | Path | None = None) -> pd.DataFrame:
    """:func:`validation_table` of the stored posteriors (default: the shipped ones)."""
    return results_table(validation_results(folder))


def loo_validation(
    folder: str | Path | None = None, *, seed: int = 11
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-validated (PSIS-LOO) check of the stored posteriors (default: the shipped ones).

    Parameters
    ----------
    folder : str or pathlib.Path, optional
        A folder of stored posteriors (it may hold only some model types).
    seed : int
        Seed of the predictive draws and randomised PITs.

    Returns
    -------
    table : pandas.DataFrame
        :data:`netbayes.checks.loo.LOO_COLUMNS`, one row per published figure.
    summary : pandas.DataFrame
        :func:`netbayes.checks.loo.loo_summary` of the table.

    Raises
    ------
    netbayes.store.StoreError
        As :func:`validation_results`.
    """
    from netbayes.checks.loo import loo_summary, loo_table

    table = loo_table(**_load(folder), seed=seed)
    return table, loo_summary(table)
