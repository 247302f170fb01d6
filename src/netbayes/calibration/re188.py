"""The 188Re-HEDP pilot (re188pilot): six patients' individual data as typed designs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netbayes._lazy import LazyModule
from netbayes.calibration.base import IndividualSurvival
from netbayes.calibration.rotterdam import type_weight_rows
from netbayes.data import load_table

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = ["STUDY_ID", "activity_ranges", "os_times", "patients", "prior_pfs_interval"]

STUDY_ID = "re188pilot"
"""The study's key in ``data/sources.csv`` and in the calibration registry."""


def patients() -> pd.DataFrame:
    """The pilot's patient table (``re188_patients``; a fresh copy each call)."""
    return load_table("re188_patients")


def os_times() -> IndividualSurvival:
    """Each patient's OS after 188Re-HEDP; a coarse "GI" type mixes over its fine types with
    the Rotterdam weights."""
    pts = patients()
    return IndividualSurvival(
        endpoint="os",
        line="188Re-HEDP",
        time_months=pts["os_months"].to_numpy(float),
        event=pts["os_event"].to_numpy(float),
        type_weights=type_weight_rows(pts["tumour_type"]),
        source="re188_patients",
        study=STUDY_ID,
        cumulative_gbq=pts["lu177_cumulative_gbq"].to_numpy(float),
        prior_pfs=prior_pfs_interval(),
    )


def prior_pfs_interval() -> tuple[float, float, float]:
    """(mean, min, max) months between the previous systemic treatment and 188Re-HEDP
    (Material and methods: "The mean interval ... was 21 months (range 13-47)"), the pilot's
    only information on its patients' prior PFS."""
    tv = load_table("re188_text_values").set_index("row_id")["value"]
    return (
        float(tv["rtxt_met_interval"]),
        float(tv["rtxt_met_interval_min"]),
        float(tv["rtxt_met_interval_max"]),
    )


def activity_ranges() -> dict[str, tuple[float, float]]:
    """(min, max) 188Re-HEDP activity given and prior 177Lu activity (GBq)."""
    re = patients()
    return {
        "planned_gbq": (
            float(re["re188_cumulative_gbq"].min()),
            float(re["re188_cumulative_gbq"].max()),
        ),
        "prior_gbq": (
            float(re["lu177_cumulative_gbq"].min()),
            float(re["lu177_cumulative_gbq"].max()),
        ),
    }


def activity_medians() -> tuple[float, float]:
    """Median prior 177Lu and median 188Re-HEDP activity (GBq)."""
    re = patients()
    return (
        float(re["lu177_cumulative_gbq"].median()),
        float(re["re188_cumulative_gbq"].median()),
    )
