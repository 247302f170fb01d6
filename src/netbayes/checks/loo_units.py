"""What a leave-one-out check scores: likelihood units and the published figures they carry.

A *unit* is one term of a model's likelihood that can be left out: one Table 5 row (its median
and its SE), one 188Re-HEDP patient, one Table 6 phase-by-line count pair, one Table 6 "any"
pair, one 188Re per-cycle line. Leaving a unit out removes every figure it carries, so each
figure's PIT is taken under a predictive that saw none of its numbers. A figure held out of the
likelihood altogether (a Table 5 "all tumours" median) has no unit: its predictive is the
posterior predictive, which already did not see it (though it saw the same patients' type rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LooFigure", "LooUnit"]


@dataclass
class LooFigure:
    """One published figure and its predictive, per posterior draw.

    Attributes
    ----------
    endpoint : str
        ``"PFS"``, ``"OS"`` or ``"toxicity"``.
    figure : str
        What the figure is (as in the in-sample validation table).
    source : str
        Paper and location (``data/sources.csv``).
    source_table, source_row_id : str
        Its data table and ``row_id``.
    published : float
        The published value.
    below, equal : numpy.ndarray, shape (S,)
        Per posterior draw, the predictive probabilities :math:`P(X < y)` and
        :math:`P(X = y)` (0 for a continuous figure; for a censored time :math:`F(c)` and
        :math:`1 - F(c)`).
    sample : numpy.ndarray, shape (S,)
        One predictive draw of the figure per posterior draw (for the predictive interval).
    censored : bool
        The published value is a censored time (a lower bound).
    precomputed : dict, optional
        For a figure held out of the likelihood: ``pit``, ``median``, ``lower``, ``upper`` of its
        posterior predictive, computed by the in-sample check's simulation (``below``, ``equal``
        and ``sample`` are then empty).
    """

    endpoint: str
    figure: str
    source: str
    source_table: str
    source_row_id: str
    published: float
    below: np.ndarray = field(default_factory=lambda: np.empty(0))
    equal: np.ndarray = field(default_factory=lambda: np.empty(0))
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    censored: bool = False
    precomputed: dict[str, float] | None = None


@dataclass
class LooUnit:
    """A likelihood term that can be left out, and the figures it carries.

    Attributes
    ----------
    key : str
        A name for the term (e.g. ``"pfs:t5_pfs_retre_rprrt_midgut"``).
    loglik : numpy.ndarray or None, shape (S,)
        The term's log-likelihood at each posterior draw; None for figures held out of the
        likelihood (their predictive needs no reweighting).
    figures : list of LooFigure
    """

    key: str
    loglik: np.ndarray | None
    figures: list[LooFigure]
