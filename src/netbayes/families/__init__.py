"""Survival families: one object per distribution, shared by models, prediction, checks and
simulators.

A family (:class:`SurvivalFamily`) is an AFT location-scale law on log time with shape ``k``
and scale ``lam``; it provides PyTensor log-densities for the models and vectorised NumPy
closed forms for prediction. :data:`FAMILIES` is the registry; :func:`get_family` looks a name
up. To add a family: a module here defining a :class:`SurvivalFamily` subclass and one line in
:data:`FAMILIES` (see ARCHITECTURE.md, "Add a survival family").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netbayes.families.base import SurvivalFamily
from netbayes.families.lognormal import LOGNORMAL
from netbayes.families.weibull import WEIBULL

__all__ = [
    "DEFAULT_FAMILY",
    "FAMILIES",
    "LOGNORMAL",
    "WEIBULL",
    "SurvivalFamily",
    "family_of",
    "get_family",
]

FAMILIES: dict[str, SurvivalFamily] = {
    WEIBULL.name: WEIBULL,
    LOGNORMAL.name: LOGNORMAL,
}
"""Registered survival families by name."""
DEFAULT_FAMILY = WEIBULL.name
"""The family of the shipped posteriors."""


def get_family(family: str | SurvivalFamily) -> SurvivalFamily:
    """Return the registered family ``family`` (a name, or a family object passed through).

    Raises
    ------
    ValueError
        If the name is not registered; the message lists the registered names.
    """
    if isinstance(family, SurvivalFamily):
        return family
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} is not allowed; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[family]


def family_of(src: Any) -> str:
    """The survival family a posterior was fitted with (default :data:`DEFAULT_FAMILY`).

    Read from a stored posterior's model card (``model_config["family"]``) or a fit's
    ``model_info["config"]["family"]``; a plain mapping of draws has none.
    """
    card, info = getattr(src, "card", None), getattr(src, "model_info", None)
    for holder, key in ((card, "model_config"), (info, "config")):
        config = holder.get(key) if isinstance(holder, Mapping) else None
        if isinstance(config, Mapping) and config.get("family") is not None:
            return str(config["family"])
    return DEFAULT_FAMILY
