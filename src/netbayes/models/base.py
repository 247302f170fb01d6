"""What a fitted model tells the posterior store: its type, configuration and data hash.

:class:`ModelBase` is the model contract's IO part. ``SurvivalModel.fit`` and
``ToxicityModel.fit`` set ``fit.model_info = self.model_info()`` on the
:class:`~netbayes.fitting.FitResult` they return, so that ``fit.save(folder)``
(:func:`netbayes.store.save_fit`) can write a model card for any fit, the user's own included:

``model_type``
    ``"survival-pfs"``, ``"survival-os"`` or ``"toxicity"`` (:data:`netbayes.store.MODEL_TYPES`).
``config``
    The constructor's settings as JSON (:meth:`ModelBase.config`).
``priors``
    The priors as JSON.
``variables``
    The posterior variables to store: the sampled top-level parameters plus those prediction
    needs.
``user_data_sha256``
    :func:`frame_hash` of the user's own rows (``None`` without them: a default fit).

This module imports neither PyMC nor the models.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from netbayes._lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = ["ModelBase", "SurvivalInfo", "ToxicityInfo", "frame_hash", "object_hash"]


def frame_hash(df: pd.DataFrame | None) -> str | None:
    """SHA-256 of a table's content (index, columns and values as CSV, ``\\n`` line ends).

    Parameters
    ----------
    df : pandas.DataFrame or None

    Returns
    -------
    str or None
        Hexadecimal digest; None for None.
    """
    if df is None:
        return None
    return hashlib.sha256(df.to_csv(lineterminator="\n").encode("utf-8")).hexdigest()


def _feed(h: Any, x: Any) -> None:
    if isinstance(x, pd.DataFrame):
        h.update(b"F" + (frame_hash(x) or "").encode())
    elif isinstance(x, np.ndarray):
        a = np.ascontiguousarray(x)
        h.update(b"A" + f"{a.dtype.str}{a.shape}".encode() + a.tobytes())
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):
        h.update(b"D" + type(x).__name__.encode())
        for f in dataclasses.fields(x):
            h.update(f.name.encode() + b"\0")
            _feed(h, getattr(x, f.name))
    elif isinstance(x, Mapping):
        h.update(b"M")
        for k in sorted(x, key=str):
            h.update(str(k).encode() + b"\0")
            _feed(h, x[k])
    elif isinstance(x, (list, tuple)):
        h.update(b"L" + str(len(x)).encode())
        for v in x:
            _feed(h, v)
    else:
        h.update(b"S" + repr(x).encode() + b"\0")


def object_hash(x: Any) -> str:
    """SHA-256 of nested tables, arrays, dataclasses, mappings, sequences and scalars."""
    h = hashlib.sha256()
    _feed(h, x)
    return h.hexdigest()


def study_column(df: pd.DataFrame, default: str, bad: Any) -> np.ndarray:
    """The ``study`` labels of a user table (``default`` without the column), checked:
    ``bad(field, value, allowed, row)`` builds the error of a missing or non-text label."""
    if "study" not in df.columns:
        return np.full(len(df), default, dtype=object)
    st = df["study"]
    ok = st.map(lambda v: isinstance(v, str) and v.strip() != "")
    if not ok.all():
        i = ok[~ok].index[0]
        raise bad("study", st[i], "a non-empty study label (text)", i)
    return st.str.strip().astype(str).to_numpy()


class ModelBase:
    """Mixin of the netbayes models: what the posterior store records about a fit."""

    @property
    def model_type(self) -> str:
        """The stored model type (:data:`netbayes.store.MODEL_TYPES`)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The model's settings as JSON (what its constructor took)."""
        raise NotImplementedError

    def user_data(self) -> pd.DataFrame | None:
        """The user's own rows the model is fitted with (None: the packaged data alone)."""
        raise NotImplementedError

    def user_data_hash(self) -> str | None:
        """:func:`frame_hash` of :meth:`user_data` (None without user data)."""
        return frame_hash(self.user_data())

    def prior_settings(self) -> dict[str, Any]:
        """The priors as JSON (:meth:`netbayes.priors.PriorSet.to_dict`)."""
        return self.priors.to_dict()  # type: ignore[attr-defined]

    def stored_variables(self) -> list[str]:
        """Posterior variables a saved fit keeps: the sampled top-level parameters
        (``parameter_names()``) plus those prediction needs."""
        from netbayes import spec

        mt = self.model_type
        needed = spec.TOXICITY_PARAMS if mt == "toxicity" else spec.survival_params(mt[9:])
        return list(dict.fromkeys([*self.parameter_names(), *needed]))  # type: ignore[attr-defined]

    def prior_elements(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """Rows of :meth:`prior_table`: ``(label, prior name, index into its draws)``."""
        raise NotImplementedError

    def prior_table(
        self,
        fit: Any = None,
        *,
        interval: Any = None,
        seed: int = 1,
    ) -> pd.DataFrame:
        """Priors (and, given a fit, the posterior next to them), one style for every model.

        Parameters
        ----------
        fit : netbayes.fitting.FitResult, optional
            Adds the posterior columns.
        interval : Interval or float, optional
            Interval convention (default :data:`netbayes.intervals.DEFAULT_INTERVAL`, 95%
            equal-tailed); a float is a probability of an equal-tailed interval.
        seed : int
            Seed of the prior Monte Carlo draws.

        Returns
        -------
        pandas.DataFrame
            Index ``parameter`` (:meth:`prior_elements`); columns ``dist``, ``args`` (the
            prior's numbers), ``meaning``, ``why``, ``prior_mean``, ``prior_sd`` and the prior
            interval (by Monte Carlo, 20 000 draws), e.g. ``prior_eti95_lower`` /
            ``prior_eti95_upper``; with ``fit`` also ``posterior_mean``, ``posterior_sd``, the
            posterior interval (``posterior_eti95_lower`` / ``_upper``) and ``sd_ratio`` =
            posterior SD / prior SD (near 1: the data do not inform the parameter; its
            posterior is its prior).
        """
        from netbayes.intervals import as_interval

        iv = as_interval(interval)
        lo_col, hi_col = iv.columns
        rng = np.random.default_rng(seed)
        rows = []
        for label, key, idx in self.prior_elements():
            prior = self.priors[key]  # type: ignore[attr-defined]
            x = prior.sample(rng, 20000)
            x_lo, x_hi = iv.bounds(x)
            row = {
                "parameter": label,
                "dist": prior.dist,
                "args": prior.args(),
                "meaning": prior.meaning,
                "why": prior.why,
                "prior_mean": x.mean(),
                "prior_sd": x.std(),
                f"prior_{lo_col}": float(x_lo),
                f"prior_{hi_col}": float(x_hi),
            }
            if fit is not None:
                y = fit.draws(key)[(slice(None), *idx)]
                y_lo, y_hi = iv.bounds(y)
                row.update(
                    {
                        "posterior_mean": y.mean(),
                        "posterior_sd": y.std(),
                        f"posterior_{lo_col}": float(y_lo),
                        f"posterior_{hi_col}": float(y_hi),
                        "sd_ratio": y.std() / x.std(),
                    }
                )
            rows.append(row)
        return pd.DataFrame(rows).set_index("parameter")

    def model_info(self) -> dict[str, Any]:
        """What ``fit.model_info`` holds (see the module docstring)."""
        return {
            "model_type": self.model_type,
            "config": self.config(),
            "priors": self.prior_settings(),
            "variables": self.stored_variables(),
            "user_data_sha256": self.user_data_hash(),
        }


class SurvivalInfo(ModelBase):
    """:class:`ModelBase` of :class:`netbayes.models.survival.SurvivalModel`."""

    @property
    def model_type(self) -> str:
        return f"survival-{self.endpoint}"  # type: ignore[attr-defined]

    def prior_elements(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """The scalar parameters this endpoint's model samples (the tumour-type effects are
        standard normal by construction and have no prior of their own)."""
        os_only = ("alpha1_os", "k1_os", "sigma1_os")
        keep = [
            k
            for k in self.priors  # type: ignore[attr-defined]
            if (k not in os_only or self.endpoint == "os")  # type: ignore[attr-defined]
            and (k != "spearman_attenuation" or self.endpoint == "pfs")  # type: ignore[attr-defined]
            and (k != "tau" or self.study_level)  # type: ignore[attr-defined]
        ]
        return [(k, k, ()) for k in keep]

    def user_data(self) -> pd.DataFrame | None:
        return self.patients  # type: ignore[attr-defined]

    def config(self) -> dict[str, Any]:
        from netbayes.calibration import survival_calibration

        default = survival_calibration(self.endpoint)  # type: ignore[attr-defined]
        summaries = {}
        for ep, df in self.summaries.items():  # type: ignore[attr-defined]
            packaged = default.summaries[ep]
            same = df.shape == packaged.shape and df.equals(packaged)
            summaries[ep] = "packaged" if same else f"sha256:{frame_hash(df)}"
        cal = self.calibration  # type: ignore[attr-defined]
        design = "packaged" if object_hash(cal) == object_hash(default) else object_hash(cal)
        out: dict[str, Any] = {
            "endpoint": self.endpoint,  # type: ignore[attr-defined]
            "family": self.family.name,  # type: ignore[attr-defined]
            "calibration": {"studies": list(cal.studies), "design": design},
            "priors": self.prior_settings(),
            "include_published": bool(self.include_published),  # type: ignore[attr-defined]
            "n_grid": int(self.n_grid),  # type: ignore[attr-defined]
            "study_level": bool(self.study_level),  # type: ignore[attr-defined]
            "studies": list(self.studies) if self.study_level else [],  # type: ignore[attr-defined]
            "summaries": summaries,
            "spearman": list(self.spearman),  # type: ignore[attr-defined]
            "user_data_sha256": self.user_data_hash(),
        }
        if self.censoring != "none":  # type: ignore[attr-defined]
            # recorded only when not the default, so the default's cards stay as they were
            out["censoring"] = {
                "censoring": self.censoring,  # type: ignore[attr-defined]
                "accrual": self.accrual,  # type: ignore[attr-defined]
            }
        added = self.added  # type: ignore[attr-defined]
        if added is not None:  # published studies added to the packaged ones
            out["added_studies"] = f"sha256:{frame_hash(added)}"
        return out


class ToxicityInfo(ModelBase):
    """:class:`ModelBase` of :class:`netbayes.models.toxicity.ToxicityModel`."""

    model_type = "toxicity"  # type: ignore[assignment]

    def user_data(self) -> pd.DataFrame | None:
        return self.user  # type: ignore[attr-defined]

    def config(self) -> dict[str, Any]:
        data = self.data  # type: ignore[attr-defined]
        packaged = type(data).packaged()
        return {
            "priors": self.prior_settings(),
            "any_weight": float(self.any_weight),  # type: ignore[attr-defined]
            "margins": str(getattr(self, "margins", "composite")),
            "n_nodes": int(self.n_nodes),  # type: ignore[attr-defined]
            "study_level": bool(self.study_level),  # type: ignore[attr-defined]
            "studies": list(self.studies) if self.study_level else [],  # type: ignore[attr-defined]
            "data": (
                "packaged"
                if object_hash(data) == object_hash(packaged)
                else f"sha256:{object_hash(data)}"
            ),
            "user_data_sha256": self.user_data_hash(),
        }
