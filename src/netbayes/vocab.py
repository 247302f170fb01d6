"""Controlled vocabularies shared by the data loaders, the models and the prediction API.

Tumour types
------------
The Rotterdam salvage-PRRT paper (Table 5) classifies primaries into six types, which are the
*fine* levels used everywhere in netbayes:

``foregut``
    Foregut NET that is neither pancreatic nor bronchial (e.g. gastric, duodenal).
``midgut``
    Midgut (small-bowel, appendiceal, proximal colon) NET.
``hindgut``
    Hindgut (distal colon, rectal) NET.
``pancreatic``
    Pancreatic NET (a foregut derivative, but reported separately).
``bronchial``
    Bronchial (lung) NET.
``unknown``
    NET of *unknown primary*. This is a clinical category with its own published outcomes,
    not a missing value.

One *coarse* level exists because the 188Re-HEDP pilot (Table 1) reports the primary only as
``GI`` = "gastrointestinal (non-pancreatic)":

``gi_non_pancreatic``
    One of ``foregut``, ``midgut`` or ``hindgut``, not resolved further. Models treat it as a
    mixture over those three levels (:data:`COARSE_TUMOUR_TYPES`). Pancreatic primaries are
    ``P`` in that table and map to ``pancreatic``; patient 3 is resolved to ``hindgut`` from the
    paper's Fig. 3 caption (a rectal NET; see ``data/AUDIT.md``).

Published summary tables also carry an aggregate row, ``all`` (all tumour types together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from netbayes._lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

TUMOUR_TYPES: Final[tuple[str, ...]] = (
    "foregut",
    "midgut",
    "hindgut",
    "pancreatic",
    "bronchial",
    "unknown",
)
"""Fine tumour-type levels, in the order used for model coordinates."""

COARSE_TUMOUR_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "gi_non_pancreatic": ("foregut", "midgut", "hindgut"),
}
"""Coarse levels and the fine levels each may stand for."""

ALL_TUMOURS: Final[str] = "all"
"""Label of the aggregate (all tumour types) row in published summary tables."""

PATIENT_TUMOUR_TYPES: Final[tuple[str, ...]] = TUMOUR_TYPES + tuple(COARSE_TUMOUR_TYPES)
"""Levels allowed for an individual patient's tumour type."""

SUMMARY_TUMOUR_TYPES: Final[tuple[str, ...]] = (*TUMOUR_TYPES, ALL_TUMOURS)
"""Levels allowed in a published summary row."""

CELL_LINES: Final[tuple[str, ...]] = ("leucocytes", "platelets", "haemoglobin")
"""Blood cell lines of the toxicity model (CTCAE leukopenia, thrombocytopenia, anaemia)."""

TOXICITY_ROWS: Final[tuple[str, ...]] = (*CELL_LINES, "creatinine", "any")
"""Row labels of the Rotterdam toxicity table (Table 6): cell lines, creatinine and 'any'."""

LINES: Final[tuple[str, ...]] = ("I-PRRT", "R-PRRT", "RR-PRRT", "188Re-HEDP")
"""Treatment lines: initial PRRT, retreatment, second retreatment, 188Re-HEDP bone therapy."""

PRRT_LINES: Final[tuple[str, ...]] = LINES[:3]
"""The three 177Lu-octreotate lines of the Rotterdam cohort."""

GROUPS: Final[tuple[str, ...]] = ("retreatment", "control")
"""Rotterdam cohorts: patients who were retreated, and the non-randomised control group."""

ENDPOINTS: Final[tuple[str, ...]] = ("pfs", "os", "follow_up")
"""Time-to-event quantities reported in Table 5 (follow-up is reported, not modelled)."""

CTCAE_GRADES: Final[tuple[int, ...]] = (0, 1, 2, 3, 4)
"""CTCAE grades 0 (none) to IV, as integers."""


def categorical(levels: tuple[str, ...]) -> pd.CategoricalDtype:
    """Return an unordered pandas categorical dtype with ``levels`` as its categories.

    Parameters
    ----------
    levels : tuple of str
        The allowed values, in their canonical order.

    Returns
    -------
    pandas.CategoricalDtype
    """
    return pd.CategoricalDtype(list(levels), ordered=False)


def fine_levels(tumour_type: str) -> tuple[str, ...]:
    """Return the fine tumour types a (fine or coarse) level may stand for.

    Parameters
    ----------
    tumour_type : str
        A level of :data:`PATIENT_TUMOUR_TYPES`.

    Returns
    -------
    tuple of str
        ``(tumour_type,)`` for a fine level; the member levels for a coarse one.

    Raises
    ------
    ValueError
        If ``tumour_type`` is not a known level.
    """
    if tumour_type in TUMOUR_TYPES:
        return (tumour_type,)
    if tumour_type in COARSE_TUMOUR_TYPES:
        return COARSE_TUMOUR_TYPES[tumour_type]
    raise ValueError(
        f"tumour_type={tumour_type!r} is not a known tumour type; "
        f"allowed: {', '.join(PATIENT_TUMOUR_TYPES)}"
    )
