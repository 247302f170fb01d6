r"""The prior share of an answer: how much of its posterior variance is prior (NumPy only).

Definition (``docs/prior_share.md`` argues each choice)
-------------------------------------------------------
A *parameter element* is one scalar of a posterior variable the prediction uses (``beta_gbq``,
``c3[platelets]``, a tumour-type effect). It is **prior-dominated** when its posterior SD is at
least :data:`PRIOR_DOMINATED_RATIO` (0.7) times its prior SD: the data have narrowed it by less
than 30%.

* Prior SDs are the exact SDs (:meth:`netbayes.priors.Prior.mean_sd`) of the priors recorded in
  the posterior's model card; a posterior without them (plain draws, a DataTree) uses the
  model's default priors, and the table says so (``prior_source``).
* A tumour-type effect is taken centred, :math:`e_j = \sigma z_j` (what the prediction adds
  to the log scale), with the marginal prior SD :math:`\sqrt{E[\sigma^2]}` (:math:`z_j \sim
  N(0, 1)`); the non-centred :math:`z_j` alone is not a meaningful scale (its posterior SD
  stays near 1 even for a well-measured type, because :math:`\sigma` is uncertain).
  A study effect (``u_study``, ``v_study``) likewise has the marginal prior SD implied by the
  prior of its SD (``tau``, ``tau_tox``).
* The new centre's standard normal (``centre="new"``) is predictive spread, not a parameter;
  its SD ``tau`` is one.

The **prior share** of an answer :math:`g` (on its scale: log months for a median, logit for a
probability) is the part of its posterior variance explained by the prior-dominated elements
:math:`\theta_P`, the first-order variance share of the law of total variance,

.. math:: \mathrm{share} = 1 - E[\mathrm{Var}(g \mid \theta_P)] / \mathrm{Var}(g),

evaluated through the prediction path itself: the prediction is re-run on the posterior draws
with :math:`\theta_P` fixed at its posterior mean and the other elements :math:`\theta_O`
moved to their conditional posterior given that (a linear-Gaussian approximation on the
unconstrained scale, log for positive parameters: :math:`\theta_O - B(\theta_P -
\bar\theta_P)`, :math:`B` the least-squares regression of :math:`\theta_O` on
:math:`\theta_P` over the draws). When the elements are uncorrelated in the posterior, this
is exactly "fix them at their means"; when they are correlated (an intercept that compensates
a slope), it gives the share the slope contributes away from where the data pin the
combination, where plain fixing can give a negative share. The share is clipped to [0, 1]
(Monte Carlo error is about :math:`\sqrt{2/S}` relative, 2% with 4000 draws). The same
reduction with each prior-dominated element alone gives the per-parameter shares; they need
not add up to the total (correlated elements share variance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from netbayes import vocab

__all__ = [
    "MOSTLY_PRIOR",
    "PRIOR_DOMINATED_RATIO",
    "ParameterElement",
    "PriorDominatedWarning",
]

PRIOR_DOMINATED_RATIO = 0.7
"""A parameter element is prior-dominated when posterior SD / prior SD is at least this."""
MOSTLY_PRIOR = 0.5
"""A :class:`PriorDominatedWarning` is issued for an answer whose prior share exceeds this."""
_P_CLIP = 1e-12  # probabilities are clipped to [_P_CLIP, 1 - _P_CLIP] before the logit

SCALES = {"months": "log", "probability": "logit"}
"""The scale of an answer's variance, by its unit."""


class PriorDominatedWarning(UserWarning):
    """An answer whose posterior variance comes mostly (above :data:`MOSTLY_PRIOR`) from
    parameters whose posterior is essentially their prior."""


@dataclass(frozen=True)
class ParameterElement:
    """One scalar parameter of a prediction, with its prior and posterior SD.

    Attributes
    ----------
    model : {"survival", "toxicity"}
    label : str
        E.g. ``"beta_gbq"``, ``"c3[platelets]"``, ``"sigma2*z2[midgut]"`` (a centred type
        effect), ``"u_study[rotterdam2019]"``.
    prior : str
        The prior, e.g. ``"Normal(mean=0, sd=0.15)"``.
    kind : str
        What kind of prior (a key of :data:`netbayes.priors.KINDS`).
    prior_sd, posterior_sd : float
    """

    model: str
    label: str
    prior: str
    kind: str
    prior_sd: float
    posterior_sd: float

    @property
    def sd_ratio(self) -> float:
        """Posterior SD / prior SD."""
        return self.posterior_sd / self.prior_sd

    @property
    def prior_dominated(self) -> bool:
        """Whether :attr:`sd_ratio` is at least :data:`PRIOR_DOMINATED_RATIO`."""
        return self.sd_ratio >= PRIOR_DOMINATED_RATIO

    def describe(self) -> str:
        """E.g. ``"beta_gbq (sceptical default, Normal(mean=0, sd=0.15))"``."""
        from netbayes.priors import KINDS

        return f"{self.label} ({KINDS.get(self.kind, self.kind)}, {self.prior})"


# ----------------------------------------------------------------------------------------------
# priors of a posterior
# ----------------------------------------------------------------------------------------------
def resolve_priors(
    src: Any, card: Mapping[str, Any] | None, model: str, endpoint: str = "pfs"
) -> tuple[Any, str]:
    """The priors of a posterior as a :class:`netbayes.priors.PriorSet` of its model, and
    where they come from.

    The card's (or a fit's ``model_info``) recorded priors when they are there and valid;
    else the model's default priors for ``endpoint`` (``"model defaults (the posterior records
    no priors)"``; the OS model's ``beta_x`` default is linked to the PFS effect).
    """
    from netbayes.priors import Prior

    if model == "survival":
        from netbayes.models.survival import SurvivalPriors as cls
    else:
        from netbayes.models.toxicity_priors import ToxicityPriors as cls
    recorded = (card or {}).get("priors")
    if recorded is None:
        info = getattr(src, "model_info", None)
        recorded = info.get("priors") if isinstance(info, Mapping) else None
    if isinstance(recorded, Mapping) and recorded:
        try:
            over = {
                k: Prior(str(v["dist"]), float(v["mu"]), float(v["sigma"]))  # type: ignore[arg-type]
                for k, v in recorded.items()
                if k in cls.DEFAULTS
            }
            priors = cls.for_endpoint(endpoint) if model == "survival" else cls()
            # the recorded numbers, the defaults' meaning and why
            for k, p in over.items():
                d = priors[k]
                if (p.dist, p.mu, p.sigma) != (d.dist, d.mu, d.sigma):
                    priors = priors.replace(**{k: {"dist": p.dist, "mu": p.mu, "sigma": p.sigma}})
            return priors, "the posterior's model card"
        except (KeyError, TypeError, ValueError):
            pass
    default = cls.for_endpoint(endpoint) if model == "survival" else cls()
    return default, "model defaults (the posterior records no priors)"


def _marginal_sd(prior: Any) -> float:
    """:math:`\\sqrt{E[s^2]}` of a positive SD ``s`` with this prior."""
    m, s = prior.mean_sd()
    return math.sqrt(m * m + s * s)


# ----------------------------------------------------------------------------------------------
# the parameter elements of a prediction, on an unconstrained flat scale
# ----------------------------------------------------------------------------------------------
_TYPE_EFFECTS = {"z1": "sigma1", "z2": "sigma2", "z1_os": "sigma1_os"}


@dataclass
class Flat:
    """A model's prediction parameters as a matrix of unconstrained draws, one column per
    element (see :func:`flatten`), and the way back to draws."""

    model: str
    draws: dict[str, np.ndarray]
    elements: list[ParameterElement]
    X: np.ndarray  # (draws, elements), unconstrained
    cols: list[tuple[str, tuple[int, ...], str]]  # per column: variable, index, transform

    def prior_dominated(self) -> list[int]:
        """Columns of the prior-dominated elements."""
        return [i for i, e in enumerate(self.elements) if e.prior_dominated]

    def regression(self, fixed: Sequence[int]) -> np.ndarray | None:
        """:math:`B`, the least-squares regression of the other columns on the ``fixed``
        ones (centred), shape ``(len(fixed), others)``; None when no column is left."""
        X = self.X
        P = list(fixed)
        rest = [i for i in range(X.shape[1]) if i not in set(P)]
        if not rest:
            return None
        mean = X.mean(axis=0)
        B, *_ = np.linalg.lstsq(X[:, P] - mean[P], X[:, rest] - mean[rest], rcond=None)
        return B

    def conditional(
        self, fixed: Sequence[int], B: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Draws with the ``fixed`` columns at their mean and the others at their
        linear-Gaussian conditional given that (see the module docstring); ``B`` is
        :meth:`regression`'s value where already known (computed when None)."""
        X = self.X
        mean = X.mean(axis=0)
        Xn = X.copy()
        P = list(fixed)
        rest = [i for i in range(X.shape[1]) if i not in set(P)]
        if rest:
            if B is None:
                B = self.regression(P)
            Xn[:, rest] = X[:, rest] - (X[:, P] - mean[P]) @ B
        Xn[:, P] = mean[P]
        return self.unflatten(Xn)

    def unflatten(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Draws (a copy of :attr:`draws`) with the elements' columns from ``X``."""
        out = {k: v.copy() for k, v in self.draws.items()}
        effects: list[tuple[str, tuple[int, ...], np.ndarray]] = []
        for j, (var, idx, tr) in enumerate(self.cols):
            x = X[:, j]
            if tr == "log":
                x = np.exp(x)
            if tr == "effect":  # a centred type effect: back to z once its SD is known
                effects.append((var, idx, x))
                continue
            out[var][(slice(None), *idx)] = x
        for var, idx, e in effects:
            out[var][(slice(None), *idx)] = e / out[_TYPE_EFFECTS[var]]
        return out


def _labels(var: str, shape: tuple[int, ...], studies: Sequence[str]) -> list[tuple]:
    """(index, label) of each element of ``var``."""
    if not shape:
        return [((), var)]
    if var in _TYPE_EFFECTS:
        return [
            ((j,), f"{_TYPE_EFFECTS[var]}*{var}[{t}]") for j, t in enumerate(vocab.TUMOUR_TYPES)
        ]
    if var in ("u_study", "v_study"):
        return [((j,), f"{var}[{s}]") for j, s in enumerate(studies)]
    if var == "c3":
        return [((j,), f"c3[{c}]") for j, c in enumerate(vocab.CELL_LINES)]
    if var == "log_gap" and len(shape) == 2:
        return [
            ((i, j), f"log_gap[{c},{j + 1}]")
            for i, c in enumerate(vocab.CELL_LINES)
            for j in range(shape[1])
        ]
    return [(idx, f"{var}[{','.join(map(str, idx))}]") for idx in np.ndindex(*shape)]


def flatten(
    model: str,
    draws: Mapping[str, np.ndarray],
    priors: Any,
    studies: Sequence[str] = (),
    study: str | None = None,
) -> Flat:
    """The elements of ``draws`` (the variables a prediction uses) with their prior SDs.

    Parameters
    ----------
    model : {"survival", "toxicity"}
    draws : mapping of str to numpy.ndarray
        Draws (draw axis first) of the variables the prediction reads, including ``tau`` /
        ``tau_tox`` for a new centre and ``u_study`` / ``v_study`` for a study's centre.
    priors : netbayes.priors.PriorSet
        The model's priors (:func:`resolve_priors`).
    studies : sequence of str
        The study labels of ``u_study`` / ``v_study``.
    study : str, optional
        The study predicted for: only its column of the study effects is an element.

    Returns
    -------
    Flat
    """
    d = {k: np.array(v, dtype=float) for k, v in draws.items()}
    elements: list[ParameterElement] = []
    cols: list[tuple[str, tuple[int, ...], str]] = []
    X: list[np.ndarray] = []
    for var, a in d.items():
        for idx, label in _labels(var, a.shape[1:], studies):
            x = a[(slice(None), *idx)]
            tr = "identity"
            if var in _TYPE_EFFECTS:
                sd_prior = priors[_TYPE_EFFECTS[var]]
                prior_sd = _marginal_sd(sd_prior)
                prior = (
                    f"Normal(0, {_TYPE_EFFECTS[var]}), {_TYPE_EFFECTS[var]} ~ {sd_prior.label()}"
                )
                kind = "hierarchical"
                x = x * d[_TYPE_EFFECTS[var]]
                tr = "effect"
            elif var in ("u_study", "v_study"):
                if study is None or studies[idx[0]] != study:
                    continue
                sd_name = "tau" if var == "u_study" else "tau_tox"
                prior_sd = _marginal_sd(priors[sd_name])
                if var == "v_study":  # latent scale: times sqrt(1 + sigma_u^2)
                    prior_sd *= math.sqrt(1.0 + _marginal_sd(priors["sigma_u"]) ** 2)
                prior = f"Normal(0, {sd_name}), {sd_name} ~ {priors[sd_name].label()}"
                kind = "hierarchical"
            else:
                p = priors[var]
                prior_sd = p.mean_sd()[1]
                prior = p.label()
                kind = priors.kind(var)
                if p.support == "positive":
                    tr = "log"
            elements.append(ParameterElement(model, label, prior, kind, prior_sd, float(x.std())))
            cols.append((var, idx, tr))
            X.append(np.log(x) if tr == "log" else x)
    return Flat(model, d, elements, np.column_stack(X), cols)


# ----------------------------------------------------------------------------------------------
# shares
# ----------------------------------------------------------------------------------------------
def transform(values: np.ndarray, unit: str) -> np.ndarray:
    """An answer's draws on the scale of its share: log months, logit probability."""
    v = np.asarray(values, dtype=float)
    if unit == "months":
        return np.log(v)
    p = np.clip(v, _P_CLIP, 1.0 - _P_CLIP)
    return np.log(p) - np.log1p(-p)


def _share(var_fixed: np.ndarray, var_all: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(var_all > 0, 1.0 - var_fixed / var_all, 0.0)
    if not np.all(np.isfinite(s)):
        raise ValueError("a prior share is not finite; the answer's draws are not usable")
    return np.clip(s, 0.0, 1.0)


def conditionals(flat: Flat) -> dict[str, dict[str, np.ndarray]]:
    """The draws of the share's reductions: ``"*"`` with every prior-dominated element fixed
    (and the others conditioned), then one entry per prior-dominated element alone, by label.
    Empty when no element is prior-dominated.

    The reductions' regressions depend on the posterior's draws alone, not on the patient,
    and cost more than the rest of a one-patient prediction's share (a least-squares solve
    over every draw each): they are kept in the disk cache of
    :mod:`netbayes.calibration.ranges_cache`, keyed by the draws' bytes, so a later process
    re-uses the same coefficients (the same numbers, bit for bit)."""
    cols = flat.prior_dominated()
    if not cols:
        return {}
    sets = [("*", cols)] + [(flat.elements[j].label, [j]) for j in cols]
    coefs = _regressions(flat, [p for _, p in sets])
    return {label: flat.conditional(p, B) for (label, p), B in zip(sets, coefs, strict=True)}


def _regressions(flat: Flat, sets: list[list[int]]) -> list[np.ndarray | None]:
    """:meth:`Flat.regression` of each set of columns, through the disk cache."""
    from netbayes.calibration.ranges_cache import cached

    X = np.ascontiguousarray(flat.X, dtype=np.float64)
    shapes = [(len(p), X.shape[1] - len(p)) for p in sets]
    content = b"".join([repr((X.shape, sets)).encode(), b"\0", X.tobytes()])

    def compute() -> tuple:
        out = []
        for p in sets:
            B = flat.regression(p)
            out.append(None if B is None else tuple(tuple(float(v) for v in row) for row in B))
        return tuple(out)

    def check(value: Any) -> None:
        if not isinstance(value, tuple) or len(value) != len(sets):
            raise ValueError("not one regression per set")
        for B, (k, r) in zip(value, shapes, strict=True):
            if r == 0:
                if B is not None:
                    raise ValueError("a regression where no column is left")
                continue
            a = np.asarray(B, dtype=float)
            if a.shape != (k, r) or not np.all(np.isfinite(a)):
                raise ValueError("a regression of the wrong shape")

    value = cached("share-regressions", compute, check, content=content)
    return [None if B is None else np.array(B, dtype=np.float64) for B in value]


def shares(
    conds: Mapping[str, Mapping[str, np.ndarray]],
    evaluate: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    base: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Prior shares of answers from one model.

    Parameters
    ----------
    conds : mapping
        :func:`conditionals` (or only its ``"*"`` entry, for the total alone).
    evaluate : callable
        Draws -> the answers on their scales (:func:`transform`), shape (answers, draws):
        the prediction path itself.
    base : numpy.ndarray, shape (answers, draws)
        ``evaluate`` of the posterior draws.

    Returns
    -------
    total : numpy.ndarray, shape (answers,)
    by_parameter : dict of str to numpy.ndarray
        Element label -> its shares (answers,), prior-dominated elements only.
    """
    var_all = base.var(axis=-1)
    if "*" not in conds:
        return np.zeros(var_all.shape), {}
    out = {k: _share(evaluate(th).var(axis=-1), var_all) for k, th in conds.items()}
    total = out.pop("*")
    return total, out


def warning_text(
    what: str, share: float, parts: Mapping[str, float], elements: Mapping[str, ParameterElement]
) -> str:
    """The :class:`PriorDominatedWarning` message of one answer."""
    named = [
        f"{elements[k].describe()} {100 * v:.0f}%"
        for k, v in sorted(parts.items(), key=lambda kv: -kv[1])
        if v >= 0.01
    ][:4]
    if not parts:  # the total only (batch summaries): every prior-dominated parameter
        named = [e.describe() for e in elements.values() if e.prior_dominated]
    who = "; ".join(named) if named else "several parameters together"
    return (
        f"this answer is mostly prior: {100 * share:.0f}% of the variance of {what} comes from "
        f"parameters whose posterior is essentially their prior (posterior/prior SD >= "
        f"{PRIOR_DOMINATED_RATIO}): {who}; `netbayes prior-sensitivity` shows how it moves "
        "with those priors"
    )
