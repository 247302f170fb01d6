"""The model specification shared by every layer: constants, parameter names, lines, endpoints.

This is the bottom layer of netbayes (it imports only :mod:`netbayes.vocab`). Everything the
models, the prediction kernels, the checks and the simulators must agree on is declared here
once and imported everywhere else:

* the reference values of the survival covariates (:data:`X_REF`, :data:`GBQ_REF`,
  :data:`GBQ_UNIT`) and of the toxicity dose (:data:`A_REF_GBQ`, :data:`DOSE_SCALE_GBQ`);
* the posterior variables each prediction needs (:data:`SURVIVAL_PARAMS`,
  :func:`survival_params`, :data:`TOXICITY_PARAMS`);
* the treatment-line table (:data:`LINE_SPECS`): which survival block a line belongs to, its
  log-time effect, its toxicity effect, whether its activity adds to the cumulative 177Lu, and
  the selection rule that admits a patient to it. Code that branches on a line reads this table
  instead of comparing line strings;
* the modelled endpoints (:data:`SURVIVAL_ENDPOINTS`) and model types (:data:`MODEL_TYPES`).

The published numbers themselves (selection thresholds, median activities) are data and stay
in ``data/``; this module holds only the structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "A_REF_GBQ",
    "DOSE_SCALE_GBQ",
    "ESS_MIN",
    "FIRST_LINE",
    "GBQ_REF",
    "GBQ_UNIT",
    "LINE_SPECS",
    "MODEL_TYPES",
    "PARAMETER_RANGES",
    "RHAT_MAX",
    "SALVAGE_LINES",
    "SURVIVAL_ENDPOINTS",
    "SURVIVAL_PARAMS",
    "SURVIVAL_PARAMS_OS",
    "TOXICITY_PARAMS",
    "X_REF",
    "LineSpec",
    "ParameterRange",
    "check_endpoint",
    "check_line",
    "line_spec",
    "parameter_range",
    "survival_params",
]

# ---------------------------------------------------------------------------------------------
# reference values
# ---------------------------------------------------------------------------------------------
X_REF: Final[float] = 36.0
"""Reference prior PFS (months) at which the salvage intercept is defined."""
GBQ_REF: Final[float] = 44.7
"""Reference cumulative 177Lu activity (GBq): the median after R-PRRT."""
GBQ_UNIT: Final[float] = 10.0
"""The survival GBq effect is per this many GBq of cumulative activity."""
A_REF_GBQ: Final[float] = 29.9
"""Reference activity in a toxicity block (GBq): the I-PRRT median of the retreatment group."""
DOSE_SCALE_GBQ: Final[float] = 10.0
"""Toxicity dose coefficients are per this many GBq (177Lu-octreotate equivalent)."""

# ---------------------------------------------------------------------------------------------
# convergence targets
# ---------------------------------------------------------------------------------------------
RHAT_MAX: Final[float] = 1.01
"""Largest acceptable rank-normalised split R-hat (Vehtari et al. 2021)."""
ESS_MIN: Final[int] = 400
"""Smallest acceptable bulk effective sample size."""

# ---------------------------------------------------------------------------------------------
# endpoints and model types
# ---------------------------------------------------------------------------------------------
SURVIVAL_ENDPOINTS: Final[tuple[str, ...]] = ("pfs", "os")
"""Endpoints the survival model describes (PFS or OS after the line)."""
MODEL_TYPES: Final[tuple[str, ...]] = ("survival-pfs", "survival-os", "toxicity")
"""The stored model types: one survival model per endpoint and the toxicity model."""

Endpoint = Literal["pfs", "os"]


def check_endpoint(endpoint: object, name: str = "endpoint") -> str:
    """Return ``endpoint`` if it is a survival endpoint, else raise a ValueError naming it.

    Parameters
    ----------
    endpoint : object
        The value to check.
    name : str
        The field name used in the error message.

    Returns
    -------
    str
    """
    if endpoint not in SURVIVAL_ENDPOINTS:
        raise ValueError(f"{name}={endpoint!r} is not allowed; expected 'pfs' or 'os'")
    return str(endpoint)


# ---------------------------------------------------------------------------------------------
# posterior variables
# ---------------------------------------------------------------------------------------------
SURVIVAL_PARAMS: Final[tuple[str, ...]] = (
    "alpha1",
    "alpha2",
    "k1",
    "k2",
    "sigma1",
    "sigma2",
    "z1",
    "z2",
    "beta_x",
    "beta_gbq",
    "gamma_rr",
    "gamma_re188",
)
"""Posterior variables the PFS predictions need (``z1``, ``z2`` have a tumour-type axis)."""
SURVIVAL_PARAMS_OS: Final[tuple[str, ...]] = (
    *SURVIVAL_PARAMS,
    "alpha1_os",
    "k1_os",
    "sigma1_os",
    "z1_os",
)
"""Posterior variables the OS predictions need (first-line OS has its own block)."""


def survival_params(endpoint: str) -> tuple[str, ...]:
    """Return the posterior variables needed to predict ``endpoint`` ("pfs" or "os")."""
    return SURVIVAL_PARAMS if check_endpoint(endpoint) == "pfs" else SURVIVAL_PARAMS_OS


TOXICITY_PARAMS: Final[tuple[str, ...]] = (
    "c3",
    "log_gap",
    "beta_activity",
    "beta_prior",
    "delta_retreated",
    "delta_re188",
    "theta",
    "sigma_u",
)
"""Posterior variables the toxicity predictions need, as named in the fitted posterior.

``c3`` has shape (draws, 3) (cell-line axis), ``log_gap`` (draws, 3, 3) (cell line, gap
``c2-c1``, ``c3-c2``, ``c4-c3``); the others are scalars per draw. All are on the conditional
(given :math:`u`) probit scale; ``theta`` is GBq 177Lu-equivalent per GBq 188Re-HEDP."""


# ---------------------------------------------------------------------------------------------
# treatment lines
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineSpec:
    """How one treatment line enters the models.

    Attributes
    ----------
    name : str
        The line, as in :data:`netbayes.vocab.LINES`.
    block : {"first", "salvage"}
        The survival block: first-line (its own scale and shape, no covariates) or salvage
        (the AFT regression on prior PFS and cumulative activity).
    survival_effect : str or None
        Name of the line's log-time effect in the survival posterior (``None``: the
        reference line of its block).
    toxicity_effect : str or None
        Name of the line's shift of the toxicity propensity (``None``: the reference).
    adds_lu177 : bool
        Whether the line's planned activity is 177Lu and adds to the cumulative 177Lu
        activity :math:`d` of the survival formula.
    selected_after : str or None
        The line whose PFS selects patients for this one (the published selection rule,
        threshold in ``data/``), or ``None``.
    """

    name: str
    block: Literal["first", "salvage"]
    survival_effect: str | None
    toxicity_effect: str | None
    adds_lu177: bool
    selected_after: str | None

    @property
    def is_first(self) -> bool:
        """True for the first-line block."""
        return self.block == "first"

    @property
    def nested(self) -> bool:
        """True when patients are selected on the PFS of a salvage line (RR-PRRT after
        R-PRRT): their prior PFS is itself a salvage time."""
        return self.selected_after is not None and LINE_SPECS[self.selected_after].block != "first"


LINE_SPECS: Final[dict[str, LineSpec]] = {
    s.name: s
    for s in (
        LineSpec("I-PRRT", "first", None, None, True, None),
        LineSpec("R-PRRT", "salvage", None, "delta_retreated", True, "I-PRRT"),
        LineSpec("RR-PRRT", "salvage", "gamma_rr", "delta_retreated", True, "R-PRRT"),
        LineSpec("188Re-HEDP", "salvage", "gamma_re188", "delta_re188", False, None),
    )
}
"""The line table, in :data:`netbayes.vocab.LINES` order (a test checks they agree)."""

FIRST_LINE: Final[str] = next(s.name for s in LINE_SPECS.values() if s.is_first)
"""The first-line block's line (I-PRRT)."""
SALVAGE_LINES: Final[tuple[str, ...]] = tuple(s.name for s in LINE_SPECS.values() if not s.is_first)
"""The lines of the salvage block."""


def check_line(line: object, name: str = "line") -> str:
    """Return ``line`` if it is a treatment line, else raise a ValueError naming the field."""
    if line not in LINE_SPECS:
        raise ValueError(f"{name}={line!r} is not allowed; expected one of {', '.join(LINE_SPECS)}")
    return str(line)


def line_spec(line: str) -> LineSpec:
    """Return the :class:`LineSpec` of ``line`` (ValueError for an unknown line)."""
    return LINE_SPECS[check_line(line)]


# ---------------------------------------------------------------------------------------------
# what a stored draw may be: support and plausible range per posterior variable
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterRange:
    """The values a posterior variable's draws may take.

    Attributes
    ----------
    meaning : str
        What the variable is, in words (for error messages).
    lower, upper : float
        The support: every draw lies strictly between them when ``open_lower`` /
        ``open_upper``, else inclusive (infinite bounds: unbounded).
    plausible : tuple of float
        A much wider range than any fit on NET data produces (many prior SDs beyond the priors
        of :mod:`netbayes.models`); a draw outside it means a corrupt or hand-written store or
        a fit gone wrong (e.g. a Weibull log scale of 700: a median of ~1e303 months).
    open_lower, open_upper : bool
        Whether the support excludes ``lower`` / ``upper``.
    """

    meaning: str
    lower: float
    upper: float
    plausible: tuple[float, float]
    open_lower: bool = False
    open_upper: bool = False

    def allowed(self, name: str = "x") -> str:
        """The support and plausible range in words.

        Parameters
        ----------
        name : str
            The variable's name, e.g. ``"k2"``: ``"0 < k2 (support), plausibly 0.01 to 100"``.

        Returns
        -------
        str
        """
        lo = f"{self.lower:g} {'<' if self.open_lower else '<='} " if self.lower > -_INF else ""
        hi = f" {'<' if self.open_upper else '<='} {self.upper:g}" if self.upper < _INF else ""
        support = f"{lo}{name}{hi}" if lo or hi else f"{name} finite"
        return f"{support} (support), plausibly {self.plausible[0]:g} to {self.plausible[1]:g}"


_INF = float("inf")


def _real(meaning: str, bound: float) -> ParameterRange:
    return ParameterRange(meaning, -_INF, _INF, (-bound, bound))


def _positive(meaning: str, plausible: tuple[float, float]) -> ParameterRange:
    return ParameterRange(meaning, 0.0, _INF, plausible, open_lower=True)


_LOG_SCALE = ParameterRange(
    "a survival log scale (log months)", -_INF, _INF, (-7.0, 12.0)
)  # exp(-7) = 0.001 month to exp(12) = 160,000 months
_SHAPE = _positive("a survival shape (Weibull shape; log-normal precision)", (0.01, 100.0))
_SD = _positive("a standard deviation", (0.0, 20.0))
_OFFSET = _real("a standard-normal offset", 12.0)
_EFFECT = _real("a regression coefficient or effect (log-time or probit scale)", 20.0)

PARAMETER_RANGES: Final[dict[str, ParameterRange]] = {
    **dict.fromkeys(
        ("alpha1", "alpha2", "alpha1_os", "alpha1_anchor", "alpha2_anchor", "alpha1_os_anchor"),
        _LOG_SCALE,
    ),
    **dict.fromkeys(("k1", "k2", "k1_os"), _SHAPE),
    **dict.fromkeys(("sigma1", "sigma2", "sigma1_os", "tau", "tau_tox", "sigma_u"), _SD),
    **dict.fromkeys(("z1", "z2", "z1_os", "z_study", "z_study_tox"), _OFFSET),
    **dict.fromkeys(
        (
            "beta_x",
            "beta_gbq",
            "gamma_rr",
            "gamma_re188",
            "delta_control",
            "delta_retreated",
            "delta_re188",
            "delta_user",
            "u_study",
            "v_study",
            "beta_activity",
            "beta_prior",
        ),
        _EFFECT,
    ),
    "kappa_se": _positive("the SE noise scale", (1e-3, 1e3)),
    "spearman_attenuation": ParameterRange(
        "the Spearman attenuation factor", 0.0, 1.0, (0.0, 1.0), open_lower=True
    ),
    "theta": _positive("GBq 177Lu-equivalent per GBq 188Re-HEDP", (1e-3, 1e4)),
    "c3": _real("a probit cutpoint", 50.0),
    "log_gap": _real("a log gap between probit cutpoints", 20.0),
}
"""Support and plausible range of each stored posterior variable (a toxicity ``<name>_marg``
variable has the range of ``<name>``). The store checks every draw against them when it saves
and when it loads a posterior (:mod:`netbayes.store`); a variable not listed must be finite."""


def parameter_range(name: str) -> ParameterRange | None:
    """The :class:`ParameterRange` of a stored variable, or None for one not listed.

    Parameters
    ----------
    name : str
        A posterior variable name (``<name>_marg`` takes ``<name>``'s range).

    Returns
    -------
    ParameterRange or None
    """
    if name in PARAMETER_RANGES:
        return PARAMETER_RANGES[name]
    if name.endswith("_marg"):
        return PARAMETER_RANGES.get(name[: -len("_marg")])
    return None
