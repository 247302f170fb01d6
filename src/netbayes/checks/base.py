"""What a check is: :class:`Check` objects return :class:`CheckResult` objects.

A check compares published figures with their 95% posterior predictive intervals. It reads the
posteriors it needs from a :class:`Posteriors` (which caches their draws and shared simulations
for the checks of one run) and returns a tidy table, one row per figure, holding
:data:`CHECK_COLUMNS`: the :data:`VALIDATION_COLUMNS` plus the figure's source key (data table
and ``row_id``, as in ``data/sources.csv``), and a one-line sentence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from netbayes.data import load_table
from netbayes.families import family_of

__all__ = [
    "CHECK_COLUMNS",
    "POSTERIOR_NAMES",
    "SOURCE_KEY_COLUMNS",
    "VALIDATION_COLUMNS",
    "Check",
    "CheckResult",
    "Posteriors",
    "model_config",
    "source_labels",
]

VALIDATION_COLUMNS = [
    "check",
    "figure",
    "source",
    "published",
    "predicted_median",
    "pi95_lower",
    "pi95_upper",
    "inside",
    "in_likelihood",
]
"""Columns of a validation table (the interval is a 95% equal-tailed predictive one)."""
SOURCE_KEY_COLUMNS = ["source_table", "source_row_id"]
"""The figure's data table (``data/<table>.csv``) and ``row_id`` in it."""
CHECK_COLUMNS = [*VALIDATION_COLUMNS, *SOURCE_KEY_COLUMNS]
"""Columns of :attr:`CheckResult.table`."""

PosteriorName = Literal["survival_pfs", "survival_os", "toxicity"]
POSTERIOR_NAMES: tuple[PosteriorName, ...] = ("survival_pfs", "survival_os", "toxicity")
"""The posteriors a check may need (fields of :class:`Posteriors`)."""


def source_labels() -> dict[tuple[str, str], str]:
    """Map (table, row_id) to ``"paper: location"``, from ``data/sources.csv``.

    Returns
    -------
    dict of (str, str) to str
        The location is cut before its first parenthesis (``"rotterdam2019: Table 5, PFS"``).
    """
    s = load_table("sources")
    return {
        (str(f).removesuffix(".csv"), str(rid)): f"{paper}: {str(loc).split(' (')[0]}"
        for f, rid, paper, loc in s[["file", "row_id", "paper", "location"]].itertuples(index=False)
    }


def model_config(posterior: Any) -> dict[str, Any]:
    """The model settings a posterior was fitted with: its card's ``model_config`` (a stored
    posterior), else its fit's ``model_info["config"]``, else ``{}`` (plain draws: the
    model's defaults apply)."""
    card = getattr(posterior, "card", None)
    cfg = card.get("model_config") if isinstance(card, dict) else None
    if not cfg:
        info = getattr(posterior, "model_info", None)
        cfg = info.get("config") if isinstance(info, dict) else None
    return dict(cfg or {})


@dataclass(eq=False)
class Posteriors:
    """The posteriors one run of checks reads, with a cache shared by its checks.

    Parameters
    ----------
    survival_pfs, survival_os, toxicity : StoredPosterior, FitResult or mapping, optional
        Anything with ``all_draws()`` / ``draws(name)``, or a mapping of draw arrays (first axis
        = draw). A missing one (None) skips the checks that need it.
    """

    survival_pfs: Any = None
    survival_os: Any = None
    toxicity: Any = None
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)

    def get(self, name: str) -> Any:
        """The posterior ``name`` (one of :data:`POSTERIOR_NAMES`), or None."""
        if name not in POSTERIOR_NAMES:
            raise ValueError(f"posterior={name!r}; expected one of {', '.join(POSTERIOR_NAMES)}")
        return getattr(self, name)

    def available(self) -> tuple[str, ...]:
        """Names of the posteriors that are present."""
        return tuple(n for n in POSTERIOR_NAMES if getattr(self, n) is not None)

    def draws(self, name: str) -> dict[str, np.ndarray]:
        """Every draw array of the posterior ``name`` (computed once per run).

        Raises
        ------
        ValueError
            If ``name`` is not one of :data:`POSTERIOR_NAMES` or that posterior is missing.
        """
        src = self.get(name)
        if src is None:
            raise ValueError(f"posterior {name!r} is None; this check needs it")

        def compute() -> dict[str, np.ndarray]:
            if isinstance(src, Mapping):
                return {k: np.asarray(v) for k, v in src.items()}
            return src.all_draws()

        return self.memo(("draws", name), compute)

    def family(self, name: str) -> str:
        """The survival family of the posterior ``name`` (from its card or fit; default
        Weibull, also for a plain mapping of draws)."""
        return family_of(self.get(name))

    def study_effect(self, name: str, study: str) -> np.ndarray | None:
        """Draws of ``study``'s effect in the posterior ``name`` (``u_study`` of a survival
        posterior, ``v_study`` of the toxicity one), or None without a study level. Draws
        without coordinates take the packaged studies' order."""
        from netbayes.calibration import STUDIES
        from netbayes.formulas.study import study_draws, study_labels

        var = "v_study" if name == "toxicity" else "u_study"
        draws = self.draws(name)
        if var not in draws:
            return None
        default = list(STUDIES) if name != "survival_pfs" else list(STUDIES)[:1]
        labels = study_labels(self.get(name), var, default)
        assert labels is not None
        return study_draws(draws[var], labels, study)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per run and key (e.g. a simulation shared by two checks)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


@dataclass(frozen=True)
class CheckResult:
    """What a check returns: its rows and a one-line summary.

    Parameters
    ----------
    name : str
        The check's name (the ``check`` column).
    table : pandas.DataFrame
        One row per published figure, columns :data:`CHECK_COLUMNS` in that order.
    """

    name: str
    table: pd.DataFrame

    def __post_init__(self) -> None:
        cols = list(self.table.columns)
        if cols != CHECK_COLUMNS:
            raise ValueError(
                f"table columns={cols!r}; expected exactly {CHECK_COLUMNS!r} in that order"
            )
        names = set(self.table["check"])
        if names - {self.name}:
            raise ValueError(
                f"check column holds {sorted(names)!r}; expected only the check name {self.name!r}"
            )

    @property
    def n(self) -> int:
        """Number of figures checked."""
        return len(self.table)

    @property
    def n_inside(self) -> int:
        """Number of figures inside their predictive interval."""
        return int(self.table["inside"].sum())

    @property
    def passed(self) -> bool:
        """True when every figure lies inside its interval."""
        return self.n_inside == self.n

    def sentence(self) -> str:
        """One line: name, figures inside / checked, PASS or FAIL (``netbayes validate``)."""
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.name:<30} {self.n_inside:>3}/{self.n:<3} inside  {verdict}"

    def failures(self) -> pd.DataFrame:
        """The rows whose figure lies outside its interval."""
        return self.table[~self.table["inside"].astype(bool)]


class Check(ABC):
    """A published-figure check.

    Subclasses set :attr:`name` (the ``check`` column) and :attr:`needs` (the posterior it
    reads) and implement :meth:`run`.
    """

    name: str
    needs: PosteriorName

    def applies(self, posteriors: Posteriors) -> bool:
        """True when the posterior this check needs is present."""
        return posteriors.get(self.needs) is not None

    @abstractmethod
    def run(self, posteriors: Posteriors) -> CheckResult:
        """Compare the figures with their predictive intervals.

        Parameters
        ----------
        posteriors : Posteriors

        Returns
        -------
        CheckResult
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
