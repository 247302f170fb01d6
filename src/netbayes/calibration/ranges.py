"""The card's copy of the calibrated input ranges, and its check.

A stored posterior keeps :func:`netbayes.calibration.calibrated_ranges` in its model card
(``calibration``) so that prediction need not re-read the data; :func:`check_calibration`
checks that copy when the card is loaded. This module imports only :mod:`netbayes.vocab`.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from netbayes import vocab

__all__ = ["CALIBRATION_KEYS", "OPTIONAL_CALIBRATION_KEYS", "check_calibration"]


def _short(value: Any) -> str:
    """A repr of a card value, abbreviated (a corrupt card may hold anything)."""
    return reprlib.repr(value)


CALIBRATION_KEYS = (
    "prior_pfs_min",
    "planned_gbq",
    "cumulative_gbq",
    "re188_prior_gbq",
    "type_weights",
    "cohort_mix",
)
"""The entries of a card's ``calibration`` (:func:`netbayes.calibration.calibrated_ranges`)."""
OPTIONAL_CALIBRATION_KEYS = ("re188_prior_pfs",)
"""Entries a card may lack (written by later versions; prediction then takes the packaged
data's)."""


def _is_amount(x: Any) -> bool:
    """A finite number >= 0 (not a boolean)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < math.inf


def check_calibration(cal: Any) -> None:
    """Check a model card's ``calibration`` entry: every range prediction reads, well formed.

    Parameters
    ----------
    cal : object
        The entry, as read from JSON (see :func:`netbayes.calibration.calibrated_ranges`).

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
    if "re188_prior_pfs" in cal:
        v = cal["re188_prior_pfs"]
        if not (
            isinstance(v, (list, tuple))
            and len(v) == 3
            and all(_is_amount(x) for x in v)
            and 0 < v[1] < v[0] < v[2]
        ):
            raise bad(("re188_prior_pfs",), v, "[mean, min, max] months, 0 < min < mean < max")
    mix = cal["cohort_mix"]
    groups = ("I-PRRT/R-PRRT", "RR-PRRT")
    if not isinstance(mix, Mapping) or not set(groups) <= set(mix):
        raise bad(("cohort_mix",), mix, f"a mapping with each of {', '.join(groups)}")
    for g in groups:
        amounts(("cohort_mix", g), mix[g], vocab.PATIENT_TUMOUR_TYPES, positive=True)
