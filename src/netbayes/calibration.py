"""The input ranges the calibration data cover, and the check of a model card's copy of them.

:func:`calibrated_ranges` reads them from ``data/`` (the selection thresholds, activity ranges and
tumour-type mixes behind the extrapolation warnings of :mod:`netbayes.predict`); a stored
posterior keeps them in its model card (``calibration``), and :func:`check_calibration` checks
that copy when it is loaded. This module sits below both :mod:`netbayes.store` and
:mod:`netbayes.predict` (it imports :mod:`netbayes.vocab`; the data tables only when
:func:`calibrated_ranges` is called), so neither imports the other for it.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from netbayes import vocab

__all__ = ["CALIBRATION_KEYS", "calibrated_ranges", "check_calibration"]


def _short(value: Any) -> str:
    """A repr of a card value, abbreviated (a corrupt card may hold anything)."""
    return reprlib.repr(value)


@cache
def calibrated_ranges() -> dict[str, Any]:
    """The ranges the calibration data cover, read from ``data/``.

    Returns
    -------
    dict
        ``prior_pfs_min`` (line -> selection threshold, months: R-PRRT 18, RR-PRRT 14),
        ``planned_gbq`` (line -> (min, max) activity given in the phase, GBq; 188Re-HEDP: the
        pilot's 188Re activities), ``cumulative_gbq`` ((min, max) cumulative 177Lu activity after
        a retreatment line), ``re188_prior_gbq`` ((min, max) prior 177Lu of the 188Re pilot)
        and ``type_weights`` (coarse type -> weights over its fine types, the Rotterdam mix).
    """
    from netbayes.data import load_table

    sel = load_table("rotterdam_selection").set_index("eligible_for")["min_months"]
    doses = load_table("rotterdam_doses")
    phase = doses[doses["quantity"] == "activity_in_phase"]
    planned = {
        str(ln): (float(g["min_gbq"].min()), float(g["max_gbq"].max()))
        for ln, g in phase.groupby(phase["phase"].astype(str))
    }
    cum = doses[doses["quantity"] == "cumulative_after_phase"]
    re = load_table("re188_patients")
    planned["188Re-HEDP"] = (
        float(re["re188_cumulative_gbq"].min()),
        float(re["re188_cumulative_gbq"].max()),
    )
    mix = load_table("rotterdam_tumour_mix")
    mix = mix[(mix["reported_in"] == "table5_pfs") & (mix["line"] == "I-PRRT/R-PRRT")]
    n_by = dict(zip(mix["tumour_type"].astype(str), mix["n"].astype(float), strict=True))
    weights = {}
    for coarse, members in vocab.COARSE_TUMOUR_TYPES.items():
        tot = sum(n_by[m] for m in members)
        weights[coarse] = {m: n_by[m] / tot for m in members}
    rr = load_table("rotterdam_tumour_mix")
    rr = rr[(rr["reported_in"] == "table5_pfs") & (rr["group"] == "retreatment")]
    rr = rr[rr["tumour_type"] != "all"]
    cohort_mix = {
        str(k): {str(t): float(n) for t, n in zip(g["tumour_type"], g["n"], strict=True)}
        for k, g in rr.groupby(rr["line"].astype(str))
    }
    return {
        "prior_pfs_min": {str(k): float(v) for k, v in sel.items()},
        "planned_gbq": planned,
        "cumulative_gbq": (float(cum["min_gbq"].min()), float(cum["max_gbq"].max())),
        "re188_prior_gbq": (
            float(re["lu177_cumulative_gbq"].min()),
            float(re["lu177_cumulative_gbq"].max()),
        ),
        "type_weights": weights,
        "cohort_mix": cohort_mix,
    }


CALIBRATION_KEYS = (
    "prior_pfs_min",
    "planned_gbq",
    "cumulative_gbq",
    "re188_prior_gbq",
    "type_weights",
    "cohort_mix",
)
"""The entries of a card's ``calibration`` (:func:`calibrated_ranges`)."""


def _is_amount(x: Any) -> bool:
    """A finite number >= 0 (not a boolean)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < math.inf


def check_calibration(cal: Any) -> None:
    """Check a model card's ``calibration`` entry: every range prediction reads, well formed.

    Parameters
    ----------
    cal : object
        The entry, as read from JSON (see :func:`calibrated_ranges`).

    Raises
    ------
    ValueError
        Naming the malformed entry, its value and what is allowed.
    """

    def bad(keys: tuple[str, ...], value: Any, allowed: str) -> ValueError:
        where = "calibration" + "".join(f"[{k!r}]" for k in keys)
        return ValueError(f"{where}={_short(value)} is not allowed; expected {allowed}")

    def amounts(keys: tuple[str, ...], value: Any, names: Sequence[str], positive: bool) -> None:
        """A mapping of some of ``names`` to numbers >= 0 (one positive if ``positive``)."""
        what = f"a mapping of {', '.join(names)} to numbers >= 0"
        if not isinstance(value, Mapping) or not all(
            k in names and _is_amount(v) for k, v in value.items()
        ):
            raise bad(keys, value, what)
        if positive and not sum(value.values()) > 0:
            raise bad(keys, value, f"{what}, at least one of them > 0")

    def pair(keys: tuple[str, ...], value: Any) -> None:
        if not (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(_is_amount(v) for v in value)
            and value[0] <= value[1]
        ):
            raise bad(keys, value, "a pair [lower, upper] of numbers, 0 <= lower <= upper")

    if not isinstance(cal, Mapping):
        raise ValueError(
            f"calibration={_short(cal)} is not allowed; expected a mapping of the calibrated "
            "ranges (netbayes.calibration.calibrated_ranges)"
        )
    missing = [k for k in CALIBRATION_KEYS if k not in cal]
    if missing:
        raise ValueError(
            f"calibration={_short(cal)} is not allowed; expected a mapping with the entries "
            f"{', '.join(CALIBRATION_KEYS)} (missing: {', '.join(missing)})"
        )
    amounts(("prior_pfs_min",), cal["prior_pfs_min"], vocab.LINES, positive=False)
    planned = cal["planned_gbq"]
    if not isinstance(planned, Mapping) or not set(vocab.LINES) <= set(planned):
        raise bad(("planned_gbq",), planned, f"a pair for each of {', '.join(vocab.LINES)}")
    for line, v in planned.items():
        pair(("planned_gbq", line), v)
    pair(("cumulative_gbq",), cal["cumulative_gbq"])
    pair(("re188_prior_gbq",), cal["re188_prior_gbq"])
    weights = cal["type_weights"]
    coarse = vocab.COARSE_TUMOUR_TYPES
    if not isinstance(weights, Mapping) or not set(coarse) <= set(weights):
        raise bad(("type_weights",), weights, f"a mapping with each of {', '.join(coarse)}")
    for c, members in coarse.items():
        amounts(("type_weights", c), weights[c], members, positive=True)
    mix = cal["cohort_mix"]
    groups = ("I-PRRT/R-PRRT", "RR-PRRT")
    if not isinstance(mix, Mapping) or not set(groups) <= set(mix):
        raise bad(("cohort_mix",), mix, f"a mapping with each of {', '.join(groups)}")
    for g in groups:
        amounts(("cohort_mix", g), mix[g], vocab.PATIENT_TUMOUR_TYPES, positive=True)
