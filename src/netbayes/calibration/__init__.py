"""Calibration data as typed designs, one module per published source, and a registry.

The models, the prediction inputs and the checks take the designs built here; only the study
modules read ``data/`` (through :func:`netbayes.data.load_table`). Today's registry holds the
two papers: :mod:`.rotterdam` (the Rotterdam salvage-PRRT series, aggregate tables) and
:mod:`.re188` (the 188Re-HEDP pilot, individual data). Adding a study means a module here and
one entry in :data:`STUDIES` (see ARCHITECTURE.md, "Add a study"). Studies a user types in
from other papers come through :mod:`.published` (:func:`load_published`, the row layout of
``docs/published_cohorts.md``); they are added to these, never replace them
(:func:`check_new_studies`).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from netbayes import vocab
from netbayes.calibration import re188, rotterdam
from netbayes.calibration.base import (
    Correlation,
    IndividualSurvival,
    SelectionRule,
    SurvivalCalibration,
)
from netbayes.calibration.published import (
    PublishedDataError,
    PublishedStudies,
    check_new_studies,
    load_published,
)
from netbayes.calibration.ranges import CALIBRATION_KEYS, check_calibration
from netbayes.calibration.ranges_cache import cached_ranges, cached_share

__all__ = [
    "CALIBRATION_KEYS",
    "STUDIES",
    "Correlation",
    "IndividualSurvival",
    "PublishedDataError",
    "PublishedStudies",
    "SelectionRule",
    "SurvivalCalibration",
    "calibrated_ranges",
    "check_calibration",
    "check_new_studies",
    "default_activities",
    "load_published",
    "pfs_share_of_os",
    "rprrt_pfs_share_of_os",
    "survival_calibration",
    "toxicity_calibration",
    "type_weight_rows",
]

STUDIES: dict[str, Any] = {rotterdam.STUDY_ID: rotterdam, re188.STUDY_ID: re188}
"""The registered calibration sources by study id."""

type_weight_rows = rotterdam.type_weight_rows


@cache
def calibrated_ranges() -> dict[str, Any]:
    """The input ranges the calibration data cover, for extrapolation warnings.

    Computed from the tables once per version of the data and of this code, then read from a
    small disk cache (:mod:`netbayes.calibration.ranges_cache`): loading a posterior compares its
    card's ranges with these, and the cache spares that comparison the pandas import.

    Returns
    -------
    dict
        ``prior_pfs_min`` (line -> selection threshold, months: R-PRRT 18, RR-PRRT 14),
        ``planned_gbq`` (line -> (min, max) activity given in the phase, GBq; 188Re-HEDP: the
        pilot's 188Re activities), ``cumulative_gbq`` ((min, max) cumulative 177Lu activity after
        a retreatment line), ``re188_prior_gbq`` ((min, max) prior 177Lu of the 188Re pilot),
        ``type_weights`` (coarse type -> weights over its fine types, the Rotterdam mix),
        ``cohort_mix`` (line label -> tumour-type counts of the retreated cohorts) and
        ``re188_prior_pfs`` ((mean, min, max) months from the previous treatment to 188Re-HEDP
        in the pilot, its prior-PFS information).
    """
    return cached_ranges(_calibrated_ranges)


def _calibrated_ranges() -> dict[str, Any]:
    act = rotterdam.activity_ranges()
    re = re188.activity_ranges()
    planned = dict(act["planned_gbq"])
    planned["188Re-HEDP"] = re["planned_gbq"]
    return {
        "prior_pfs_min": {r.line: r.min_months for r in rotterdam.selection_rules()},
        "planned_gbq": planned,
        "cumulative_gbq": act["cumulative_gbq"],
        "re188_prior_gbq": re["prior_gbq"],
        "type_weights": rotterdam.coarse_weights(),
        "cohort_mix": rotterdam.cohort_mix(),
        "re188_prior_pfs": re188.prior_pfs_interval(),
    }


@cache
def default_activities(line: str) -> tuple[float, float]:
    """Median prior and planned activity (GBq) of the calibration patients of ``line``."""
    if line == "188Re-HEDP":
        return re188.activity_medians()
    act = rotterdam.activity_ranges()
    in_phase = act["phase_medians"]
    if line == "I-PRRT":
        return 0.0, in_phase["I-PRRT"]
    if line == "R-PRRT":
        return in_phase["I-PRRT"], in_phase["R-PRRT"]
    return act["cumulative_after_r"], in_phase["RR-PRRT"]


@cache
def rprrt_pfs_share_of_os() -> float:
    """Median PFS / median OS after R-PRRT, all tumour types (Rotterdam Table 5: 14.6 / 26.2),
    the input of the OS model's linked ``beta_x`` prior (``os_beta_x_prior``); computed once
    per version of the data, then read from the disk cache (:mod:`.ranges_cache`)."""
    return cached_share(lambda: pfs_share_of_os(survival_calibration("os")))


def pfs_share_of_os(cal: SurvivalCalibration) -> float:
    """Median PFS / median OS of the all-tumour R-PRRT retreatment rows of ``cal``.

    Raises
    ------
    ValueError
        If the share is not in (0, 1).
    """

    def all_rprrt(ep: str) -> float:
        t = cal.summaries[ep]
        row = t[(t["tumour_type"] == "all") & (t["line"] == "R-PRRT")
                & (t["group"] == "retreatment")]  # fmt: skip
        return float(row["median_months"].iloc[0])

    share = all_rprrt("pfs") / all_rprrt("os")
    if not 0.0 < share < 1.0:
        raise ValueError(f"PFS share of OS after R-PRRT {share:.3g} is not in (0, 1)")
    return share


def survival_calibration(endpoint: str = "pfs") -> SurvivalCalibration:
    """The survival design of the registered studies for ``endpoint``.

    The Rotterdam Table 5 rows (PFS; and OS for ``endpoint="os"``), selection rules, median
    cumulative activities and Spearman correlation, and (OS) the 188Re-HEDP patients' OS. Built
    once per endpoint; each call returns its own copies of the summary tables.
    """
    cal = _survival_calibration(endpoint)
    return replace(cal, summaries={ep: df.copy() for ep, df in cal.summaries.items()})


@cache
def _survival_calibration(endpoint: str) -> SurvivalCalibration:
    needed = ("pfs", "os") if endpoint == "os" else ("pfs",)
    doses = rotterdam.dose_medians()
    rs = rotterdam.spearman()
    n_by = rotterdam.summaries("pfs")
    r = n_by[
        (n_by["group"] == "retreatment")
        & (n_by["line"] == rs.y_line)
        & (n_by["tumour_type"] != vocab.ALL_TUMOURS)
    ]
    type_n = r.set_index("tumour_type")["n"].reindex(list(vocab.TUMOUR_TYPES)).fillna(0.0)
    return SurvivalCalibration(
        summaries={ep: rotterdam.summaries(ep) for ep in needed},
        selection={s.line: s for s in rotterdam.selection_rules()},
        cumulative_gbq={
            "R-PRRT": doses["dose_retre_rprrt_cum"],
            "RR-PRRT": doses["dose_retre_rrprrt_cum"],
        },
        spearman=rs,
        spearman_type_n=type_n.to_numpy(float),
        individual=(re188.os_times(),) if endpoint == "os" else (),
        ranges=calibrated_ranges(),
        studies=(rotterdam.STUDY_ID, *((re188.STUDY_ID,) if endpoint == "os" else ())),
        followup=rotterdam.followup_months(),
    )


def toxicity_calibration() -> Any:
    """The toxicity model's design from the registered studies (Rotterdam Table 6 and doses,
    the 188Re-HEDP per-cycle grades): a :class:`netbayes.calibration.toxicity.ToxicityData`."""
    from netbayes.calibration.toxicity import ToxicityData

    return ToxicityData.packaged()
