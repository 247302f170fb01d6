"""The :class:`Predictor`: posterior draws in, predictions for patients and cohorts out."""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from netbayes import calibration, spec, vocab
from netbayes._lazy import LazyModule
from netbayes.calibration import calibrated_ranges
from netbayes.cohorts import largest_remainder
from netbayes.families import family_of, get_family
from netbayes.families.weibull import WeibullFamily
from netbayes.formulas import survival as F
from netbayes.formulas import toxicity as T
from netbayes.formulas.study import CENTRES, study_draws, study_labels
from netbayes.intervals import Interval, as_interval
from netbayes.normal import ndtr

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from netbayes.fitting import FitResult
    from netbayes.store import StoredPosterior
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

from netbayes.predict import share as sh
from netbayes.predict.evaluate import (
    _NEW_TYPE_BASE,
    _Batch,
    _log_scale,
    _new_type_effects,
    _survival_components,
    _toxicity_eta,
    _toxicity_risk,
    _validate,
    _warn,
)
from netbayes.predict.inputs import (
    _LINES_CI,
    DEFAULT_T_PROBS,
    DEFAULT_TIMES,
    ExtrapolationWarning,
    _bad,
    _check_frame,
    _check_seed,
    _check_times,
    _finite,
    _number,
    _ranges_from_json,
    _table_records,
    default_activities,
    validate_patient,
)
from netbayes.predict.kernels import (
    _ANY_LINE_TOLERANCE,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_THREADS,
    _each_chunk,
    _mixture_median,
    _runs,
    _summarise,
    _time_label,
    _units,
    _weibull_sf_into,
)
from netbayes.predict.outputs import evaluate_law
from netbayes.predict.results import (
    CohortPrediction,
    Prediction,
    StandardisedPrediction,
    _describe,
    parameter_frame,
)

__all__ = ["Predictor", "predict"]

DEFAULT_RMST_TAU = (24.0, 60.0)
"""RMST horizons of :meth:`Predictor.standardise`, months."""
PATIENTS_MAX_GB = 1.0
"""Default bound (GB of draws held) of :meth:`Predictor.patients` and :meth:`Predictor.patient`:
about 450 patients with the shipped posteriors and the default grid. Above it the call is
refused with the estimate; :meth:`Predictor.summaries` gives the summaries of any number of
patients in bounded memory."""
COHORT_MAX_GB = 4.0
"""Default bound (GB at the peak) of :meth:`Predictor.cohort`."""
_COHORT_BYTES_PER_CELL = 88
"""Peak bytes of :meth:`Predictor.cohort` per simulated cohort and patient (measured with
``tracemalloc`` on the shipped PFS posterior: 88 B for n = 1000 and 4000, 2000 simulations)."""


def _size(nbytes: float) -> str:
    """A byte count in decimal units, as ``max_gb`` counts them, e.g. ``"17.6 TB"``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    raise AssertionError  # pragma: no cover


def _check_max_gb(max_gb: Any) -> float:
    if (
        isinstance(max_gb, (bool, np.bool_))
        or not isinstance(max_gb, (int, float, np.number))
        or not (0 < float(max_gb) < math.inf)
    ):
        raise _bad("max_gb", max_gb, "a finite number of gigabytes > 0")
    return float(max_gb)


def _patients_bytes(n_patients: int, n_draws: int, n_times: int, n_t_probs: int, tox: bool) -> int:
    """Bytes of draws a :class:`Prediction` of ``n_patients`` holds: per patient and draw the
    survival curve (``n_times``), the median, P(event-free) (``n_t_probs``) and the four
    toxicity risks, 8 B each (2.18 MB a patient with 4000 draws and the default grid,
    measured with ``tracemalloc``; the peak while computing is about twice that)."""
    return 8 * n_patients * n_draws * (n_times + 1 + n_t_probs + (4 if tox else 0))


# ----------------------------------------------------------------------------------------------
# the predictor
# ----------------------------------------------------------------------------------------------
def _datatree_draws(src: Any, what: str) -> dict[str, np.ndarray] | None:
    """Draws of an ``xarray.DataTree`` (its ``posterior`` group) or ``xarray.Dataset`` with
    ``chain`` and ``draw`` dimensions, chains stacked first; None for anything else. xarray is
    not imported here: an object of it means it is loaded already."""
    import sys

    xr = sys.modules.get("xarray")
    if xr is None or not isinstance(src, (xr.DataTree, xr.Dataset)):
        return None
    if isinstance(src, xr.DataTree):
        if "posterior" not in src.children:
            raise ValueError(
                f"the {what} DataTree has no 'posterior' group (groups: "
                f"{', '.join(src.children) or 'none'}); expected an ArviZ-style tree, e.g. "
                "arviz.from_netcdf(path) or fit.posterior"
            )
        src = src["posterior"].to_dataset()
    out = {}
    for v in src.data_vars:
        da = src[v]
        if "chain" not in da.dims or "draw" not in da.dims:
            raise ValueError(
                f"the {what} posterior variable {v!r} has dimensions {list(da.dims)}; expected "
                "'chain' and 'draw' among them"
            )
        a = da.transpose("chain", "draw", ...).to_numpy()
        out[str(v)] = a.reshape((-1, *a.shape[2:]))
    return out


def _chain_count(src: Any, n_draws: int) -> int:
    """Chains of a posterior (its draws are stacked chain by chain): a DataTree's ``chain``
    dimension, a fit's or a stored posterior's sampler settings; 1 for plain draws, or where
    the count does not divide the draws."""
    import sys

    xr = sys.modules.get("xarray")
    c = 1
    if xr is not None and isinstance(src, (xr.DataTree, xr.Dataset)):
        ds = src["posterior"] if isinstance(src, xr.DataTree) else src
        c = int(ds.sizes.get("chain", 1))
    elif isinstance(getattr(src, "settings", None), Mapping):
        c = int(src.settings.get("chains", 1))
    elif isinstance(getattr(src, "card", None), Mapping):
        c = int((src.card.get("sampler") or {}).get("chains", 1))
    return c if c >= 1 and n_draws % c == 0 else 1


def _all_draws(src: Any, what: str) -> dict[str, np.ndarray]:
    draws = _datatree_draws(src, what)
    if draws is None:
        if hasattr(src, "all_draws"):
            draws = src.all_draws()
        elif isinstance(src, Mapping):
            draws = dict(src)
        else:
            raise TypeError(
                f"the {what} posterior is a {type(src).__name__}; expected a StoredPosterior "
                "(netbayes.load_posterior), a FitResult, an xarray.DataTree with a 'posterior' "
                "group, or a mapping of variable names to draws"
            )
    return draws


def _as_draws(
    src: Any, needed: Sequence[str], what: str, draws: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    if draws is None:
        draws = _all_draws(src, what)
    missing = [v for v in needed if v not in draws]
    if missing:
        raise ValueError(
            f"the {what} posterior lacks variable(s) {missing} needed for prediction; "
            "run `netbayes fit` to regenerate the stored posteriors (a fit of your own: fit "
            f"the {what} model, whose posterior holds them)"
        )
    out = {v: np.asarray(draws[v], dtype=float) for v in needed}
    n = {a.shape[0] for a in out.values()}
    if len(n) != 1:
        raise ValueError(f"the {what} posterior's variables have different numbers of draws: {n}")
    for v, a in out.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(f"the {what} posterior variable {v!r} has non-finite draws")
    from netbayes.store import draws_problem  # the saved posteriors' support and range checks

    for v, a in out.items():  # also for draws that never went through a store
        problem = draws_problem(v, a[None])
        if problem is not None:
            raise ValueError(f"the {what} posterior cannot be used: {problem}")
    return out


CENTRE_SEED = 20261206
"""Seed of the new centre's standard normals (one per posterior draw, survival then toxicity):
fixed, so that every call and every path (patient, summaries, cohort) sees the same new centre."""


def _study_level(
    src: Any, draws: Mapping[str, Any], var: str, sd: str, what: str
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """The study effects (draws, studies), their SD (draws,) and the study labels of a
    posterior with a study level; None without one."""
    if var not in draws or sd not in draws:
        return None
    from netbayes.calibration import STUDIES

    u = np.asarray(draws[var], dtype=float)
    labels = study_labels(src, var, list(STUDIES)[: u.shape[-1]])
    tau = np.asarray(draws[sd], dtype=float)
    if labels is None or u.ndim != 2 or u.shape[1] != len(labels) or tau.shape != u.shape[:1]:
        raise ValueError(
            f"the {what} posterior's study level is malformed: {var} has shape {u.shape}, "
            f"{sd} {tau.shape}, studies {labels}"
        )
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(tau)) and np.all(tau > 0)):
        raise ValueError(f"the {what} posterior's {var}/{sd} draws are not finite and positive")
    return u, tau, labels


def _warn_not_converged(src: Any, card: Mapping[str, Any] | None, what: str) -> None:
    """A :class:`~netbayes.fitting.ConvergenceWarning` for a posterior whose fit missed the
    convergence targets (its card says ``converged: false``, or a fit's ``converged``)."""
    diag = (card or {}).get("diagnostics")
    card_says = isinstance(diag, Mapping) and diag.get("converged") is False
    if not (card_says or getattr(src, "converged", True) is False):
        return
    from netbayes.fitting import ConvergenceWarning  # imported only here (it loads xarray)

    problems = (diag or {}).get("problems") if isinstance(diag, Mapping) else None
    problems = problems or getattr(src, "problems", None) or []
    detail = "; ".join(map(str, problems)) if isinstance(problems, list) else ""
    warnings.warn(
        f"the {what} posterior comes from a fit that did not converge (converged: false"
        f"{': ' + detail if detail else ''}); its predictions may be unreliable: refit with "
        "more tuning and draws before using them",
        ConvergenceWarning,
        stacklevel=3,
    )


class Predictor:
    """Predictions for patients and cohorts from posterior draws.

    Parameters
    ----------
    survival : StoredPosterior, FitResult, xarray.DataTree or mapping of str to numpy.ndarray
        Survival posterior holding :func:`netbayes.formulas.survival.params_for`
        ``(endpoint)``: a loaded store entry, a fresh fit, an ArviZ-style DataTree (its
        ``posterior`` group, e.g. ``arviz.from_netcdf(path)``), or draws with the draw axis
        first.
    toxicity : StoredPosterior, FitResult, xarray.DataTree or mapping, optional
        Toxicity posterior; without it the predictions have no ``p_grade3plus``.
    endpoint : {"pfs", "os"}
        What the survival posterior describes.
    family : str, optional
        The survival family of the posterior (:data:`netbayes.families.FAMILIES`). Default:
        the family recorded with the fit or in the model card, else ``"weibull"``.

    Warns
    -----
    netbayes.fitting.ConvergenceWarning
        A posterior comes from a fit that did not converge (its card or the fit says so).

    See Also
    --------
    Predictor.load : the shipped (or any stored) posteriors.
    """

    def __init__(
        self,
        survival: StoredPosterior | FitResult | xr.DataTree | Mapping[str, np.ndarray],
        toxicity: StoredPosterior
        | FitResult
        | xr.DataTree
        | Mapping[str, np.ndarray]
        | None = None,
        *,
        endpoint: Literal["pfs", "os"] = "pfs",
        family: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.family = get_family(family if family is not None else family_of(survival))
        raw = _all_draws(survival, f"survival-{endpoint}")
        self.survival = _as_draws(survival, F.params_for(endpoint), f"survival-{endpoint}", raw)
        self._study_s = _study_level(survival, raw, "u_study", "tau", f"survival-{endpoint}")
        for z in ("z1", "z2", *(("z1_os",) if endpoint == "os" else ())):
            if self.survival[z].ndim != 2 or self.survival[z].shape[1] != len(vocab.TUMOUR_TYPES):
                raise ValueError(
                    f"survival posterior variable {z!r} must have shape (draws, "
                    f"{len(vocab.TUMOUR_TYPES)}), got {self.survival[z].shape}"
                )
        self.cards = {
            "survival": getattr(survival, "card", None),
            "toxicity": getattr(toxicity, "card", None),
        }
        self._sources = {"survival": survival, "toxicity": toxicity}
        self._share_cache: dict[tuple[str, str], Any] = {}
        cal = (self.cards["survival"] or {}).get("calibration")
        self._ranges = _ranges_from_json(cal) if cal is not None else None
        self.toxicity: dict[str, np.ndarray] | None = None
        self._study_t = None
        if toxicity is not None:
            raw_t = _all_draws(toxicity, "toxicity")
            self.toxicity = _as_draws(toxicity, tuple(T.PARAMS), "toxicity", raw_t)
            self._study_t = _study_level(toxicity, raw_t, "v_study", "tau_tox", "toxicity")
        rng = np.random.default_rng(CENTRE_SEED)  # the new centre's effects, fixed per posterior
        self._z_centre_s = rng.standard_normal(self.n_draws)
        self._z_centre_t = (
            None if self.toxicity is None else rng.standard_normal(len(self.toxicity["theta"]))
        )
        self.chains = _chain_count(survival, self.n_draws)
        self.tox_chains = (
            1 if self.toxicity is None else _chain_count(toxicity, len(self.toxicity["theta"]))
        )
        _warn_not_converged(survival, self.cards["survival"], f"survival-{endpoint}")
        if toxicity is not None:
            _warn_not_converged(toxicity, self.cards["toxicity"], "toxicity")

    @classmethod
    def load(
        cls,
        endpoint: Literal["pfs", "os"] | str | PathLike[str] = "pfs",
        folder: str | PathLike[str] | None = None,
        *,
        toxicity: bool | None = None,
    ) -> Predictor:
        """Load stored posteriors (default: the shipped ones) and verify them.

        ``Predictor.load()`` loads the shipped posteriors; ``Predictor.load(path)`` a folder
        written by ``fit.save(path)`` (a survival fit, optionally with a toxicity fit);
        ``Predictor.load("os", path)`` the OS posterior of a folder.

        Parameters
        ----------
        endpoint : {"pfs", "os"} or path
            The survival endpoint; or, as the only argument, a models folder (its endpoint is
            that of the survival fit it holds: PFS if it holds both).
        folder : str or path-like, optional
            Models folder (default :func:`netbayes.store.models_dir`).
        toxicity : bool, optional
            Load the toxicity posterior (True: required; False: skipped). Default: required for
            ``Predictor.load()`` and ``Predictor.load(endpoint, folder)``; loaded when present
            for ``Predictor.load(path)``.

        Raises
        ------
        netbayes.store.StoreError
            A posterior is missing, corrupt or does not match; the message says how to
            regenerate it.

        Warns
        -----
        netbayes.fitting.ConvergenceWarning
            A posterior's card says its fit did not converge.
        """
        from netbayes.store import StoreError, load_posterior

        path_first = not (isinstance(endpoint, str) and endpoint in ("pfs", "os"))
        if path_first:
            if (
                folder is not None
                or not isinstance(endpoint, (str, PathLike))
                or endpoint == ""
                or not Path(endpoint).is_dir()
            ):
                allowed = "'pfs' or 'os', or an existing models folder as the only argument"
                raise _bad("endpoint", endpoint, allowed)
            base = Path(endpoint)
            folder = base
            have = [ep for ep in ("pfs", "os") if (base / f"survival-{ep}.json").is_file()]
            if not have:
                raise StoreError(
                    f"no survival posterior in {base}: expected survival-pfs.json or "
                    "survival-os.json there (save a fit with fit.save(folder), or run "
                    f"`netbayes fit --out {base}`)"
                )
            endpoint = have[0]
            if toxicity is None:
                toxicity = (base / "toxicity.json").is_file()
        elif toxicity is None:
            toxicity = True
        # prediction reads the checked draws files only: the DataTree files are not read here
        surv = load_posterior(f"survival-{endpoint}", folder, verify_datatree=False)
        tox = load_posterior("toxicity", folder, verify_datatree=False) if toxicity else None
        return cls(surv, tox, endpoint=endpoint)  # type: ignore[arg-type]

    @property
    def ranges(self) -> dict[str, Any]:
        """The calibrated input ranges: from the survival model card (recorded at fit time
        from the same data, see the card's data hash), else :func:`calibrated_ranges`."""
        return self._ranges if self._ranges is not None else calibrated_ranges()

    @property
    def n_draws(self) -> int:
        """Number of survival posterior draws."""
        return int(self.survival["k2"].shape[0])

    @property
    def studies(self) -> list[str]:
        """The studies (centres) of the survival posterior's study level (empty without one)."""
        return [] if self._study_s is None else list(self._study_s[2])

    @property
    def study_level(self) -> bool:
        """Whether the survival posterior has a study (centre) level."""
        return self._study_s is not None

    def _check_centre(self, centre: Any) -> str:
        allowed = ", ".join([*CENTRES, *self.studies])
        if not isinstance(centre, str) or centre.strip() == "":
            raise _bad("centre", centre, allowed)
        c = centre.strip()
        if c in CENTRES or c in self.studies:
            return c
        raise _bad("centre", centre, allowed)

    def _centred_survival(
        self, centre: str, th: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Survival draws for a centre: every log-time intercept shifted by the centre effect
        (:mod:`netbayes.formulas.study`), so every path predicts for that centre. ``th``:
        other draws (the prior share's), whose ``tau`` / ``u_study`` replace the posterior's."""
        th = (
            self.survival
            if th is None
            else {k: th[k] for k in (*self.survival, "tau", "u_study") if k in th}
        )
        if self._study_s is None or centre == "typical":
            return {k: th[k] for k in self.survival}
        u, tau, labels = self._study_s
        u, tau = th.get("u_study", u), th.get("tau", tau)
        c = tau * self._z_centre_s if centre == "new" else study_draws(u, labels, centre)
        out = {k: th[k] for k in self.survival}
        for k in ("alpha1", "alpha2", "alpha1_os"):
            if k in out:
                out[k] = out[k] + c
        return out

    def _centred_toxicity(
        self, centre: str, th: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray] | None:
        """Toxicity draws for a centre: the centre's latent effect added to every linear
        predictor, as cut points shifted down by it. ``th``: other draws (the prior share's),
        whose ``tau_tox`` / ``v_study`` replace the posterior's."""
        if self.toxicity is None:
            return None
        extra = {} if th is None else {k: th[k] for k in ("tau_tox", "v_study") if k in th}
        th = {k: (self.toxicity if th is None else th)[k] for k in self.toxicity}
        if self._study_t is None or centre == "typical":
            return th
        v, tau_m, labels = self._study_t
        v, tau_m = extra.get("v_study", v), extra.get("tau_tox", tau_m)
        if centre == "new":
            c = tau_m * np.sqrt(1.0 + th["sigma_u"] ** 2) * self._z_centre_t
        elif centre in labels:
            c = study_draws(v, labels, centre)
        else:  # a survival study the toxicity data do not have: a new centre for toxicity
            c = tau_m * np.sqrt(1.0 + th["sigma_u"] ** 2) * self._z_centre_t
        out = dict(th)
        out["c3"] = th["c3"] - c[:, None]
        return out

    # -- prior share (netbayes.predict.share) -----------------------------------------------------
    def _share_state(
        self, model: str, centre: str
    ) -> tuple[sh.Flat, str, dict[str, dict[str, np.ndarray]]] | None:
        """The parameter elements of ``model``'s predictions for ``centre``, where their
        priors come from, and the share's conditional draws (cached); None without a toxicity
        posterior."""
        key = (model, centre)
        if key in self._share_cache:
            return self._share_cache[key]
        if model == "toxicity" and self.toxicity is None:
            return None
        priors, source = sh.resolve_priors(
            self._sources[model], self.cards[model], model, self.endpoint
        )
        study = None
        studies: list[str] = []
        if model == "survival":
            draws = dict(self.survival)
            if self._study_s is not None and centre != "typical":
                u, tau, studies = self._study_s
                if centre == "new":
                    draws["tau"] = tau
                else:
                    draws["u_study"], study = u, centre
        else:
            assert self.toxicity is not None
            draws = dict(self.toxicity)
            if self._study_t is not None and centre != "typical":
                v, tau_m, studies = self._study_t
                if centre in studies:
                    draws["v_study"], study = v, centre
                else:
                    draws["tau_tox"] = tau_m
        flat = sh.flatten(model, draws, priors, studies, study)
        state = (flat, source, sh.conditionals(flat))
        self._share_cache[key] = state
        return state

    def prior_parameters(self, centre: str = "new") -> pd.DataFrame:
        """The parameters of this predictor's answers for ``centre`` with their prior and
        posterior SDs: which are prior-dominated (posterior/prior SD >= 0.7).

        Returns
        -------
        pandas.DataFrame
            One row per parameter element: ``model``, ``parameter``, ``prior``, ``kind``
            (:data:`netbayes.priors.KINDS`), ``prior_sd``, ``posterior_sd``, ``sd_ratio``,
            ``prior_dominated``; ``attrs["prior_source"]``: per model, where the priors come
            from (the model card, or the model's defaults for draws without one).
        """
        return parameter_frame(*self._prior_parameter_rows(centre))

    def _prior_parameter_rows(
        self, centre: str = "new"
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The rows of :meth:`prior_parameters` and the source of each model's priors."""
        centre = self._check_centre(centre)
        rows, sources = [], {}
        for model in ("survival", "toxicity"):
            st = self._share_state(model, centre)
            if st is None:
                continue
            sources[model] = st[1]
            rows += [
                {"model": e.model, "parameter": e.label, "prior": e.prior, "kind": e.kind,
                 "prior_sd": e.prior_sd, "posterior_sd": e.posterior_sd,
                 "sd_ratio": e.sd_ratio, "prior_dominated": e.prior_dominated}
                for e in st[0].elements
            ]  # fmt: skip
        return rows, sources

    def centre_note(self, centre: str) -> str:
        """What ``centre`` means for this predictor, in words (for headers and JSON)."""
        if self._study_s is None:
            return "one centre (this posterior has no study level)"
        if centre == "new":
            return "a new centre (the between-centre spread included)"
        if centre == "typical":
            return "a typical centre (study effect 0; no between-centre spread)"
        return f"centre {centre!r} (its own fitted effect)"

    # -- one or many patients -------------------------------------------------------------------
    def patient(
        self,
        *,
        tumour_type: str,
        line: str,
        planned_gbq: float,
        prior_gbq: float = 0.0,
        prior_pfs_months: float | None = None,
        times: Sequence[float] | None = None,
        t_probs: Sequence[float] = DEFAULT_T_PROBS,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
        seed: int | None = 0,
        centre: str = "new",
    ) -> Prediction:
        """Predict one patient.

        Parameters
        ----------
        tumour_type, line, planned_gbq, prior_gbq, prior_pfs_months
            The patient record (:data:`FIELDS`).
        times : sequence of float, optional
            Time grid of the survival curve, months (default :data:`DEFAULT_TIMES`).
        t_probs : sequence of float
            Times t of P(PFS > t), months (default 12 and 24).
        interval : Interval or float, optional
            Interval convention (default 95% equal-tailed).
        new_type : {"error", "population"}
            A tumour type outside the vocabulary: refuse (default) or draw its effect from the
            population distribution.
        seed : int or None
            Seed of the population draws of a new tumour type (an integer >= 0; None: fresh
            entropy).
        centre : str
            Which centre the patient is treated in (:mod:`netbayes.formulas.study`):
            ``"new"`` (default: a centre not in the data; the between-centre spread is
            included), a study of the posterior (:attr:`studies`, e.g. ``"rotterdam2019"``:
            its fitted effect) or ``"typical"`` (effect 0). Without a study level in the
            posterior every choice gives the one-centre answer (:meth:`centre_note` says so).

        Returns
        -------
        Prediction

        Warns
        -----
        ExtrapolationWarning
            The inputs lie outside the calibration data (see the module docstring).
        """
        rec = {
            "tumour_type": tumour_type,
            "line": line,
            "planned_gbq": planned_gbq,
            "prior_gbq": prior_gbq,
            "prior_pfs_months": prior_pfs_months,
        }
        return self._predict([rec], [0], times, t_probs, interval, new_type, seed, centre)

    def patients(
        self,
        df: pd.DataFrame,
        *,
        times: Sequence[float] | None = None,
        t_probs: Sequence[float] = DEFAULT_T_PROBS,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
        seed: int | None = 0,
        centre: str = "new",
        max_gb: float = PATIENTS_MAX_GB,
    ) -> Prediction:
        """Predict many patients, one per row of ``df`` (the index labels the patients).

        Parameters
        ----------
        df : pandas.DataFrame
            Columns ``tumour_type``, ``line``, ``planned_gbq`` and, as needed, ``prior_gbq``
            and ``prior_pfs_months`` (see :data:`FIELDS`). Every cell holds one value. A
            missing cell (NaN, None) means "not given": ``prior_pfs_months`` is then absent,
            ``prior_gbq`` is 0 on the lines that allow it (I-PRRT, 188Re-HEDP) and refused as
            given on a retreatment (R-PRRT, RR-PRRT), as :meth:`patient` refuses it.
        times, t_probs, interval, new_type, seed, centre
            As in :meth:`patient`. Patients with the same new tumour-type label share its
            drawn effect.
        max_gb : float
            Refuse a table whose draws would take more than this many gigabytes (default
            :data:`PATIENTS_MAX_GB`, 1 GB: about 450 patients with the shipped posteriors).

        Returns
        -------
        Prediction

        Raises
        ------
        ValueError
            A bad cell (naming the patient, the field, the value and what is allowed), or a
            table above ``max_gb`` (with the estimate; use :meth:`summaries`).

        See Also
        --------
        summaries : the same summaries for large tables, vectorised and memory-bounded. This
            method keeps every draw of every patient: 8 bytes x draws x (time-grid points + 1 +
            ``len(t_probs)`` + 4 toxicity risks), 2.2 MB a patient with the shipped posteriors
            (4000 draws) and the default 61-point grid, and about twice that at the peak.
        """
        _check_frame(df)
        return self._predict(
            _table_records(df),
            list(df.index),
            times,
            t_probs,
            interval,
            new_type,
            seed,
            centre,
            max_gb,
        )

    def summaries(
        self,
        df: pd.DataFrame,
        *,
        t_probs: Sequence[float] = DEFAULT_T_PROBS,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
        seed: int | None = 0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        centre: str = "new",
        prior_share: bool = True,
        rmst_tau: Sequence[float] = (),
        quantiles: Sequence[float] = (),
        threads: int | None = None,
    ) -> pd.DataFrame:
        """Summaries only, one row per patient: vectorised and memory-bounded, for large batches.

        The same numbers as the ``summary`` of :meth:`patients` (and of :meth:`patient` for a
        one-row table), laid out wide: no survival curve and no draws are kept. With the
        shipped posteriors (4000 draws each), 100,000 patients take a minute or so on one
        core (about 0.6 ms each on a contended 2-core machine; a mix of every line and
        tumour type costs a little more) and 100-200 MB above the loaded posteriors.

        Parameters
        ----------
        df : pandas.DataFrame
            The patients, as for :meth:`patients` (same columns, missing cells and checks).
        t_probs : sequence of float
            Times t of P(PFS > t), months (default 12 and 24).
        interval : Interval or float, optional
            Interval convention (default 95% equal-tailed).
        new_type : {"error", "population"}
            A tumour type outside the vocabulary: refuse (default) or draw its effect from the
            population distribution.
        seed : int or None
            Seed of the new tumour types' population draws: one vector of standard normals
            (one per posterior draw) per distinct new label, drawn from
            ``numpy.random.default_rng(seed)`` in the order in which the labels first appear
            in ``df``, exactly as :meth:`patients` draws them. Rows with the same new label
            share the effect; a row's draws depend on the new labels above it, not on its
            position otherwise.
        centre : str
            As in :meth:`patient` (the table's ``attrs`` record it: ``centre``,
            ``centre_note``).
        chunk_size : int
            Distinct patients evaluated together (>= 1; the default 64 keeps the work arrays
            small enough to be reused rather than re-mapped). Peak memory: the work arrays (one set
            per thread),
            about ``chunk_size * 8 B * (2 * Q * S + 6 * S_tox)`` (Q = 1 + ``len(t_probs)``
            survival quantities, S survival and S_tox toxicity draws: ~20 MB at the default
            with 4000 draws), plus the any-line risk table (32 B per toxicity draw and grid
            point: a few MB for patients on one line with calibrated activities, at most
            ~110 MB with the shipped posterior for a batch spanning every line and
            activity), plus about 0.5 kB per patient (inputs, validation, result). None of
            it grows with the number of draws times patients.
        prior_share : bool
            Add each answer's prior share (:mod:`netbayes.predict.share`; the total only, not
            per parameter) as ``<quantity>_prior_share``, and warn above 50%. It costs one more
            evaluation of the batch with the prior-dominated parameters fixed and the variances
            of the answers: about 2.2 times the time without it (2000 R-PRRT patients with
            the shipped posteriors: 1.9 s without, 4.2 s with, on a loaded 2-core machine).
        rmst_tau : sequence of float
            Horizons (months > 0) of the restricted mean survival time to add (default none:
            the RMST costs an incomplete gamma function per patient and draw, about as much as
            the rest together).
        quantiles : sequence of float
            Probabilities p in (0, 1) of the quantiles :math:`F^{-1}(p)` to add (months; as
            :meth:`Prediction.quantile`; default none).
        threads : int, optional
            Chunks evaluated at once, each on its own thread with its own work arrays
            (default: :data:`~netbayes.predict.kernels.DEFAULT_THREADS`, at most the machine's
            cores). The numbers do not depend on it: every chunk is computed as it would be
            alone.

        Returns
        -------
        pandas.DataFrame
            Index: ``df``'s index (named ``patient``). Per quantity, four columns
            ``<quantity>_median``, ``<quantity>_mean``, ``<quantity>_<lower>``,
            ``<quantity>_<upper>`` (posterior median, mean and the interval bounds, named
            by the interval as in every netbayes table, e.g. ``eti95_lower``), for the
            quantities ``median_pfs`` (months), ``p_pfs_gt_<t>`` per time of ``t_probs``
            (``12`` for 12.0, ``6.5`` for 6.5), ``rmst_pfs_<tau>`` per horizon of ``rmst_tau``
            (months, as :meth:`Prediction.rmst`), ``quantile_pfs_<p>`` per probability of
            ``quantiles`` (months), and, with a toxicity posterior,
            ``p_grade3plus_<cell line>`` for :data:`netbayes.vocab.CELL_LINES` and ``any``
            (``os`` instead of ``pfs`` for an OS predictor). Then ``extrapolation``: the
            patient's extrapolation notes joined by "; " (empty if none).

        Raises
        ------
        ValueError
            A row fails validation: the same error as :meth:`patient` gives, prefixed by
            ``patient <label>:`` when ``df`` has more than one row.

        Warns
        -----
        ExtrapolationWarning
            One per kind of extrapolation (e.g. planned activity outside the calibrated
            range of a line), with the number of patients concerned and the first one's
            note; each patient's notes are in the ``extrapolation`` column.

        Notes
        -----
        Patients with equal inputs are evaluated once; the others are ordered so that a
        chunk holds similar patients (same line and tumour type, nearby covariates). Per
        chunk, the formulas are evaluated on arrays of patients x posterior draws and
        summarised at once; the order statistics of an equal-tailed interval are selected
        exactly, among the draws that can hold them for some patient of the chunk.

        Agreement with :meth:`patient`: the survival quantities and the per-line toxicity
        risks use the same formulas and operations (differences are rounding, about 1e-15
        relative; the median of a coarse tumour type is solved by safeguarded Newton instead
        of bisection, to the same root); the any-line risk, a quadrature over the patient
        propensity for each draw, is interpolated from a table per draw
        (:func:`netbayes.formulas.toxicity.any_line_risk_table`) within its proven error
        bound (5.3e-8 with the default quadrature; a table whose bound exceeds 1e-7 is
        refused), and so are its summaries (the mean and the order statistics move by at
        most the largest change of a draw; an HDI's bounds, though, can switch between
        windows of nearly equal width).
        """
        iv = as_interval(interval)
        tp = _check_times("t_probs", t_probs)
        taus = _check_taus(rmst_tau)
        qps = _check_quantiles(quantiles)
        seed = _check_seed(seed)
        if (
            isinstance(chunk_size, (bool, np.bool_))
            or not isinstance(chunk_size, (int, np.integer))
            or chunk_size < 1
        ):
            raise _bad("chunk_size", chunk_size, "an integer >= 1 (patients evaluated together)")
        chunk = int(chunk_size)
        if threads is None:
            import os

            threads = min(DEFAULT_THREADS, os.cpu_count() or 1)
        if (
            isinstance(threads, (bool, np.bool_))
            or not isinstance(threads, (int, np.integer))
            or threads < 1
        ):
            raise _bad("threads", threads, "an integer >= 1 (chunks evaluated at once)")
        threads = int(threads)
        if new_type not in ("error", "population"):
            raise _bad("new_type", new_type, "'error' or 'population'")
        centre = self._check_centre(centre)
        _check_frame(df)
        batch = _validate(_table_records(df), list(df.index), new_type, self.endpoint, self.ranges)
        _warn(batch, by_kind=True, stacklevel=2)
        e = self.endpoint
        lo_c, hi_c = iv.columns
        stats = ("median", "mean", lo_c, hi_c)
        names = [f"median_{e}", *(f"p_{e}_gt_{_time_label(t)}" for t in tp)]
        names += [f"rmst_{e}_{_time_label(t)}" for t in taus]
        names += [f"quantile_{e}_{p:g}" for p in qps]
        th = self._centred_survival(centre)
        P = len(df)
        var_s = np.empty((P, len(names))) if prior_share else None
        surv = self._survival_summaries(batch, tp, iv, seed, chunk, th, var_s, taus=taus,
                                        qps=qps, threads=threads)  # fmt: skip
        blocks = [surv]
        shares = []
        if prior_share:
            assert var_s is not None
            args = (var_s, batch, tp, iv, seed, chunk, taus, qps)
            shares.append(self._batch_share("survival", centre, *args, threads=threads))
        tox = self._centred_toxicity(centre)
        if tox is not None:
            names += [f"p_grade3plus_{cl}" for cl in (*vocab.CELL_LINES, "any")]
            var_t = np.empty((P, 4)) if prior_share else None
            blocks.append(self._toxicity_summaries(batch, iv, chunk, tox, var_t, threads=threads))
            if prior_share:
                assert var_t is not None
                shares.append(self._batch_share("toxicity", centre, var_t, batch, tp, iv, seed,
                                                chunk, threads=threads))  # fmt: skip
        values = np.concatenate(blocks, axis=1)
        cols: dict[str, Any] = {
            f"{q}_{st}": values[:, i, j] for i, q in enumerate(names) for j, st in enumerate(stats)
        }
        if prior_share:
            share = np.concatenate(shares, axis=1)
            for i, q in enumerate(names):
                cols[f"{q}_prior_share"] = share[:, i]
            long = [
                {"patient": lab, "quantity": q, "t_months": np.nan, "cell_line": None,
                 "scale": "log" if q.startswith(("median", "rmst", "quantile")) else "logit",
                 "share": float(share[p, i]), "parameters": {}}
                for i, q in enumerate(names)
                for p, lab in enumerate(df.index)
                if share[p, i] > sh.MOSTLY_PRIOR
            ]  # fmt: skip
            _warn_prior(long, self._prior_parameter_rows(centre)[0], P, stacklevel=2)
        cols["extrapolation"] = ["; ".join(notes) for notes in batch.notes]
        out = pd.DataFrame(cols, index=df.index.copy())
        out.index.name = "patient"
        out.attrs["centre"] = centre
        out.attrs["centre_note"] = self.centre_note(centre)
        return out

    def _survival_summaries(
        self,
        b: _Batch,
        tp: np.ndarray,
        iv: Interval,
        seed: int | None,
        chunk: int,
        th: Mapping[str, np.ndarray],
        var: np.ndarray | None = None,
        summarise: bool = True,
        taus: np.ndarray = np.zeros(0),  # noqa: B008  (never mutated)
        qps: np.ndarray = np.zeros(0),  # noqa: B008  (never mutated)
        threads: int = 1,
    ) -> np.ndarray:
        """(P, 1 + len(tp) + len(taus) + len(qps), 4): median, mean, interval bounds of the
        median, P(T > t), the RMST at ``taus`` and the quantiles at ``qps``.
        ``var``: filled (U distinct patients, 1 + len(tp)) with the answers' variances on their
        prior-share scales (log, logit), in the order of ``_units``; ``summarise=False``
        skips the summaries (the prior share's second evaluation)."""
        e = self.endpoint
        S = self.n_draws
        z_new = _new_type_effects(b, seed, S)
        keys = np.column_stack([b.line, b.type, b.x_mix, b.lx, b.gq]).astype(float)
        units, inverse = _units(keys, 3)
        U, Q = len(units), 1 + len(tp) + len(taus) + len(qps)
        out = np.empty((U, Q, 4))
        fam = self.family
        fast = isinstance(fam, WeibullFamily)  # the Weibull closed forms, operation by operation
        cl2 = (
            np.power(math.log(2.0), 1.0 / np.stack([F.shape(th, ln, e) for ln in vocab.LINES]))
            if fast
            else None
        )
        what = ["the median", *(["P(event-free)"] * len(tp)), *(["the RMST"] * len(taus)),
                *(["a quantile"] * len(qps))]  # fmt: skip
        n_tp = 1 + len(tp)
        n_work = max(1, min(threads, -(-U // chunk)))
        work = [np.empty((min(chunk, U), Q, S)) for _ in range(n_work)]  # one per thread

        def run(c0: int, worker: int) -> None:
            part = units[c0 : c0 + chunk]
            buf = work[worker][: len(part)]
            for a, z in _runs(part[:, :3]):  # one line, tumour type and prior-PFS mixture
                li, ty, mix = int(part[a, 0]), int(part[a, 1]), bool(part[a, 2])
                line, lx, gq = vocab.LINES[li], part[a:z, 3:4], part[a:z, 4:5]
                k, loglam, w = _survival_components(
                    th, line, e, ty, lx, gq, z_new, b.coarse_weights, b.x_nodes if mix else None
                )
                loglam = [np.broadcast_to(x, (z - a, S)) for x in loglam]
                lam = [np.exp(x) for x in loglam]
                tmp = np.empty((z - a, S))
                if not fast:  # any family: its own median, mixture median and survival
                    lam_s = np.stack(lam, axis=-1)  # (rows, S, J)
                    k_rows = np.broadcast_to(k, (z - a, S))
                    if len(w) == 1:
                        buf[a:z, 0] = fam.median(k_rows, lam_s[..., 0])
                    else:  # one bisection over every (row, draw) pair
                        flat = fam.mixture_median(k_rows.reshape(-1), lam_s.reshape(-1, len(w)), w)
                        buf[a:z, 0] = flat.reshape(z - a, S)
                    for i, t in enumerate(tp):
                        buf[a:z, 1 + i] = fam.sf(t, k_rows[..., None], lam_s) @ w
                elif len(w) == 1:  # formulas.survival.weibull_median and weibull_sf
                    np.multiply(lam[0], cl2[li], out=buf[a:z, 0])
                    for i, t in enumerate(tp):
                        _weibull_sf_into(t, k, lam[0], buf[a:z, 1 + i])
                else:  # mixture_median (same root, by Newton) and mixture_sf
                    buf[a:z, 0] = _mixture_median(k, loglam, w, cl2[li])
                    for i, t in enumerate(tp):
                        acc = buf[a:z, 1 + i]
                        acc[...] = 0.0
                        for lm, v in zip(lam, w, strict=True):
                            acc += np.multiply(v, _weibull_sf_into(t, k, lm, tmp), out=tmp)
                for i, tau in enumerate(taus):  # any family: its closed-form RMST, weighted
                    acc = buf[a:z, n_tp + i]
                    acc[...] = 0.0
                    for lm, v in zip(lam, w, strict=True):
                        acc += v * fam.rmst(tau, k, lm)
                n_rq = n_tp + len(taus)
                for i, pq in enumerate(qps):  # any family: its quantile, a mixture's by bisection
                    if len(w) == 1:
                        buf[a:z, n_rq + i] = fam.quantile(pq, k, lam[0])
                    else:
                        lam_s = np.stack(lam, axis=-1).reshape(-1, len(w))
                        k_rows = np.broadcast_to(k, (z - a, S)).reshape(-1)
                        q = fam.mixture_quantile(np.array([pq]), k_rows, lam_s, w)[:, 0]
                        buf[a:z, n_rq + i] = q.reshape(z - a, S)
            if var is not None:
                var[c0 : c0 + len(part), 0] = sh.transform(buf[:, 0], "months").var(axis=-1)
                var[c0 : c0 + len(part), 1:n_tp] = sh.transform(buf[:, 1:n_tp], "probability").var(
                    -1
                )
                var[c0 : c0 + len(part), n_tp:] = sh.transform(buf[:, n_tp:], "months").var(-1)
                # (RMST and quantiles: months, log scale)
            if summarise:
                out[c0 : c0 + len(part)] = _summarise(iv, buf, what)

        _each_chunk(U, chunk, n_work, run)
        if var is not None:
            var[:] = var[:U][inverse]
        return out[inverse]

    def _batch_share(
        self,
        model: str,
        centre: str,
        var: np.ndarray,
        b: _Batch,
        tp: np.ndarray,
        iv: Interval,
        seed: int | None,
        chunk: int,
        taus: np.ndarray = np.zeros(0),  # noqa: B008  (never mutated)
        qps: np.ndarray = np.zeros(0),  # noqa: B008  (never mutated)
        threads: int = 1,
    ) -> np.ndarray:
        """The total prior shares of a batch's answers of ``model``, (P, Q): one more
        evaluation with the prior-dominated parameters fixed (:mod:`netbayes.predict.share`)."""
        st = self._share_state(model, centre)
        assert st is not None
        if "*" not in st[2]:
            return np.zeros(var.shape)
        fixed = np.empty(var.shape)
        d = st[2]["*"]
        if model == "survival":
            th = self._centred_survival(centre, d)
            self._survival_summaries(b, tp, iv, seed, chunk, th, fixed, False, taus, qps,
                                     threads=threads)  # fmt: skip
        else:
            tox = self._centred_toxicity(centre, d)
            assert tox is not None
            self._toxicity_summaries(b, iv, chunk, tox, fixed, summarise=False, threads=threads)
        return sh._share(fixed, var)

    def _toxicity_summaries(
        self,
        b: _Batch,
        iv: Interval,
        chunk: int,
        th: Mapping[str, np.ndarray],
        var: np.ndarray | None = None,
        summarise: bool = True,
        threads: int = 1,
    ) -> np.ndarray:
        """(P, 4, 4): median, mean, interval bounds of P(grade >= III) per cell line and any
        (``var``, ``summarise``: as :meth:`_survival_summaries`, logit scale)."""
        keys = np.column_stack([b.line, b.planned, b.prior])
        units, inverse = _units(keys, 1)
        U = len(units)
        S = th["sigma_u"].shape[0]
        scale = np.sqrt(1.0 + th["sigma_u"] ** 2)
        c3 = th["c3"]
        # the any-line risk table covers, per draw, the linear predictor of every unit: eta is
        # linear in (planned, prior) per line, so its range is spanned by the corners
        lo, hi = np.full(S, np.inf), np.full(S, -np.inf)
        for li in np.unique(units[:, 0]).astype(int):
            u = units[units[:, 0] == li]
            a = np.repeat([u[:, 1].min(), u[:, 1].max()], 2)
            p = np.tile([u[:, 2].min(), u[:, 2].max()], 2)
            eta = _toxicity_eta(th, vocab.LINES[li], a, p)
            lo, hi = np.minimum(lo, eta.min(axis=0)), np.maximum(hi, eta.max(axis=0))
        table = T.any_line_risk_table(th, lo, hi)
        if table.max_error > _ANY_LINE_TOLERANCE:  # pragma: no cover - guarded by the bound
            raise RuntimeError(f"any-line risk table error bound {table.max_error:.2g} too large")
        out = np.empty((U, 4, 4))

        n_work = max(1, min(threads, -(-U // chunk)))
        work = [np.empty((min(chunk, U), 4, S)) for _ in range(n_work)]  # one per thread

        def run(c0: int, worker: int) -> None:
            part = units[c0 : c0 + chunk]
            buf = work[worker][: len(part)]
            for a, z in _runs(part[:, :1]):  # one treatment line
                eta = _toxicity_eta(th, vocab.LINES[int(part[a, 0])], part[a:z, 1], part[a:z, 2])
                for j in range(c3.shape[1]):  # as formulas.toxicity.grade3_risk:
                    v = buf[a:z, j]  # -(c - eta) is exactly eta - c
                    ndtr(np.divide(np.subtract(eta, c3[:, j], out=v), scale, out=v), out=v)
                buf[a:z, 3] = table(eta)
            if var is not None:
                var[c0 : c0 + len(part)] = sh.transform(buf, "probability").var(axis=-1)
            if summarise:
                out[c0 : c0 + len(part)] = _summarise(iv, buf, ["P(grade >= III)"] * 4)

        _each_chunk(U, chunk, n_work, run)
        if var is not None:
            var[:] = var[:U][inverse]
        return out[inverse]

    def _predict(
        self,
        recs: Iterable[dict[str, Any]],
        labels: list[Any],
        times: Sequence[float] | None,
        t_probs: Sequence[float],
        interval: Interval | float | None,
        new_type: Literal["error", "population"],
        seed: int | None,
        centre: str,
        max_gb: float = PATIENTS_MAX_GB,
    ) -> Prediction:
        """:meth:`patient` and :meth:`patients`: the evaluation path, every draw kept."""
        centre = self._check_centre(centre)
        iv = as_interval(interval)
        tgrid = DEFAULT_TIMES if times is None else _check_times("times", times)
        tp = _check_times("t_probs", t_probs)
        seed = _check_seed(seed)
        max_gb = _check_max_gb(max_gb)
        n_pat = len(labels)
        need = _patients_bytes(n_pat, self.n_draws, len(tgrid), len(tp), self.toxicity is not None)
        if need > max_gb * 1e9:
            what = "patient" if n_pat == 1 else "patients"
            raise ValueError(
                f"{n_pat} {what} x {self.n_draws} draws x {len(tgrid)} times would hold about "
                f"{_size(need)} of draws ({_size(need / n_pat)} a patient, about twice that at "
                f"the peak), above max_gb={max_gb:g}; use Predictor.summaries(df) for the "
                "summaries of a large table (the same numbers without the draws and curves, "
                "in bounded memory), a shorter times grid, smaller tables, or a larger max_gb"
            )
        b = _validate(recs, labels, new_type, self.endpoint, self.ranges)
        _warn(b, by_kind=False, stacklevel=3)
        e = self.endpoint
        th = self._centred_survival(centre)
        tox = self._centred_toxicity(centre)
        z_new = _new_type_effects(b, seed, self.n_draws)
        S_all, med_all, gt_all, tox_all = [], [], [], []
        rows: list[dict[str, Any]] = []
        curve_rows: list[dict[str, Any]] = []
        lo_c, hi_c = iv.columns
        lines = [vocab.LINES[li] for li in b.line]
        st_s = self._share_state("survival", centre)
        st_t = self._share_state("toxicity", centre)
        share_rows: list[dict[str, Any]] = []
        laws: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for i, lab in enumerate(b.labels):
            laws[lab] = self._patient_components(th, b, i, z_new)
            surv, gt, med = self._patient_survival(th, b, i, z_new, tgrid, tp, laws[lab])
            _finite("the survival curve", surv)
            _finite("the median", med)
            _finite("P(event-free)", gt)
            S_all.append(surv)
            med_all.append(med)
            gt_all.append(gt)
            rows.append(
                {
                    "patient": lab,
                    "quantity": f"median_{e}",
                    "t_months": np.nan,
                    "cell_line": None,
                    "unit": "months",
                    **_describe(iv, med),
                }
            )
            for j, t in enumerate(tp):
                rows.append(
                    {
                        "patient": lab,
                        "quantity": f"p_{e}_gt",
                        "t_months": float(t),
                        "cell_line": None,
                        "unit": "probability",
                        **_describe(iv, gt[:, j]),
                    }
                )
            qs = [(f"median_{e}", np.nan, None, "months")]
            qs += [(f"p_{e}_gt", float(t), None, "probability") for t in tp]

            def ev_s(d: Mapping[str, np.ndarray], i: int = i) -> np.ndarray:
                _, g, m = self._patient_survival(
                    self._centred_survival(centre, d), b, i, z_new, None, tp
                )
                return np.vstack([sh.transform(m, "months"), sh.transform(g.T, "probability")])

            base = np.vstack([sh.transform(med, "months"), sh.transform(gt.T, "probability")])
            share_rows += _share_rows(lab, qs, st_s, ev_s, base)
            if tox is not None:
                risk = _toxicity_risk(tox, lines[i], b.planned[i], b.prior[i])
                tox_all.append(risk)

                def ev_t(d: Mapping[str, np.ndarray], i: int = i) -> np.ndarray:
                    r = _toxicity_risk(
                        self._centred_toxicity(centre, d), lines[i], b.planned[i], b.prior[i]
                    )
                    return sh.transform(r.T, "probability")

                qt = [("p_grade3plus", np.nan, cl, "probability")
                      for cl in (*vocab.CELL_LINES, "any")]  # fmt: skip
                share_rows += _share_rows(lab, qt, st_t, ev_t, sh.transform(risk.T, "probability"))
                for j, cl in enumerate((*vocab.CELL_LINES, "any")):
                    rows.append(
                        {
                            "patient": lab,
                            "quantity": "p_grade3plus",
                            "t_months": np.nan,
                            "cell_line": cl,
                            "unit": "probability",
                            **_describe(iv, risk[:, j]),
                        }
                    )
            desc = iv.describe(surv, axis=0)
            curve_rows.append(
                {
                    "patient": [lab] * len(tgrid),
                    "t_months": tgrid,
                    "median": desc["median"],
                    "mean": desc["mean"],
                    lo_c: desc[lo_c],
                    hi_c: desc[hi_c],
                }
            )
        for c in ("median", "mean", lo_c, hi_c):
            _finite(c, np.array([r[c] for r in rows], dtype=float))
        inputs = {
            "tumour_type": [b.tumour_type(i) for i in range(len(lines))],
            "line": lines,
            "prior_pfs_months": b.prior_pfs,
            "prior_gbq": b.prior,
            "planned_gbq": b.planned,
            "cumulative_gbq": [
                F.cumulative_gbq(pg, pl, ln)
                for pg, pl, ln in zip(b.prior, b.planned, lines, strict=True)
            ],
            "new_type": b.type >= _NEW_TYPE_BASE,
            "extrapolation": ["; ".join(notes) for notes in b.notes],
            "extrapolation_notes": [list(notes) for notes in b.notes],
        }
        arrays = {
            "survival": np.stack(S_all),
            f"median_{e}_months": np.stack(med_all),
            f"p_{e}_gt": np.stack(gt_all),
        }
        coords: dict[str, Any] = {
            "patient": list(labels),
            "t_months": tgrid,
            "t_prob": tp,
        }
        if tox_all:
            arrays["p_grade3plus"] = np.stack(tox_all)
            coords["cell_line"] = [*vocab.CELL_LINES, "any"]
        params = self._prior_parameter_rows(centre)
        _warn_prior(share_rows, params[0], n_pat, stacklevel=3)
        return Prediction(
            _labels=list(labels),
            _inputs=inputs,
            _summary=rows,
            _curve=curve_rows,
            _shares=share_rows,
            _parameters=params,
            interval=iv,
            endpoint=e,
            arrays=arrays,
            coords=coords,
            centre=centre,
            centre_note=self.centre_note(centre),
            family=self.family,
            laws=laws,
            chains=self.chains,
            tox_chains=self.tox_chains,
        )

    def _patient_components(
        self, th: Mapping[str, np.ndarray], b: _Batch, i: int, z_new: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patient ``i``'s survival law per draw of the centred draws ``th``: the shape
        (draws,), the scales (draws, components) and the component weights (components,)."""
        k, loglam, w = _survival_components(
            th,
            vocab.LINES[int(b.line[i])],
            self.endpoint,
            int(b.type[i]),
            b.lx[i],
            b.gq[i],
            z_new,
            b.coarse_weights,
            b.x_nodes if b.x_mix[i] else None,
        )
        return k, np.exp(np.stack(loglam, axis=1)), w

    def _patient_survival(
        self,
        th: Mapping[str, np.ndarray],
        b: _Batch,
        i: int,
        z_new: Sequence[np.ndarray],
        tgrid: np.ndarray | None,
        tp: np.ndarray,
        law: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Patient ``i``'s survival curve on ``tgrid`` (None: not computed), P(T > t) at
        ``tp`` and median, per draw of the centred draws ``th`` (or of the law ``law`` from
        :meth:`_patient_components`)."""
        fam = self.family
        k, lam, w = self._patient_components(th, b, i, z_new) if law is None else law
        surv = None
        if lam.shape[1] == 1:
            if tgrid is not None:
                surv = fam.sf(tgrid[None, :], k[:, None], lam)
            gt = fam.sf(tp[None, :], k[:, None], lam)
            med = fam.median(k, lam[:, 0])
        else:
            if tgrid is not None:
                surv = fam.mixture_sf(tgrid, k, lam, w)
            gt = fam.mixture_sf(tp, k, lam, w)
            med = fam.mixture_median(k, lam, w)
        return surv, gt, med

    # -- standardised (population-averaged) predictions ---------------------------------------
    def standardise(
        self,
        df: pd.DataFrame,
        *,
        weights: str | Sequence[float] | None = None,
        times: Sequence[float] | None = None,
        t_probs: Sequence[float] = DEFAULT_T_PROBS,
        rmst_tau: Sequence[float] = DEFAULT_RMST_TAU,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
        seed: int | None = 0,
        centre: str = "new",
        max_gb: float = PATIENTS_MAX_GB,
        prior_share: bool = True,
    ) -> StandardisedPrediction:
        r"""Population-averaged survival over a covariate mix: the standardised :math:`\bar
        S(t) = \sum_i \omega_i S_i(t)`, its median, P(T > t), RMST and (with a toxicity
        posterior) the averaged grade >= III risks.

        Per posterior draw, every patient's survival function is computed as
        :meth:`patients` computes it and the functions are averaged with the weights; the
        summaries are those of the averaged function (the median where :math:`\bar S = 1/2`,
        not the average of the patients' medians). This is multinma's aggregate-level
        prediction (``predict(level="aggregate")``) and flexsurv's ``standsurv``: the answer
        for "a cohort like this one", e.g. a trial population or a centre's case mix. Patients
        with identical covariates are evaluated once.

        Parameters
        ----------
        df : pandas.DataFrame
            The covariate mix, as for :meth:`patients` (same columns, missing cells and
            checks), one row per patient; any mix of lines and tumour types.
        weights : str or sequence of float, optional
            A column of ``df`` (e.g. patient counts of an aggregated table; not a patient
            field) or one non-negative number per row, normalised to sum to 1; default: equal
            weights.
        times : sequence of float, optional
            Time grid of the standardised curve, months (default :data:`DEFAULT_TIMES`).
        t_probs : sequence of float
            Times t of P(T > t), months (default 12 and 24).
        rmst_tau : sequence of float
            RMST horizons, months (default 24 and 60; empty: none).
        interval, new_type, seed, centre
            As in :meth:`patients` (the whole mix shares its centre's effect).
        max_gb : float
            Refuse a mix whose population law would take more than this many gigabytes (16
            bytes per draw and distinct patient component; default 1 GB, about 15,000
            distinct patients with the shipped posteriors).
        prior_share : bool
            Add each answer's prior share (``summary["prior_share"]``) and warn above 50%.
            It re-evaluates the mix once per prior-dominated parameter, several times the cost
            of the answers themselves (168 distinct R-PRRT patients with the shipped
            posteriors: about 4 s without, 17 s with, on a loaded 2-core machine); False skips
            it (the column is then NaN).

        Returns
        -------
        StandardisedPrediction
            Its :meth:`~StandardisedPrediction.survival`, ``hazard``, ``cumhaz``, ``rmst`` and
            ``quantile`` give any other summary of :math:`\bar S`.

        Raises
        ------
        ValueError
            A bad cell or argument (naming it, the value and what is allowed).

        Warns
        -----
        ExtrapolationWarning
            Patients of the mix lie outside the calibration data (one warning per kind).
        PriorDominatedWarning
            An answer's posterior variance comes mostly from prior-dominated parameters.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        omega = _standardise_weights(df, weights)
        if isinstance(weights, str):  # the weight column is not a patient field
            df = df.drop(columns=[weights])
        _check_frame(df)
        centre = self._check_centre(centre)
        iv = as_interval(interval)
        tgrid = DEFAULT_TIMES if times is None else _check_times("times", times)
        tp = _check_times("t_probs", t_probs)
        taus = _check_taus(rmst_tau)
        seed = _check_seed(seed)
        max_gb = _check_max_gb(max_gb)
        b = _validate(_table_records(df), list(df.index), new_type, self.endpoint, self.ranges)
        _warn(b, by_kind=True, stacklevel=2)
        z_new = _new_type_effects(b, seed, self.n_draws)
        # distinct survival laws (identical covariates evaluated once) and their total weight
        keys: dict[tuple[Any, ...], int] = {}
        first: list[int] = []
        wsum: list[float] = []
        for i in range(len(b.labels)):
            key = (int(b.line[i]), int(b.type[i]), float(b.lx[i]), float(b.gq[i]), bool(b.x_mix[i]))
            if key not in keys:
                keys[key] = len(first)
                first.append(i)
                wsum.append(0.0)
            wsum[keys[key]] += omega[i]
        n_comp = 0
        for i in first:
            n_comp += (
                1
                if int(b.type[i]) < len(vocab.TUMOUR_TYPES) or int(b.type[i]) >= _NEW_TYPE_BASE
                else len(b.coarse_weights[int(b.type[i]) - len(vocab.TUMOUR_TYPES)])
            )
        n_comp *= len(b.x_nodes) if b.x_mix.any() else 1
        need = 16 * self.n_draws * n_comp
        if need > max_gb * 1e9:
            raise ValueError(
                f"standardising {len(first)} distinct patients x {self.n_draws} draws would hold "
                f"about {_size(need)}, above max_gb={max_gb:g}; round continuous covariates "
                "(prior PFS, activities) so that more patients coincide, or a larger max_gb"
            )

        def population(th: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
            ks, lams, ws = [], [], []
            for i, wi in zip(first, wsum, strict=True):
                k, lam, w = self._patient_components(th, b, i, z_new)
                ks.append(np.broadcast_to(k[:, None], lam.shape))
                lams.append(lam)
                ws.append(wi * np.asarray(w, float))
            return np.concatenate(ks, axis=1), np.concatenate(lams, axis=1), np.concatenate(ws)

        fam = self.family
        e = self.endpoint

        def answers(law: tuple[np.ndarray, ...]) -> list[np.ndarray]:
            k = law[0]
            return [
                evaluate_law(fam, "quantile", np.array([0.5]), law)[:, 0],
                evaluate_law(fam, "survival", tp, law),
                evaluate_law(fam, "rmst", taus, law) if taus.size else np.zeros((len(k), 0)),
            ]

        law = population(self._centred_survival(centre))
        med, gt, rm = answers(law)
        curve_draws = evaluate_law(fam, "survival", tgrid, law)
        qs = [(f"median_{e}", np.nan, None, "months")]
        qs += [(f"p_{e}_gt", float(t), None, "probability") for t in tp]
        qs += [(f"rmst_{e}", float(t), None, "months") for t in taus]
        vals = [med, *gt.T, *rm.T]

        def stack(parts: list[np.ndarray]) -> np.ndarray:
            m, g, r = parts
            return np.vstack([sh.transform(m, "months"), sh.transform(g.T, "probability"),
                              sh.transform(r.T, "months")])  # fmt: skip

        def ev_s(d: Mapping[str, np.ndarray]) -> np.ndarray:
            return stack(answers(population(self._centred_survival(centre, d))))

        share_rows = []
        if prior_share:
            share_rows = _share_rows("population", qs, self._share_state("survival", centre),
                                     ev_s, stack([med, gt, rm]))  # fmt: skip
        risk = None
        tox = self._centred_toxicity(centre)
        if tox is not None:
            lines = [vocab.LINES[li] for li in b.line]

            def avg_risk(th: Mapping[str, np.ndarray]) -> np.ndarray:
                acc: dict[tuple[str, float, float], float] = {}
                for i, ln in enumerate(lines):
                    key = (ln, float(b.planned[i]), float(b.prior[i]))
                    acc[key] = acc.get(key, 0.0) + omega[i]
                return sum(w * _toxicity_risk(th, *key) for key, w in acc.items())

            risk = avg_risk(tox)
            qt = [("p_grade3plus", np.nan, cl, "probability")
                  for cl in (*vocab.CELL_LINES, "any")]  # fmt: skip
            qs += qt
            vals += list(risk.T)

            def ev_t(d: Mapping[str, np.ndarray]) -> np.ndarray:
                return sh.transform(avg_risk(self._centred_toxicity(centre, d)).T, "probability")

            if prior_share:
                share_rows += _share_rows("population", qt,
                                          self._share_state("toxicity", centre), ev_t,
                                          sh.transform(risk.T, "probability"))  # fmt: skip
        lo, hi = iv.columns
        rows = []
        for (q, t, cl, unit), v in zip(qs, vals, strict=True):
            _finite(q, v)
            rows.append({"quantity": q, "t_months": t, "cell_line": cl, "unit": unit,
                         **_describe(iv, v)})  # fmt: skip
        summary = pd.DataFrame(rows)
        summary["cell_line"] = summary["cell_line"].astype("string")
        shares = pd.DataFrame(share_rows)
        if not prior_share:
            summary["prior_share"] = np.nan
        else:
            summary["prior_share"] = shares["share"].to_numpy(float) if len(shares) else 0.0
        if len(shares):
            shares["cell_line"] = shares["cell_line"].astype("string")
            _warn_prior(share_rows, self._prior_parameter_rows(centre)[0], 1, stacklevel=2)
        desc = iv.describe(curve_draws, axis=0)
        curve = pd.DataFrame({"t_months": tgrid, "median": desc["median"], "mean": desc["mean"],
                              lo: desc[lo], hi: desc[hi]})  # fmt: skip
        pdf = pd.DataFrame(
            {
                "tumour_type": [b.tumour_type(i) for i in range(len(b.labels))],
                "line": [vocab.LINES[li] for li in b.line],
                "prior_pfs_months": b.prior_pfs,
                "prior_gbq": b.prior,
                "planned_gbq": b.planned,
                "weight": omega,
                "extrapolation": ["; ".join(notes) for notes in b.notes],
            },
            index=pd.Index(list(df.index), name="patient"),
        )
        return StandardisedPrediction(
            summary=summary,
            curve=curve,
            patients=pdf,
            n=len(b.labels),
            interval=iv,
            endpoint=e,
            family=fam,
            law=law,
            centre=centre,
            centre_note=self.centre_note(centre),
            risk_draws=risk,
            chains=self.chains,
        )

    # -- cohorts ---------------------------------------------------------------------------------
    def cohort(
        self,
        n: int,
        *,
        line: str = "R-PRRT",
        tumour_mix: Mapping[str, float] | None = None,
        prior_pfs_months: float | Sequence[float] | Literal["selected"] = "selected",
        prior_gbq: float | Sequence[float] | None = None,
        planned_gbq: float | Sequence[float] | None = None,
        n_sims: int = 2000,
        seed: int | None = 1,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
        centre: str = "new",
        max_gb: float = COHORT_MAX_GB,
    ) -> CohortPrediction:
        """Predict the Kaplan-Meier median of a cohort of ``n`` patients, with its predictive
        interval.

        For each of ``n_sims`` posterior draws, a cohort of ``n`` patients is simulated and its
        KM median taken (no censoring: the :math:`\\lceil n/2\\rceil`-th smallest time, as in
        the model's likelihood of a published median). This is the quantity a published table
        reports, so any published median can be compared with it.

        Parameters
        ----------
        n : int
            Cohort size (>= 1).
        line : str
            Treatment line of the cohort.
        tumour_mix : mapping of str to float, optional
            Tumour-type composition (counts or proportions; normalised). Coarse types are
            split by the Rotterdam mix. Default: the Rotterdam retreatment cohort of the line
            (RR-PRRT: its 13 patients; otherwise the 168 of I-PRRT/R-PRRT). Patients per type
            are fixed (largest-remainder rounding of ``n`` times the proportions).
        prior_pfs_months : "selected", float or sequence of float
            ``"selected"`` (default): drawn from the model's selected population (first-line
            PFS of the patient's type truncated at the 18-month threshold; for RR-PRRT the
            R-PRRT PFS truncated at 14 months; for 188Re-HEDP the pilot's interval law,
            :func:`netbayes.formulas.survival.re188_prior_pfs_nodes`), as in the calibration
            cohort. A number: every patient; a sequence: resampled with replacement. Ignored
            for I-PRRT.
        prior_gbq, planned_gbq : float or sequence of float
            Activities (GBq), a number for everyone or a sequence resampled with replacement.
            Default: the calibration cohort of the line (:func:`default_activities`): I-PRRT
            none before and the Rotterdam I-PRRT median in the line; R-PRRT the I-PRRT and
            R-PRRT phase medians; RR-PRRT the median cumulative activity after R-PRRT and the
            RR-PRRT phase median; 188Re-HEDP the pilot's median prior 177Lu and 188Re
            activities.
        n_sims : int
            Posterior draws used (evenly thinned).
        seed : int or None
            Seed of the simulation (an integer >= 0; None: fresh entropy).
        interval : Interval or float, optional
            Interval convention (default 95% equal-tailed).
        new_type : {"error", "population"}
            A type label outside the vocabulary in ``tumour_mix``: refuse, or draw its effect
            from the population per posterior draw.
        centre : str
            As in :meth:`patient`: the whole cohort shares its centre's effect, so a new
            centre's cohort median carries the between-centre spread.
        max_gb : float
            Refuse a simulation whose work arrays would peak above this many gigabytes
            (default :data:`COHORT_MAX_GB`, 4 GB: about 88 bytes per simulated cohort and
            patient, so n up to ~24,000 at the default 2000 simulations).

        Returns
        -------
        CohortPrediction

        Raises
        ------
        ValueError
            A bad argument (naming it, its value and what is allowed), or a simulation above
            ``max_gb`` (with the estimate).
        """
        iv = as_interval(interval)
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise _bad("n", n, "an integer >= 1 (patients in the cohort)")
        if isinstance(n_sims, (bool, np.bool_)) or not isinstance(n_sims, (int, np.integer)):
            raise _bad("n_sims", n_sims, "an integer >= 10")
        if n_sims < 10:
            raise _bad("n_sims", n_sims, "an integer >= 10")
        seed = _check_seed(seed)
        centre = self._check_centre(centre)
        n = int(n)
        max_gb = _check_max_gb(max_gb)
        n_cohorts = min(int(n_sims), self.n_draws)
        need = _COHORT_BYTES_PER_CELL * n_cohorts * n
        if need > max_gb * 1e9:
            raise ValueError(
                f"cohort(n={n}, n_sims={int(n_sims)}) would need about {_size(need)} of memory "
                f"({n_cohorts} simulated cohorts x {n} patients x ~{_COHORT_BYTES_PER_CELL} "
                f"bytes), above max_gb={max_gb:g}; reduce n_sims (the Monte Carlo error of the "
                "interval grows as 1/sqrt(n_sims)) or n (the KM median of a cohort of many "
                "thousands is the population median to within a fraction of a month)"
            )
        rng_c = self.ranges
        if not isinstance(line, str) or line.strip().lower() not in _LINES_CI:
            raise _bad("line", line, f"one of {', '.join(vocab.LINES)}")
        ln = _LINES_CI[line.strip().lower()]
        if tumour_mix is None:
            key = "RR-PRRT" if ln == "RR-PRRT" else "I-PRRT/R-PRRT"
            tumour_mix = rng_c["cohort_mix"][key]
        counts = self._type_counts(n, tumour_mix, new_type, rng_c)

        def values(name: str, v: Any) -> np.ndarray:
            arr = np.atleast_1d(np.asarray(v, dtype=object))
            out = np.array([_number(name, x) for x in arr], dtype=float)
            if out.size == 0:
                raise _bad(name, v, "a number or a non-empty sequence of numbers")
            return out

        ref = default_activities(ln)
        pg = values("prior_gbq", ref[0] if prior_gbq is None else prior_gbq)
        pl = values("planned_gbq", ref[1] if planned_gbq is None else planned_gbq)
        selected = isinstance(prior_pfs_months, str)
        if selected and prior_pfs_months != "selected":
            raise _bad("prior_pfs_months", prior_pfs_months, "'selected', a number or numbers")
        xs = None if selected else values("prior_pfs_months", prior_pfs_months)
        # validate representative records (ranges and extrapolation warnings, once each)
        notes: list[str] = []
        rep_x = F.X_REF if xs is None else float(np.min(xs))  # "selected": in range
        ls_c = spec.line_spec(ln)
        given_x = None if (ls_c.is_first or (xs is None and ls_c.selected_after is None)) else rep_x
        for a in {float(pg.min()), float(pg.max())}:
            for b in {float(pl.min()), float(pl.max())}:
                p = validate_patient(
                    tumour_type="midgut",
                    line=ln,
                    planned_gbq=b,
                    prior_gbq=a,
                    prior_pfs_months=given_x,  # 188Re-HEDP "selected": none given
                    endpoint=self.endpoint,
                    ranges=rng_c,
                )
                notes += [m for m in p.extrapolation if m not in notes]
        if not selected and not spec.line_spec(ln).is_first:
            p = validate_patient(
                tumour_type="midgut",
                line=ln,
                planned_gbq=float(pl[0]),
                prior_gbq=float(pg[0]),
                prior_pfs_months=float(np.max(xs)),
                endpoint=self.endpoint,
                ranges=rng_c,
            )
            notes += [m for m in p.extrapolation if m not in notes]
        notes += [
            f"tumour type {t!r} is new: drawn from the population"
            for t in counts
            if t not in vocab.TUMOUR_TYPES
        ]
        for note in notes:
            warnings.warn(
                f"the cohort prediction extrapolates: {note}", ExtrapolationWarning, stacklevel=2
            )
        fam = self.family
        S = self.n_draws
        sel = np.linspace(0, S - 1, min(n_sims, S)).astype(int)
        m = len(sel)
        e = self.endpoint
        # one seed for every run of the simulation: the prior share re-runs it on other
        # draws with the same random numbers (common random numbers)
        seed_c = np.random.SeedSequence().entropy if seed is None else seed

        def simulate(draws: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
            """The simulated cohorts' KM medians from (centred) posterior draws."""
            rng = np.random.default_rng(seed_c)
            th = {k: v[sel] for k, v in self._centred_survival(centre, draws).items()}
            # per-patient type columns: fine types index z; new types get population draws
            z2 = np.empty((m, n))
            z1 = np.empty((m, n))  # first-line PFS effects (prior PFS distribution)
            z1_end = np.empty((m, n))  # first-line effects of the endpoint (I-PRRT cohorts)
            col = 0
            for t, c in counts.items():
                if t in vocab.TUMOUR_TYPES:
                    j = vocab.TUMOUR_TYPES.index(t)
                    a2, a1, a1e = (
                        th["z2"][:, j],
                        th["z1"][:, j],
                        th[f"z1{'_os' if e == 'os' else ''}"][:, j],
                    )
                else:
                    a2, a1, a1e = (rng.standard_normal(m) for _ in range(3))
                    if e == "pfs":
                        a1e = a1
                z2[:, col : col + c] = a2[:, None]
                z1[:, col : col + c] = a1[:, None]
                z1_end[:, col : col + c] = a1e[:, None]
                col += c
            thr = rng_c["prior_pfs_min"]

            def draw(v: np.ndarray) -> np.ndarray:
                return (
                    v[rng.integers(0, v.size, size=(m, n))] if v.size > 1 else np.full((m, n), v[0])
                )

            # the draws as columns: one row per simulated cohort, one column per patient
            thc = {v: a[:, None] if a.ndim == 1 else a for v, a in th.items()}
            k = F.shape(thc, ln, e)
            ls = spec.line_spec(ln)
            if ls.is_first:
                (loglam,) = _log_scale(thc, ln, e, [z1_end], 0.0, 0.0)
            else:
                d = draw(pg) + (draw(pl) if ls.adds_lu177 else 0.0)
                if selected and not ls.adds_lu177:  # 188Re-HEDP: the pilot's interval law
                    nodes = np.asarray(F.re188_prior_pfs_nodes(*rng_c["re188_prior_pfs"]))
                    x = nodes[rng.integers(0, len(nodes), size=(m, n))]
                elif selected:
                    (loglam1,) = _log_scale(thc, "I-PRRT", "pfs", [z1], 0.0, 0.0)
                    k1 = F.shape(thc, "I-PRRT", "pfs")
                    x = fam.truncated_sample(rng, k1, np.exp(loglam1), thr["R-PRRT"], (m, n))
                    if ls.nested:
                        # the R-PRRT PFS given x, at the calibration's R-PRRT cumulative activity
                        cov_r = F.covariates(x, _gbq_r())
                        (loglam_r,) = _log_scale(thc, "R-PRRT", e, [z2], *cov_r)
                        x = fam.truncated_sample(rng, k, np.exp(loglam_r), thr["RR-PRRT"], (m, n))
                else:
                    assert xs is not None
                    x = draw(xs)
                (loglam,) = _log_scale(thc, ln, e, [z2], *F.covariates(x, d))
            lam = np.exp(loglam)
            t = fam.sample(rng, k, lam, (m, n))
            r = math.ceil(n / 2)
            km = np.partition(t, r - 1, axis=1)[:, r - 1]
            _finite("the cohort KM median", km)
            return km

        km = simulate()
        share, parts = self._cohort_share(centre, simulate, km)
        desc = _describe(iv, km)
        summary = pd.DataFrame(
            [
                {
                    "line": ln, "n": n, "quantity": f"km_median_{e}", "unit": "months", **desc,
                    "prior_share": share,
                }
            ]
        )  # fmt: skip
        return CohortPrediction(
            summary, km, counts, iv, centre, self.centre_note(centre), prior_share=share,
            prior_share_parameters=parts,
        )  # fmt: skip

    def _cohort_share(
        self, centre: str, simulate: Any, km: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        """The prior share of a cohort's KM median (log scale) and its per-parameter parts:
        the simulation re-run on the share's conditional draws with the same random numbers
        (``netbayes.predict.share``); a :class:`~netbayes.predict.share.PriorDominatedWarning`
        above :data:`~netbayes.predict.share.MOSTLY_PRIOR`. The variance is the predictive
        one (posterior and the sampling of a cohort of n), so the share is the part of the
        predictive variance that is prior."""
        state = self._share_state("survival", centre)
        if state is None:  # pragma: no cover - a survival posterior is always there
            return 0.0, {}

        def evaluate(d: Mapping[str, np.ndarray]) -> np.ndarray:
            return sh.transform(simulate(d), "months")[None, :]

        total, by = sh.shares(state[2], evaluate, sh.transform(km, "months")[None, :])
        share = float(total[0])
        parts = {k: float(v[0]) for k, v in by.items()}
        if share > sh.MOSTLY_PRIOR:
            elements = {el.label: el for el in state[0].elements}
            what = f"the cohort KM median {self.endpoint.upper()} (log scale)"
            warnings.warn(
                sh.warning_text(what, share, parts, elements), sh.PriorDominatedWarning,
                stacklevel=3,
            )  # fmt: skip
        return share, parts

    @staticmethod
    def _type_counts(
        n: int,
        mix: Mapping[str, float],
        new_type: Literal["error", "population"],
        ranges: Mapping[str, Any],
    ) -> dict[str, int]:
        if not isinstance(mix, Mapping) or not mix:
            raise _bad("tumour_mix", mix, "a non-empty mapping of tumour type to count/proportion")
        fine: dict[str, float] = {}
        weights = ranges["type_weights"]
        for t, v in mix.items():
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                raise _bad(f"tumour_mix[{t!r}]", v, "a count or proportion >= 0")
            if not math.isfinite(float(v)) or v < 0:
                raise _bad(f"tumour_mix[{t!r}]", v, "a count or proportion >= 0")
            if not isinstance(t, str):
                raise _bad("tumour_mix key", t, "a tumour type (string)")
            key = t.strip().lower()
            if key in vocab.TUMOUR_TYPES:
                fine[key] = fine.get(key, 0.0) + float(v)
            elif key in weights:
                for mem, w in weights[key].items():
                    fine[mem] = fine.get(mem, 0.0) + float(v) * w
            elif new_type == "population":
                fine[t.strip()] = fine.get(t.strip(), 0.0) + float(v)
            else:
                raise _bad(
                    "tumour_mix key",
                    t,
                    f"one of {', '.join(vocab.PATIENT_TUMOUR_TYPES)}; for a type the model has "
                    "not seen, pass new_type='population'",
                )
        tot = sum(fine.values())
        if tot <= 0:
            raise _bad("tumour_mix", dict(mix), "at least one positive count or proportion")
        return largest_remainder(n, fine)


def _check_quantiles(quantiles: Any) -> np.ndarray:
    """Quantile probabilities: strictly between 0 and 1 (an empty sequence: none)."""
    if isinstance(quantiles, (list, tuple, np.ndarray)) and len(quantiles) == 0:
        return np.zeros(0)
    if isinstance(quantiles, (str, bytes)):
        raise _bad("quantiles", quantiles, "probabilities strictly between 0 and 1")
    try:
        q = np.unique(np.atleast_1d(np.asarray(quantiles, dtype=float)))
    except (TypeError, ValueError):
        raise _bad("quantiles", quantiles, "probabilities strictly between 0 and 1") from None
    if q.ndim != 1 or not np.all((q > 0) & (q < 1)):
        raise _bad("quantiles", q.tolist(), "probabilities strictly between 0 and 1")
    return q


def _check_taus(rmst_tau: Any) -> np.ndarray:
    """RMST horizons: months > 0 (an empty sequence: none)."""
    if isinstance(rmst_tau, (list, tuple, np.ndarray)) and len(rmst_tau) == 0:
        return np.zeros(0)
    taus = _check_times("rmst_tau", rmst_tau)
    if np.any(taus <= 0):
        raise _bad("rmst_tau", taus.tolist(), "horizons after 0 (months > 0)")
    return taus


def _standardise_weights(df: pd.DataFrame, weights: Any) -> np.ndarray:
    """The weights of :meth:`Predictor.standardise`: equal, a column of ``df`` or one number
    per row; non-negative, finite, not all zero; normalised to sum to 1."""
    n = len(df)
    if n == 0:
        raise _bad("df", "an empty table", "at least one patient")
    if weights is None:
        return np.full(n, 1.0 / n)
    if isinstance(weights, str):
        if weights not in df.columns:
            raise _bad("weights", weights, f"a column of df ({', '.join(map(str, df.columns))}) "
                       "or one number per row")  # fmt: skip
        raw = df[weights].to_numpy(dtype=object)
    else:
        raw = np.asarray(list(weights), dtype=object)
    if raw.shape != (n,):
        raise _bad("weights", f"{raw.size} values", f"one per row of df ({n})")
    out = np.empty(n)
    for i, v in enumerate(raw):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise _bad("weights", v, "non-negative numbers")
        out[i] = float(v)
    if not np.all(np.isfinite(out)) or np.any(out < 0) or out.sum() <= 0:
        raise _bad("weights", list(out), "finite non-negative numbers, not all zero")
    return out / out.sum()


def _answer_name(quantity: str, t: float, cell_line: Any) -> str:
    """An answer in words for messages, e.g. ``"median_pfs"``, ``"p_pfs_gt(24 months)"``,
    ``"p_grade3plus(any)"``."""
    if quantity.startswith("p_") and quantity.endswith("_gt"):
        return f"{quantity}({t:g} months)"
    if quantity == "p_grade3plus":
        return f"{quantity}({cell_line})"
    return quantity


def _share_rows(
    patient: Any,
    quantities: Sequence[tuple[str, float, Any, str]],
    state: tuple[sh.Flat, str, dict[str, dict[str, np.ndarray]]] | None,
    evaluate: Any,
    base: np.ndarray,
) -> list[dict[str, Any]]:
    """The :attr:`Prediction.prior_share` rows of one patient's answers from one model."""
    if state is None:
        return []
    total, by = sh.shares(state[2], evaluate, base)
    return [
        {
            "patient": patient,
            "quantity": q,
            "t_months": t,
            "cell_line": cl,
            "scale": sh.SCALES[unit],
            "share": float(total[j]),
            "parameters": {k: float(v[j]) for k, v in by.items()},
        }
        for j, (q, t, cl, unit) in enumerate(quantities)
    ]


def _warn_prior(
    shares: Sequence[Mapping[str, Any]], params: Sequence[Mapping[str, Any]], n: int,
    stacklevel: int,
) -> None:  # fmt: skip
    """A :class:`~netbayes.predict.share.PriorDominatedWarning` per answer whose prior share
    is above :data:`~netbayes.predict.share.MOSTLY_PRIOR` (one patient), or per kind of answer
    with the number of patients and the first one's message (several). ``shares`` and
    ``params`` are the rows of :attr:`Prediction.prior_share` and
    :meth:`Predictor.prior_parameters`."""
    if not shares:
        return
    elements = {
        r["parameter"]: sh.ParameterElement(r["model"], r["parameter"], r["prior"], r["kind"],
                                            r["prior_sd"], r["posterior_sd"])
        for r in params
    }  # fmt: skip
    seen: dict[str, list[Any]] = {}
    for r in shares:
        if not r["share"] > sh.MOSTLY_PRIOR:
            continue
        what = _answer_name(r["quantity"], r["t_months"], r["cell_line"])
        model = "toxicity" if r["quantity"].startswith("p_grade3plus") else "survival"
        els = {k: v for k, v in elements.items() if v.model == model}
        msg = sh.warning_text(f"{what} ({r['scale']} scale)", r["share"], r["parameters"], els)
        if n == 1:
            warnings.warn(msg, sh.PriorDominatedWarning, stacklevel=stacklevel + 1)
        elif what in seen:
            seen[what][0] += 1
        else:
            seen[what] = [1, r["patient"], msg]
    for count, lab, msg in seen.values():
        who = f"{count} of {n} patients, e.g. patient {lab!r}" if count > 1 else f"patient {lab!r}"
        warnings.warn(f"{who}: {msg}", sh.PriorDominatedWarning, stacklevel=stacklevel + 1)


def _gbq_r() -> float:
    """Median cumulative activity after R-PRRT of the calibration patients (GBq)."""
    return calibration.survival_calibration("pfs").cumulative_gbq["R-PRRT"]


_PREDICTORS: dict[tuple[str, str], tuple[tuple[Any, ...], Predictor]] = {}
"""The loaded predictors of :func:`predict`, by (endpoint, folder), with the fingerprint of the
folder's files they were loaded from."""


def _fingerprint(folder: Path) -> tuple[Any, ...]:
    """What identifies the posteriors a models folder holds now: per card and posterior file
    its name, size, modification time (ns) and inode, and each card's SHA-256 (cards are small;
    a card rewritten within the clock's resolution still changes its hash)."""
    out: list[Any] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return ("unreadable", str(folder))
    for f in entries:
        if f.suffix not in (".json", ".nc"):
            continue
        try:
            st = f.stat()
        except OSError:
            continue
        item: tuple[Any, ...] = (f.name, st.st_size, st.st_mtime_ns, st.st_ino)
        if f.suffix == ".json":
            try:
                item += (hashlib.sha256(f.read_bytes()).hexdigest(),)
            except OSError:
                continue
        out.append(item)
    return tuple(out)


def _default_predictor(endpoint: str, folder: str | None) -> Predictor:
    """:meth:`Predictor.load` of ``(endpoint, folder)``, cached while the folder's cards and
    posterior files are unchanged: a refit, a replaced or an edited file loads (and checks)
    the posteriors again, so :func:`predict` never answers from a posterior that is gone."""
    from netbayes.store import models_dir

    base = Path(models_dir() if folder is None else folder)
    key = (endpoint, str(base.resolve()) if base.exists() else str(base))
    fp = _fingerprint(base)
    hit = _PREDICTORS.get(key)
    if hit is not None and hit[0] == fp:
        return hit[1]
    pred = Predictor.load(endpoint, folder)  # type: ignore[arg-type]
    _PREDICTORS[key] = (fp, pred)
    return pred


def predict(
    *,
    tumour_type: str,
    line: str,
    planned_gbq: float,
    prior_gbq: float = 0.0,
    prior_pfs_months: float | None = None,
    endpoint: Literal["pfs", "os"] = "pfs",
    folder: str | Path | None = None,
    **options: Any,
) -> Prediction:
    """Predict one patient from the stored posteriors (default: the shipped ones).

    A convenience wrapper of :meth:`Predictor.load` and :meth:`Predictor.patient`; the loaded
    posteriors are cached per endpoint and folder while the folder's files are unchanged (a
    refit or a replaced file is loaded and checked again);
    ``options`` are passed to the latter (``times``, ``t_probs``, ``interval``, ``new_type``,
    ``seed``, ``centre``).

    Returns
    -------
    Prediction
    """
    pred = _default_predictor(endpoint, None if folder is None else str(folder))
    return pred.patient(
        tumour_type=tumour_type,
        line=line,
        planned_gbq=planned_gbq,
        prior_gbq=prior_gbq,
        prior_pfs_months=prior_pfs_months,
        **options,
    )
