"""Prior specifications: one style for every netbayes model.

A :class:`Prior` is one distribution with its two numbers, what the parameter means and why the
prior is what it is. A :class:`PriorSet` is a model's priors by parameter name: the survival
model's :class:`~netbayes.models.survival.SurvivalPriors` and the toxicity model's
:class:`~netbayes.models.toxicity.ToxicityPriors` are both ``PriorSet`` subclasses, override
their defaults the same way and report them in the same table.

Distributions (the two numbers are always called ``mu`` and ``sigma``):

========== ============================ ======================================== =========
dist        ``mu``                       ``sigma``                                support
========== ============================ ======================================== =========
normal      mean                         standard deviation                       real
lognormal   mean of log x (log median)   standard deviation of log x              positive
halfnormal  (unused, 0)                  scale                                    positive
beta        mean                         standard deviation                       (0, 1)
========== ============================ ======================================== =========

Overrides are given per parameter as a :class:`Prior` or as a mapping of the fields to change
(``{"sigma": 0.3}`` keeps the distribution and ``mu``)::

    SurvivalPriors().replace(beta_gbq=Prior.normal(0.0, 0.3, ...))
    SurvivalModel("pfs", priors={"beta_gbq": {"sigma": 0.3}})
    ToxicityModel(priors={"theta": {"mu": 1.0, "sigma": 0.5}})

A prior's support must be its parameter's (a shape cannot get a normal prior), so an override
cannot silently make a model improper.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np

__all__ = ["DISTS", "KINDS", "Prior", "PriorSet"]

Dist = Literal["normal", "lognormal", "halfnormal", "beta"]
Support = Literal["real", "positive", "unit"]

DISTS: dict[str, Support] = {
    "normal": "real",
    "lognormal": "positive",
    "halfnormal": "positive",
    "beta": "unit",
}
"""Every prior distribution and its support."""

KINDS: dict[str, str] = {
    "external": "external evidence",
    "judgement": "reasoned judgement, no quantitative source",
    "sceptical": "sceptical default",
    "weak": "weakly informative",
    "hierarchical": "population distribution of a hierarchical effect",
    "linked": "linked to another model's identified posterior",
    "user": "set by the user",
}
"""What kind of prior a parameter has (:meth:`PriorSet.kind`; ``docs/prior_share.md``):
``external`` rests on a cited source (a meta-analysis, a simulation of the published
estimator); ``judgement`` on reasoning (physics, radiobiology) without a quantitative source;
``sceptical`` is centred on no effect and narrow enough to shrink one the data cannot tell;
``weak`` only sets the scale; ``hierarchical`` is a tumour-type or study effect's population
distribution; ``user`` is any prior that differs from the model's default."""


def _number(name: str, field: str, v: Any, positive: bool = False) -> float:
    real = (int, float, np.integer, np.floating)
    ok = not isinstance(v, (bool, np.bool_)) and isinstance(v, real)
    if not ok or not math.isfinite(float(v)) or (positive and float(v) <= 0):
        more = " > 0" if positive else ""
        raise ValueError(f"priors[{name!r}]: {field}={v!r}; expected a finite number{more}")
    return float(v)


def _validate(name: str, dist: Any, mu: Any, sigma: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``dist`` and its two numbers are valid."""
    if dist not in DISTS:
        raise ValueError(f"priors[{name!r}]: dist={dist!r}; allowed: {', '.join(DISTS)}")
    _number(name, "mu", mu)
    _number(name, "sigma", sigma, positive=True)
    if dist == "beta" and not (0.0 < mu < 1.0 and sigma**2 < mu * (1.0 - mu)):
        raise ValueError(
            f"priors[{name!r}]: beta mean={mu!r}, sd={sigma!r}; expected 0 < mean < 1 and "
            "sd**2 < mean * (1 - mean)"
        )


@dataclass(frozen=True)
class Prior:
    """One prior distribution (see the module docstring for ``mu`` and ``sigma`` per ``dist``).

    Parameters
    ----------
    dist : {"normal", "lognormal", "halfnormal", "beta"}
        The distribution.
    mu, sigma : float
        Its two numbers (``mu`` is 0 and unused for a half-normal).
    meaning : str
        What the parameter is (one line).
    why : str
        Why the prior is what it is (one or two lines).
    """

    dist: Dist
    mu: float
    sigma: float
    meaning: str = ""
    why: str = ""

    def __post_init__(self) -> None:
        _validate("prior", self.dist, self.mu, self.sigma)

    # -- constructors ----------------------------------------------------------------------------
    @classmethod
    def normal(cls, mean: float, sd: float, meaning: str = "", why: str = "") -> Prior:
        """Normal(mean, sd)."""
        return cls("normal", mean, sd, meaning, why)

    @classmethod
    def lognormal(cls, median: float, sd_log: float, meaning: str = "", why: str = "") -> Prior:
        """Log-normal with the given median and SD of the log (``mu = log(median)``)."""
        if not (isinstance(median, (int, float)) and median > 0):
            raise ValueError(f"lognormal prior: median={median!r}; expected a number > 0")
        return cls("lognormal", math.log(median), sd_log, meaning, why)

    @classmethod
    def halfnormal(cls, sd: float, meaning: str = "", why: str = "") -> Prior:
        """Half-normal with scale ``sd``."""
        return cls("halfnormal", 0.0, sd, meaning, why)

    @classmethod
    def beta(cls, mean: float, sd: float, meaning: str = "", why: str = "") -> Prior:
        """Beta with the given mean and SD (``sd**2 < mean * (1 - mean)``)."""
        return cls("beta", mean, sd, meaning, why)

    # -- checks ----------------------------------------------------------------------------------
    @property
    def support(self) -> Support:
        """``"real"``, ``"positive"`` or ``"unit"`` (the open interval (0, 1))."""
        return DISTS[self.dist]

    # -- use -------------------------------------------------------------------------------------
    def rv(self, pm: Any, name: str, **kw: Any) -> Any:
        """The PyMC random variable ``name`` with this prior (``pm`` is the ``pymc`` module)."""
        if self.dist == "normal":
            return pm.Normal(name, mu=self.mu, sigma=self.sigma, **kw)
        if self.dist == "lognormal":
            return pm.LogNormal(name, mu=self.mu, sigma=self.sigma, **kw)
        if self.dist == "halfnormal":
            return pm.HalfNormal(name, sigma=self.sigma, **kw)
        return pm.Beta(name, mu=self.mu, sigma=self.sigma, **kw)

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...] | None = None) -> Any:
        """Draws from the prior (a float when ``size`` is None, else an array)."""
        if self.dist == "beta":
            a, b = self.beta_ab()
            return rng.beta(a, b, size)
        if size is None:
            z = float(rng.normal(0.0 if self.dist == "halfnormal" else self.mu, self.sigma))
            return {"normal": z, "lognormal": math.exp(z), "halfnormal": abs(z)}[self.dist]
        z = rng.normal(0.0 if self.dist == "halfnormal" else self.mu, self.sigma, size)
        return {"normal": z, "lognormal": np.exp(z), "halfnormal": np.abs(z)}[self.dist]

    def beta_ab(self) -> tuple[float, float]:
        """The (alpha, beta) of a beta prior from its mean and SD."""
        m, s = self.mu, self.sigma
        nu = m * (1.0 - m) / s**2 - 1.0
        return m * nu, (1.0 - m) * nu

    def mean_sd(self) -> tuple[float, float]:
        """The prior's exact mean and SD."""
        m, s = self.mu, self.sigma
        if self.dist == "normal" or self.dist == "beta":
            return m, s
        if self.dist == "lognormal":
            return math.exp(m + s**2 / 2), math.sqrt(math.expm1(s**2)) * math.exp(m + s**2 / 2)
        return s * math.sqrt(2 / math.pi), s * math.sqrt(1 - 2 / math.pi)

    def args(self) -> str:
        """The two numbers as the reader knows them, e.g. ``"median=1.5, sd_log=0.5"``."""
        m, s = self.mu, self.sigma
        if self.dist == "lognormal":
            return f"median={math.exp(m):.3g}, sd_log={s:.3g}"
        if self.dist == "halfnormal":
            return f"sd={s:.3g}"
        return f"mean={m:.3g}, sd={s:.3g}"

    def label(self) -> str:
        """E.g. ``"Normal(mean=0, sd=0.15)"``."""
        name = {"normal": "Normal", "lognormal": "LogNormal", "halfnormal": "HalfNormal",
                "beta": "Beta"}[self.dist]  # fmt: skip
        return f"{name}({self.args()})"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``dist``, ``mu``, ``sigma`` (what a model card records)."""
        return {"dist": self.dist, "mu": float(self.mu), "sigma": float(self.sigma)}


class PriorSet(Mapping[str, Prior]):
    """A model's priors by parameter name; subclasses set :attr:`DEFAULTS`.

    Parameters
    ----------
    overrides : mapping, optional
        Per parameter a :class:`Prior` or a mapping of the :class:`Prior` fields to change.
    **changes
        The same as keywords.

    Raises
    ------
    ValueError
        An unknown parameter, a bad number, or a distribution whose support is not the
        parameter's (or outside the parameter's :attr:`ONLY` list).
    """

    DEFAULTS: ClassVar[Mapping[str, Prior]] = {}
    KIND: ClassVar[Mapping[str, str]] = {}
    """The kind (a key of :data:`KINDS`) of each default prior."""
    ONLY: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """Parameters restricted to some distributions (the model reparameterises them)."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, **changes: Any) -> None:
        self._p: dict[str, Prior] = dict(self.DEFAULTS)
        for name, new in {**dict(overrides or {}), **changes}.items():
            self._p[name] = self._merge(name, new)

    def _merge(self, name: str, new: Any) -> Prior:
        if name not in self.DEFAULTS:
            raise ValueError(
                f"priors: unknown parameter {name!r}; allowed: {', '.join(self.DEFAULTS)}"
            )
        old = self._p[name]  # a partial override changes the current prior
        if isinstance(new, Prior):
            p = new if new.meaning else replace(new, meaning=old.meaning, why=new.why or old.why)
        elif isinstance(new, Mapping):
            bad = sorted(set(new) - {"dist", "mu", "sigma", "meaning", "why"})
            if bad:
                raise ValueError(
                    f"priors[{name!r}]: unknown field(s) {bad}; allowed: dist, mu, sigma, "
                    "meaning, why"
                )
            dist = new.get("dist", old.dist)
            fields = {"dist": dist, "mu": old.mu, "sigma": old.sigma, "meaning": old.meaning,
                      "why": old.why, **dict(new)}  # fmt: skip
            if dist == "halfnormal":
                fields["mu"] = 0.0
            _validate(name, dist, fields["mu"], fields["sigma"])
            p = Prior(**fields)
        else:
            raise ValueError(
                f"priors[{name!r}]: {new!r}; expected a Prior or a mapping of its fields "
                "(dist, mu, sigma)"
            )
        _validate(name, p.dist, p.mu, p.sigma)
        support = self.DEFAULTS[name].support
        if p.support != support:
            fit = ", ".join(d for d, s in DISTS.items() if s == support)
            raise ValueError(
                f"priors[{name!r}]: dist={p.dist!r} has support {p.support}; the parameter "
                f"needs a {support} one ({fit})"
            )
        only = self.ONLY.get(name)
        if only and p.dist not in only:
            raise ValueError(f"priors[{name!r}]: dist={p.dist!r}; allowed: {list(only)}")
        return p

    # -- mapping ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Prior:
        try:
            return self._p[name]
        except KeyError:
            raise KeyError(f"no prior {name!r}; known: {', '.join(self._p)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._p)

    def __len__(self) -> int:
        return len(self._p)

    def __getattr__(self, name: str) -> Prior:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._p[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no prior {name!r}") from None

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._p == other._p  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(self._p.items()))

    def __repr__(self) -> str:
        changed = {k: v.label() for k, v in self._p.items() if v != self.DEFAULTS[k]}
        return f"{type(self).__name__}({changed if changed else ''})"

    # -- API -------------------------------------------------------------------------------------
    def kind(self, name: str) -> str:
        """The kind of ``name``'s prior (a key of :data:`KINDS`): the default's kind
        (:attr:`KIND`), or ``"user"`` when the prior differs from the default in its
        distribution or numbers."""
        p, d = self[name], self.DEFAULTS[name]
        if (p.dist, p.mu, p.sigma) != (d.dist, d.mu, d.sigma):
            return "user"
        return self.KIND.get(name, "user")

    def replace(self, **changes: Any) -> PriorSet:
        """A copy with some priors changed (as the constructor's overrides, applied to the
        current priors)."""
        out = type(self)(self._p)
        for name, new in changes.items():
            out._p[name] = out._merge(name, new)
        return out

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """JSON form, parameter → :meth:`Prior.to_dict` (what a model card records)."""
        return {k: v.to_dict() for k, v in self._p.items()}

    def to_frame(self) -> Any:
        """The priors as a table: ``parameter`` (index), ``dist``, ``args``, ``mu``, ``sigma``,
        ``kind``, ``meaning``, ``why``."""
        import pandas as pd

        rows = [
            {"parameter": k, "dist": p.dist, "args": p.args(), "mu": p.mu, "sigma": p.sigma,
             "kind": self.kind(k), "meaning": p.meaning, "why": p.why}
            for k, p in self._p.items()
        ]  # fmt: skip
        return pd.DataFrame(rows).set_index("parameter")
