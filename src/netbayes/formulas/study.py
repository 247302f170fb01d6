"""The study (centre) level on plain posterior draws (NumPy only).

A posterior with a study level holds one effect per study: ``u_study`` (survival, log time) or
``v_study`` (toxicity, latent probit scale), with dimension ``study``, and their SD ``tau`` /
``tau_tox``. Predictions come in three kinds (``centre``):

* ``"new"``: a centre that is not in the data; its effect is drawn, one standard normal per
  posterior draw times the SD, so the answer carries the between-centre spread;
* a study label (e.g. ``"rotterdam2019"``): that study's posterior effect;
* ``"typical"``: effect zero, the population-average centre (narrower than ``"new"``; no real
  centre is known to be typical).

The published checks compare each published figure with the predictive of *its own* study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["CENTRES", "study_draws", "study_labels"]

CENTRES: tuple[str, ...] = ("new", "typical")
"""The centre choices besides a study label."""


def study_labels(posterior: Any, var: str, default: Sequence[str] = ()) -> list[str] | None:
    """The ``study`` coordinate labels of ``var`` in a posterior, or None if it has none.

    Parameters
    ----------
    posterior : StoredPosterior, FitResult or mapping
        A stored posterior (``coords``), a fit (``posterior`` DataTree) or plain draws; plain
        draws carry no labels, so ``default`` (the packaged studies in model order) is used
        when ``var`` is present.
    var : str
        ``"u_study"`` or ``"v_study"``.
    default : sequence of str
        Labels of draws without coordinates.
    """
    coords = getattr(posterior, "coords", None)
    if isinstance(coords, Mapping) and "study" in coords:
        return [str(x) for x in coords["study"]]
    children = getattr(posterior, "children", None)  # an xarray DataTree
    if isinstance(children, Mapping) and "posterior" in children:
        ds = posterior["posterior"].dataset
        if var in ds and "study" in ds[var].coords:
            return [str(x) for x in ds[var].coords["study"].to_numpy()]
        return None
    if hasattr(posterior, "data_vars"):  # an xarray Dataset
        if var in posterior and "study" in posterior[var].coords:
            return [str(x) for x in posterior[var].coords["study"].to_numpy()]
        return None
    tree = getattr(posterior, "posterior", None)
    if tree is not None and not isinstance(posterior, Mapping):
        try:
            ds = tree["posterior"].dataset
        except (KeyError, TypeError):
            ds = None
        if ds is not None and var in ds and "study" in ds[var].coords:
            return [str(x) for x in ds[var].coords["study"].to_numpy()]
    if isinstance(posterior, Mapping) and var in posterior:
        return list(default)
    return None


def study_draws(draws: np.ndarray, labels: Sequence[str], study: str) -> np.ndarray:
    """The draws of one study's effect from ``draws`` of shape (draws, studies).

    Raises
    ------
    ValueError
        ``study`` is not one of ``labels``.
    """
    if study not in labels:
        raise ValueError(f"centre={study!r} is not a study of this posterior; allowed: "
                         f"{', '.join([*CENTRES, *labels])}")  # fmt: skip
    return np.asarray(draws)[:, list(labels).index(study)]
