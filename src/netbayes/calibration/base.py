"""Typed pieces of a calibration design (no PyMC, no file reading).

A study module (:mod:`.rotterdam`, :mod:`.re188`) turns its validated tables into these
objects; :mod:`netbayes.calibration` combines them into the designs the models take
(:class:`SurvivalCalibration`). Each piece keeps its source key (``table:row_id``), the key of
its row in ``data/sources.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from netbayes._lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = ["Correlation", "IndividualSurvival", "SelectionRule", "SurvivalCalibration"]


@dataclass(frozen=True)
class SelectionRule:
    """Patients entered ``line`` only if their PFS after ``after`` was at least ``min_months``."""

    line: str
    after: str
    min_months: float
    source: str = ""


@dataclass(frozen=True)
class Correlation:
    """A published rank correlation between the times after two lines, with its n and the
    study it comes from."""

    x_line: str
    y_line: str
    spearman: float
    n: int
    source: str = ""
    study: str = ""


@dataclass(frozen=True)
class IndividualSurvival:
    """Individual right-censored times of one study (e.g. the 188Re-HEDP pilot's OS).

    Attributes
    ----------
    endpoint : str
        ``"pfs"`` or ``"os"``.
    line : str
        The treatment line the times are measured from.
    time_months, event : numpy.ndarray
        Times and event indicators (1 event, 0 censored).
    type_weights : numpy.ndarray, shape (n, 6)
        Weights of each patient over the fine tumour types (a coarse type is a mixture).
    source : str
        Source key.
    study : str
        The study (centre) the patients were treated in.
    cumulative_gbq : numpy.ndarray, optional
        Each patient's cumulative 177Lu activity (GBq), the ``d`` of the salvage block (for
        188Re-HEDP the prior 177Lu activity). None: the reference 44.7 GBq.
    prior_pfs : tuple of float, optional
        What the study reports about its patients' prior PFS when it has no value per patient:
        ``(mean, min, max)`` months (the model mixes over
        :func:`netbayes.formulas.survival.re188_prior_pfs_nodes`). None: the 36-month reference.
    """

    endpoint: str
    line: str
    time_months: np.ndarray
    event: np.ndarray
    type_weights: np.ndarray
    source: str = ""
    study: str = ""
    cumulative_gbq: np.ndarray | None = None
    prior_pfs: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class SurvivalCalibration:
    """Everything the survival model and its checks take from published data.

    Attributes
    ----------
    summaries : dict of str to pandas.DataFrame
        Summary rows per endpoint (``"pfs"``, ``"os"``) in the layout of
        :func:`netbayes.cohorts.survival_summaries`.
    selection : dict of str to SelectionRule
        The selection rule of each selected line (R-PRRT, RR-PRRT).
    cumulative_gbq : dict of str to float
        Median cumulative 177Lu activity after each retreatment line (GBq).
    spearman : Correlation
        The rank correlation of first-line and R-PRRT PFS among selected patients.
    spearman_type_n : numpy.ndarray, shape (6,)
        Patients per fine tumour type behind that correlation.
    individual : tuple of IndividualSurvival
        Individual times of any study, by endpoint.
    ranges : dict
        The input ranges the data cover (see :func:`netbayes.calibration.calibrated_ranges`).
    studies : tuple of str
        The studies the design was assembled from. Summary rows without a ``study`` column
        belong to the first.
    followup : dict of (str, str, str) to float
        Median follow-up (months) of the summary rows by ``(endpoint, group, line)``, for the
        censoring-aware terms (``SurvivalModel(censoring="followup")``, ``docs/censoring.md``);
        rows of a key not listed (or NaN) were not censored before their median. A summary table
        with a ``followup_months`` column overrides it.
    """

    summaries: dict[str, pd.DataFrame]
    selection: dict[str, SelectionRule]
    cumulative_gbq: dict[str, float]
    spearman: Correlation
    spearman_type_n: np.ndarray
    individual: tuple[IndividualSurvival, ...] = ()
    ranges: dict[str, Any] = field(default_factory=dict)
    studies: tuple[str, ...] = ()
    followup: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def threshold(self, line: str) -> float:
        """The minimum prior PFS (months) for ``line``."""
        return self.selection[line].min_months

    def individual_for(self, endpoint: str) -> tuple[IndividualSurvival, ...]:
        """The individual-time blocks of ``endpoint``."""
        return tuple(b for b in self.individual if b.endpoint == endpoint)

    def followup_of(self, endpoint: str, rows: pd.DataFrame) -> np.ndarray:
        """Median follow-up (months) of each summary row of ``endpoint`` (NaN: none).

        The table's own ``followup_months`` column if it has one (simulated or added rows),
        else :attr:`followup` by ``(endpoint, group, line)``.
        """
        if "followup_months" in rows.columns:
            return pd.to_numeric(rows["followup_months"]).to_numpy(float)
        keys = zip(rows["group"].astype(str), rows["line"].astype(str), strict=True)
        return np.array([self.followup.get((endpoint, g, ln), np.nan) for g, ln in keys], float)
