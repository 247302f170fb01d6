"""The posterior store: fitted posteriors saved as data (NetCDF + a JSON model card), never pickle.

A models folder holds one stored posterior per *model type* (:data:`MODEL_TYPES`), three files
each:

``<type>.<hash>.nc``
    The fit as an ArviZ-style ``xarray.DataTree``, NetCDF-4 (HDF5, written with h5netcdf):
    group ``posterior`` (the stored variables, dimensions ``chain``, ``draw`` and the model's own,
    e.g. ``tumour_type``) and, when the fit has them, ``sample_stats`` (``diverging``, ...),
    ``log_likelihood`` (pointwise, one value per individual patient row, only when the fit
    computed it), ``log_prior`` and ``prior`` (a fit with a user's patients: the parameters'
    log prior densities at the posterior draws, and draws from the priors; for
    ``arviz.psense``), ``observed_data`` and ``constant_data``. Open it with
    ``xarray.open_datatree(path)`` or ``arviz.from_netcdf(path)``
    (:meth:`StoredPosterior.open_datatree`). Note: ``observed_data`` / ``constant_data`` of a
    fit with your own patients hold those patients' rows; share the file accordingly.
``<type>.<hash>.draws.nc``
    The fast-read companion: the same ``posterior`` draws (float64, bit for bit) as one flat
    NetCDF-3 dataset, read by this module's own NumPy reader, so that ``netbayes predict``
    imports neither xarray nor an HDF5 library.
``<type>.json``
    The model card (below), written last.

``<hash>`` is the first 12 hexadecimal digits of the file's own SHA-256: a save writes new data
files next to the old ones and replaces the card last (each write to a temporary file in the
same folder, fsync, :func:`os.replace`), so an interrupted save leaves the previous posterior
loadable; the files the new card no longer names are removed afterwards.

The model card (JSON, no ``NaN``: a non-finite number is stored as ``null``):

``schema_version``
    :data:`SCHEMA_VERSION` of this store layout (version 1, the single NetCDF-3 file of
    netbayes before the DataTree store, is refused; :func:`convert_v1` converts it).
``model_type``, ``package_version``, ``created``
    What was fitted, by which netbayes, when (UTC, ISO 8601).
``model_config``
    The model's constructor settings as JSON (endpoint, priors, ``include_published``,
    ``n_grid``, ... for survival; priors, ``any_weight``, ``n_nodes``, ... for toxicity).
``priors``
    The priors as JSON.
``data_sha256``
    :func:`data_hash` of the packaged calibration CSVs at fit time.
``user_data_sha256``
    SHA-256 of the user's own patient rows the model was fitted with, ``null`` for a fit on
    the packaged data alone (the shipped defaults): a user fit is never mistaken for a default.
``sampler``
    ``sampler``, ``draws``, ``tune``, ``chains``, ``seed``, ``target_accept``.
``diagnostics``
    ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``seconds``,
    ``converged``, ``problems``; ``not_finite`` (present only when needed) lists the entries
    stored as ``null`` because they were not finite (e.g. the R-hat of a constant parameter).
``variables``
    The stored posterior variables and their dimensions.
``groups``
    The groups of the DataTree file.
``calibration``
    The input ranges the calibration data cover (selection thresholds, activity ranges, the
    coarse tumour-type weights), used for the extrapolation warnings
    (:func:`netbayes.calibration.calibrated_ranges`).
``datatree_file``, ``datatree_sha256``, ``draws_file``, ``draws_file_sha256``
    The two data files (names in the same folder) and their SHA-256.
``draws_sha256``
    Checksum of the draws themselves (float64, variables in name order): the same seed and data
    give the same ``draws_sha256``.
``card_sha256``
    SHA-256 of the card's own canonical JSON (sorted keys, no whitespace) without this field:
    an edited card (calibration ranges, diagnostics, ...) is refused.

:func:`load_posterior` checks the card and both files before anything is used: schema version,
card checksum, model type, data hash, calibration ranges and the files' checksums. A mismatched
or corrupt entry raises :class:`StoreError` saying what to do (regenerate with ``netbayes fit``,
or refit and save a fit of your own again).

A checksum proves only that nothing changed after the card was signed: anyone can recompute it.
So the content is checked too, when saving and when loading (a store written by hand with
consistent checksums is held to the same rules):

* every draw is finite and inside its variable's support and plausible range
  (:data:`netbayes.spec.PARAMETER_RANGES`, :func:`draws_problem`: positive shapes, scales and
  SDs; e.g. a survival log scale of 700, a median of ~1e303 months, is refused), naming the
  variable, the value, where it is and what is allowed;
* the diagnostics are finite numbers (``null`` only when listed in ``not_finite``), the sampler
  settings integers, and ``converged: true`` agrees with them (no divergences, R-hat <=
  :data:`~netbayes.spec.RHAT_MAX`, bulk ESS >= :data:`~netbayes.spec.ESS_MIN`);
* the calibration ranges of a posterior fitted on the packaged data (its data hash matches) are
  never wider than the ranges those data cover, and its tumour-type weights and cohort mix are
  theirs: widening them would silence the extrapolation warnings.

:func:`save_fit` (``FitResult.save(folder)``) stores any fit of
:class:`~netbayes.models.survival.SurvivalModel` / :class:`~netbayes.models.toxicity.ToxicityModel`
in a folder of your choice (the argument is always a folder; one folder holds at most one fit per
model type, e.g. a survival and a toxicity fit for ``Predictor.load(folder)``); an existing entry
is replaced only with ``overwrite=True``. Nothing is ever written into the installed package
(``netbayes/_models``).

The default folder (:func:`models_dir`) is ``$NETBAYES_MODELS_DIR`` if set, else the posteriors
shipped inside the installed package (``netbayes/_models``), else the source checkout's
``models/``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import reprlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netbayes import spec
from netbayes.calibration import check_calibration as _check_calibration

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from netbayes.fitting import FitResult

__all__ = [
    "MODEL_TYPES",
    "SCHEMA_VERSION",
    "NotConvergedError",
    "StoreError",
    "StoredPosterior",
    "card_hash",
    "convert_v1",
    "data_hash",
    "draws_problem",
    "load_posterior",
    "models_dir",
    "save_fit",
    "save_posterior",
    "write_atomic",
]

SCHEMA_VERSION = 2
"""Version of the store layout (files + model card); bump on any change."""

MODEL_TYPES: tuple[str, ...] = spec.MODEL_TYPES
"""The stored model types, also the stems of the files in a models folder."""

ENV_VAR = "NETBAYES_MODELS_DIR"
"""Environment variable naming a models folder to use instead of the shipped one."""

_ENGINE = "scipy"  # the companion: NetCDF-3 via SciPy, always available, deterministic
_TREE_ENGINE = "h5netcdf"  # the DataTree: NetCDF-4 groups (HDF5), deterministic bytes
_OPTIONAL_GROUPS = (
    "sample_stats",
    "log_likelihood",
    "log_prior",
    "prior",
    "observed_data",
    "constant_data",
)
"""DataTree groups copied from a fit when it has them (``posterior`` is always written)."""


class StoreError(ValueError):
    """A stored posterior is missing, corrupt, or does not match this netbayes and its data."""


class NotConvergedError(ValueError):
    """A fit missed the convergence targets, so it was not installed as a default posterior
    (:func:`fit_default` without ``allow_unconverged``)."""


def _fix(model_type: str, folder: Path | None = None) -> str:
    where = f" --out {folder}" if folder is not None else ""
    return (
        f"run `netbayes fit --model {model_type}{where}` to regenerate it (a fit of your own: "
        "refit it and save it again)"
    )


def _short(value: Any) -> str:
    """A repr of a card value, abbreviated (a corrupt card may hold anything)."""
    return reprlib.repr(value)


_NAME_MAX = 255
"""Longest file name, bytes (Linux, macOS; Windows: 255 characters)."""


def _is_file_name(name: Any) -> bool:
    """A plain file name: a string, no path separators or NUL, not ``.``/``..``, not too long."""
    if not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        return False
    try:
        return len(name.encode("utf-8")) <= _NAME_MAX
    except UnicodeEncodeError:  # a lone surrogate from JSON
        return False


def _check_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"model_type={model_type!r} is not allowed; expected one of {', '.join(MODEL_TYPES)}"
        )


def _package_models_dir() -> Path:
    """Where an installed wheel keeps the shipped posteriors (``netbayes/_models``)."""
    return Path(str(resources.files("netbayes"))) / "_models"


def models_dir() -> Path:
    """Return the folder of the default posteriors.

    ``$NETBAYES_MODELS_DIR`` if set; else the posteriors shipped in the installed package
    (``netbayes/_models``); else the source checkout's ``models/`` (editable install). The folder
    is returned even if it does not exist yet (``netbayes fit`` creates it).

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    packaged = _package_models_dir()
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "models"


def is_package_dir(folder: str | Path) -> bool:
    """True if ``folder`` is the installed package's own models folder (``netbayes/_models``).

    Parameters
    ----------
    folder : str or pathlib.Path

    Returns
    -------
    bool
    """
    try:
        return Path(folder).resolve() == _package_models_dir().resolve()
    except OSError:  # pragma: no cover - an unresolvable path is not the package
        return False


_PRIOR_ONLY_FILES = ("meta_analyses.csv",)
"""Data files no likelihood reads (they set external priors, recorded in the card's priors)."""


def _calibration_bytes(name: str, raw: bytes, prior_only_papers: set[bytes]) -> bytes:
    """The bytes of a data file that the fitted data consist of: ``sources.csv`` without the rows
    of the prior-only files, ``papers.csv`` without the papers only they cite."""
    lines = raw.splitlines(keepends=True)
    if name == "sources.csv":
        lines = [
            ln
            for ln in lines
            if not ln.startswith(tuple(f.encode() + b"," for f in _PRIOR_ONLY_FILES))
        ]
    elif name == "papers.csv":
        lines = [ln for ln in lines if ln.split(b",", 1)[0] not in prior_only_papers]
    return b"".join(lines)


def _prior_only_papers(sources: bytes) -> set[bytes]:
    rows = list(csv.reader(io.StringIO(sources.decode("utf-8"))))[1:]
    prior = {r[2] for r in rows if r and r[0] in _PRIOR_ONLY_FILES}
    fitted = {r[2] for r in rows if r and r[0] not in _PRIOR_ONLY_FILES}
    return {p.encode() for p in prior - fitted}


def data_hash() -> str:
    """SHA-256 over the packaged calibration CSV files (names and contents, sorted by name).

    Line endings are normalised to ``\\n`` so that a checkout with Windows line endings hashes
    the same. Data that only set external priors (``meta_analyses.csv``, its provenance rows in
    ``sources.csv`` and the papers only they cite) are left out: no model is fitted to them (the
    priors they set are in the card's priors), so adding them keeps saved posteriors valid.

    Returns
    -------
    str
        Hexadecimal digest.
    """
    from netbayes.data import data_dir

    files = {p.name: p.read_bytes().replace(b"\r\n", b"\n") for p in data_dir().glob("*.csv")}
    prior_papers = _prior_only_papers(files.get("sources.csv", b""))
    h = hashlib.sha256()
    for name in sorted(files):
        if name in _PRIOR_ONLY_FILES:
            continue
        h.update(name.encode() + b"\0")
        h.update(_calibration_bytes(name, files[name], prior_papers) + b"\0")
    return h.hexdigest()


def _draws_hash(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name], dtype="<f8"))
        h.update(name.encode() + b"\0" + str(a.shape).encode() + b"\0" + a.tobytes())
    return h.hexdigest()


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _canonical(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, ASCII, no NaN or infinity."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def card_hash(card: Mapping[str, Any]) -> str:
    """SHA-256 of a model card's canonical JSON without its ``card_sha256`` field.

    Parameters
    ----------
    card : mapping
        The card as read from JSON.

    Returns
    -------
    str
        Hexadecimal digest (the card's ``card_sha256`` when it is unmodified).

    Raises
    ------
    ValueError
        The card holds a value JSON cannot carry (NaN, infinity).
    """
    return _sha256(_canonical({k: v for k, v in card.items() if k != "card_sha256"}))


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)  # "inf", "-inf", "nan": a prior may be unbounded
    return x


@dataclass(frozen=True)
class StoredPosterior:
    """A loaded (and verified) posterior: plain draws plus its model card.

    Attributes
    ----------
    model_type : str
        One of :data:`MODEL_TYPES`.
    card : dict
        The model card (see the module docstring).
    arrays : dict of str to numpy.ndarray
        Draws per variable, shape ``(chain, draw, ...)``.
    dims : dict of str to tuple of str
        Dimension names per variable.
    coords : dict of str to list
        Coordinate labels of the non-sample dimensions (e.g. ``tumour_type``).
    path : pathlib.Path or None
        The fast-read draws file they came from.
    datatree_path : pathlib.Path or None
        The DataTree file (NetCDF-4) of the same posterior, checked against its card.
    """

    model_type: str
    card: dict[str, Any]
    arrays: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    coords: dict[str, list[Any]] = field(default_factory=dict)
    path: Path | None = None
    datatree_path: Path | None = None

    def draws(self, var: str) -> np.ndarray:
        """Draws of ``var`` with chains stacked first, shape ``(chains * draws, ...)``."""
        if var not in self.arrays:
            raise KeyError(
                f"{var!r} is not stored in the {self.model_type} posterior; stored: "
                f"{', '.join(sorted(self.arrays))}"
            )
        a = self.arrays[var]
        return a.reshape((-1, *a.shape[2:]))

    def all_draws(self) -> dict[str, np.ndarray]:
        """Every stored variable's draws (see :meth:`draws`)."""
        return {v: self.draws(v) for v in self.arrays}

    @cached_property
    def posterior(self) -> xr.Dataset:
        """The draws as an ``xarray.Dataset`` (dimensions ``chain``, ``draw``, ...)."""
        import xarray as xr

        coords = {k: v for k, v in self.coords.items()}
        return xr.Dataset(
            {k: (self.dims[k], v) for k, v in self.arrays.items()},
            coords=coords,
            attrs={"model_type": self.model_type},
        )

    def open_datatree(self) -> xr.DataTree:
        """The stored DataTree (all groups), loaded into memory (the file is closed).

        Returns
        -------
        xarray.DataTree
            As ``arviz.from_netcdf(self.datatree_path)`` returns it.

        Raises
        ------
        StoreError
            The file no longer matches its card's checksum.
        """
        import io

        import xarray as xr

        if self.datatree_path is None:
            raise ValueError(f"this {self.model_type} posterior was not loaded from a file")
        raw = self.datatree_path.read_bytes()
        if _sha256(raw) != self.card.get("datatree_sha256"):
            raise StoreError(
                f"{self.datatree_path} is corrupt or was modified: its SHA-256 does not match "
                f"the model card's datatree_sha256; {_fix(self.model_type)}"
            )
        with xr.open_datatree(io.BytesIO(raw), engine=_TREE_ENGINE) as tree:
            return tree.load()

    @property
    def n_draws(self) -> int:
        """Total number of draws (chains times draws per chain)."""
        a = next(iter(self.arrays.values()))
        return int(a.shape[0] * a.shape[1])


# ----------------------------------------------------------------------------------------------
# what a stored posterior may hold: draws in their support, card numbers finite and consistent
# ----------------------------------------------------------------------------------------------
def draws_problem(name: str, a: np.ndarray) -> str | None:
    """Why the draws of one variable cannot be a posterior, or None when they can.

    Every draw must be finite and, for the variables of :data:`netbayes.spec.PARAMETER_RANGES`,
    inside the variable's support (positive shapes, scales and SDs, ...) and its plausible range
    (e.g. a survival log scale of 700, a median of ~1e303 months, is refused).

    Parameters
    ----------
    name : str
        The variable's name.
    a : numpy.ndarray
        Its draws, shape ``(chain, draw, ...)``.

    Returns
    -------
    str or None
        A sentence naming the variable, the first offending value, where it is and what is
        allowed.
    """
    a = np.asarray(a, dtype=float)
    spec_ = spec.parameter_range(name)

    def where(mask: np.ndarray) -> str:
        idx = np.unravel_index(int(np.argmax(mask)), a.shape)
        v = float(a[idx])
        at = ", ".join(
            f"{d} {i}" for d, i in zip(("chain", "draw", "index", "index"), idx, strict=False)
        )
        return f"{v!r} at {at} ({int(mask.sum())} of {a.size} draws)"

    bad = ~np.isfinite(a)
    if bad.any():
        allowed = spec_.allowed(name) if spec_ is not None else "finite numbers"
        return f"variable {name!r} has non-finite draws: {where(bad)}; allowed: {allowed}"
    if spec_ is None:
        return None
    lo_bad = a <= spec_.lower if spec_.open_lower else a < spec_.lower
    hi_bad = a >= spec_.upper if spec_.open_upper else a > spec_.upper
    bad = lo_bad | hi_bad
    if bad.any():
        return (
            f"variable {name!r} ({spec_.meaning}) has a draw outside its support, "
            f"{where(bad)}; allowed: {spec_.allowed(name)}"
        )
    bad = (a < spec_.plausible[0]) | (a > spec_.plausible[1])
    if bad.any():
        return (
            f"variable {name!r} ({spec_.meaning}) has an implausible draw, {where(bad)}; "
            f"allowed: {spec_.allowed(name)} (a value beyond that comes from a corrupt or "
            "hand-written store or a fit gone wrong)"
        )
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_card_numbers(card: Mapping[str, Any]) -> None:
    """The card's diagnostics and sampler settings: finite numbers of the right kind, and a
    ``converged: true`` that agrees with them (ValueError naming the field otherwise)."""
    from netbayes.spec import ESS_MIN, RHAT_MAX

    diag = card.get("diagnostics")
    if not isinstance(diag, Mapping):
        raise ValueError(
            f"diagnostics={_short(diag)} is not allowed; expected a mapping (max_r_hat, "
            "min_ess_bulk, min_ess_tail, divergences, seconds, converged, problems)"
        )
    not_finite = diag.get("not_finite", [])
    if not isinstance(not_finite, list):
        raise ValueError(f"diagnostics.not_finite={_short(not_finite)} is not allowed; "
                         "expected a list of the diagnostics stored as null")  # fmt: skip
    for k in _DIAG_NUMBERS:
        v = diag.get(k)
        if v is None and (k not in diag or k in not_finite):
            continue
        if not _is_number(v) or v < 0:
            raise ValueError(
                f"diagnostics.{k}={_short(v)} is not allowed; expected a finite number >= 0 "
                "(null only when listed in diagnostics.not_finite)"
            )
    div = diag.get("divergences", 0)
    if type(div) is not int or div < 0:
        raise ValueError(f"diagnostics.divergences={_short(div)} is not allowed; expected an "
                         "integer >= 0")  # fmt: skip
    secs = diag.get("seconds", {})
    if not isinstance(secs, Mapping) or not all(
        v is None or (_is_number(v) and v >= 0) for v in secs.values()
    ):
        raise ValueError(f"diagnostics.seconds={_short(secs)} is not allowed; expected a "
                         "mapping of finite numbers >= 0")  # fmt: skip
    conv = diag.get("converged")
    if not isinstance(conv, bool):
        raise ValueError(f"diagnostics.converged={_short(conv)} is not allowed; expected true "
                         "or false")  # fmt: skip
    if conv:
        r, ess = diag.get("max_r_hat"), diag.get("min_ess_bulk")
        why = [
            f"divergences={div} > 0" if div > 0 else "",
            f"max_r_hat={r!r} > {RHAT_MAX}" if _is_number(r) and r > RHAT_MAX else "",
            f"min_ess_bulk={ess!r} < {ESS_MIN}" if _is_number(ess) and ess < ESS_MIN else "",
        ]
        why = [w for w in why if w]
        if why:
            raise ValueError(
                f"diagnostics.converged=true is not allowed with {', '.join(why)}: a fit is "
                f"converged only with no divergences, R-hat <= {RHAT_MAX} and bulk ESS >= "
                f"{ESS_MIN}"
            )
    sampler = card.get("sampler")
    if isinstance(sampler, Mapping):
        for k, least in (("draws", 1), ("tune", 0), ("chains", 1), ("seed", 0)):
            v = sampler.get(k)
            if k in sampler and (type(v) is not int or v < least):
                raise ValueError(f"sampler.{k}={_short(v)} is not allowed; expected an integer "
                                 f">= {least}")  # fmt: skip
        ta = sampler.get("target_accept")
        if "target_accept" in sampler and not (_is_number(ta) and 0 < ta < 1):
            raise ValueError(f"sampler.target_accept={_short(ta)} is not allowed; expected a "
                             "number strictly between 0 and 1")  # fmt: skip


_RANGE_KEYS = ("cumulative_gbq", "re188_prior_gbq")


def _check_ranges_against_data(cal: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    """A card's calibrated ranges may be narrower than the packaged data's, never wider, and its
    tumour-type weights and cohort mix are the data's (ValueError naming the entry otherwise):
    a re-signed card with widened ranges would silence the extrapolation warnings."""

    def wider(where: str, got: Any, have: Sequence[float]) -> ValueError:
        return ValueError(
            f"calibration{where}={_short(got)} is not allowed: wider than the calibration data "
            f"the posterior was fitted on cover ({list(have)}); expected a range inside it"
        )

    for line, thr in data["prior_pfs_min"].items():
        got = cal["prior_pfs_min"].get(line)
        if got is not None and got < thr:
            raise ValueError(
                f"calibration['prior_pfs_min'][{line!r}]={_short(got)} is not allowed: below the "
                f"calibration data's selection threshold {thr:g} months; expected >= {thr:g}"
            )
    pairs = [(f"['planned_gbq'][{k!r}]", cal["planned_gbq"][k], v)
             for k, v in data["planned_gbq"].items() if k in cal["planned_gbq"]]  # fmt: skip
    pairs += [(f"[{k!r}]", cal[k], data[k]) for k in _RANGE_KEYS]
    for where, got, have in pairs:
        if got[0] < have[0] - 1e-9 or got[1] > have[1] + 1e-9:
            raise wider(where, got, have)
    if "re188_prior_pfs" in cal and "re188_prior_pfs" in data:
        got, want = [float(x) for x in cal["re188_prior_pfs"]], list(data["re188_prior_pfs"])
        if not all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(got, want, strict=True)):
            raise ValueError(
                f"calibration['re188_prior_pfs']={_short(got)} is not allowed: the calibration "
                f"data give {want}"
            )
    for key in ("type_weights", "cohort_mix"):
        for group, want in data[key].items():
            got = cal[key].get(group, {})
            if set(got) != set(want) or any(
                not math.isclose(got[k], want[k], rel_tol=1e-9, abs_tol=1e-12) for k in want
            ):
                raise ValueError(
                    f"calibration[{key!r}][{group!r}]={_short(got)} is not allowed: the "
                    f"calibration data give {_short(dict(want))}"
                )


# ----------------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------------
_DIAG_NUMBERS = ("max_r_hat", "min_ess_bulk", "min_ess_tail")


def _finite_diagnostics(diag: Mapping[str, Any]) -> dict[str, Any]:
    """Diagnostics with each non-finite number (NaN, infinity) as ``None``, listed in
    ``not_finite``: JSON has no NaN, and the card must say why a value is missing."""
    out = dict(diag)
    bad = [str(k) for k in diag.get("not_finite", []) or []]
    for k in _DIAG_NUMBERS:
        v = out.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(v):
            out[k] = None
            bad.append(k)
    secs = out.get("seconds")
    if isinstance(secs, Mapping):
        out["seconds"] = {}
        for k, v in secs.items():
            if isinstance(v, (int, float)) and not math.isfinite(v):
                bad.append(f"seconds.{k}")
                v = None
            out["seconds"][k] = v
    out.pop("not_finite", None)
    if bad:  # only when there are some (a card without it has every number finite)
        out["not_finite"] = list(dict.fromkeys(bad))
    return out


def _diagnostics_summary(fit: FitResult) -> dict[str, Any]:
    d = fit.diagnostics
    return _finite_diagnostics(
        {
            "max_r_hat": float(d["r_hat"].max()),
            "min_ess_bulk": float(d["ess_bulk"].min()),
            "min_ess_tail": float(d["ess_tail"].min()),
            "divergences": int(fit.n_divergences),
            "seconds": {k: round(float(v), 2) for k, v in fit.seconds.items()},
            "converged": bool(fit.converged),
            "problems": list(fit.problems),
        }
    )


def _posterior_dataset(post: xr.Dataset, variables: Sequence[str], model_type: str) -> xr.Dataset:
    """The stored variables as float64, chain/draw numbered, other coordinates dropped."""
    missing = [v for v in variables if v not in post]
    if missing:
        raise ValueError(
            f"variables {missing} are not in the posterior; available: {', '.join(post)}"
        )
    ds = post[list(variables)].astype("float64")
    for v in ds.data_vars:
        why = draws_problem(str(v), ds[v].transpose("chain", "draw", ...).to_numpy())
        if why is not None:
            raise ValueError(
                f"{why}; a posterior with such draws cannot be stored, and prediction would "
                "refuse it: check the fit"
            )
    ds = ds.drop_vars([c for c in ds.coords if c not in ds.dims])
    ds = ds.assign_coords(
        chain=np.arange(ds.sizes["chain"], dtype="int32"),
        draw=np.arange(ds.sizes["draw"], dtype="int32"),
    )
    ds.attrs = {"model_type": model_type, "schema_version": SCHEMA_VERSION}
    return ds


def _plain_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes NetCDF can hold (strings, numbers, booleans as integers)."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, (bool, np.bool_)):
            out[str(k)] = int(v)
        elif isinstance(v, (str, int, float, np.number)):
            out[str(k)] = v
    return out


def _group(ds: xr.Dataset) -> xr.Dataset:
    """A copy of a fit's group NetCDF-4 can hold: plain variable attributes, no object-typed
    values, no group attributes (a sampler's ``created_at`` or timing would make the same draws
    give different files; the card keeps the timings)."""
    ds = ds.copy()
    keep = [v for v in ds.data_vars if ds[v].dtype.kind in "biufcSU"]
    ds = ds[keep]
    ds.attrs = {}
    for v in ds.variables:
        ds[v].attrs = _plain_attrs(ds[v].attrs)
    return ds


def _datatree_bytes(ds: xr.Dataset, tree: xr.DataTree | None, model_type: str) -> tuple:
    """The DataTree file's bytes and its group names."""
    import xarray as xr

    groups: dict[str, xr.Dataset] = {"posterior": ds}
    if tree is not None:
        for g in _OPTIONAL_GROUPS:
            if g in tree.children:
                part = _group(tree[g].to_dataset())
                if part.data_vars:
                    groups[g] = part
    out = xr.DataTree.from_dict(groups)
    out.attrs = {"model_type": model_type, "schema_version": SCHEMA_VERSION}
    raw = bytes(out.to_netcdf(engine=_TREE_ENGINE))  # NetCDF-4 (HDF5), in memory
    return raw, list(groups)


def _umask() -> int:
    """The process's file-mode creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync,
    :func:`os.replace` (a reader sees the old file or the new one, never a partial one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes it private (0600): the usual mode instead
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary file in the same folder, fsync,
    :func:`os.replace`): a reader, or a later run after an interruption, sees the old file or the
    new one, never a partial one, and no temporary file is left behind.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write; its folder must exist.
    data : bytes
        The whole content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    p = Path(path)
    _write_atomic(p, data)
    return p


def _fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _data_file_pattern(model_type: str) -> re.Pattern[str]:
    """Names of this model type's data files: ``<type>.<12 hex>.nc`` / ``.draws.nc``, and the
    schema-1 ``<type>.nc``."""
    return re.compile(rf"{re.escape(model_type)}(\.[0-9a-f]{{12}}(\.draws)?)?\.nc")


def _check_destination(out: Path, model_type: str, overwrite: bool) -> None:
    if is_package_dir(out):
        raise ValueError(
            f"folder={str(out)!r} is not allowed: it is the installed package's models folder "
            "(netbayes/_models), which is never written to; save to a folder of your own "
            "(`netbayes fit --out DIR`, `fit.save(DIR)`)"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"folder={str(out)!r} is not allowed: it is a file; a posterior is saved into a "
            "folder (it holds <model type>.json and its data files)"
        )
    card = out / f"{model_type}.json"
    if not overwrite and card.exists():
        raise FileExistsError(
            f"{card} exists: a {model_type} posterior is already saved in {out}; pass "
            "overwrite=True to replace it, or save into another folder"
        )


def _write_entry(
    out: Path,
    model_type: str,
    ds: xr.Dataset,
    tree: xr.DataTree | None,
    card: dict[str, Any],
    *,
    overwrite: bool,
) -> Path:
    """Write the data files, then the card (last), then remove the files it no longer names."""
    _check_destination(out, model_type, overwrite)
    companion = bytes(ds.to_netcdf(engine=_ENGINE))  # NetCDF-3, 64-bit offset
    tree_raw, groups = _datatree_bytes(ds, tree, model_type)
    arrays = {v: ds[v].to_numpy() for v in ds.data_vars}
    t_sha, d_sha = _sha256(tree_raw), _sha256(companion)
    t_name, d_name = f"{model_type}.{t_sha[:12]}.nc", f"{model_type}.{d_sha[:12]}.draws.nc"
    card = dict(card)
    card.update(
        variables={v: list(ds[v].dims) for v in ds.data_vars},
        groups=groups,
        datatree_file=t_name,
        datatree_sha256=t_sha,
        draws_file=d_name,
        draws_file_sha256=d_sha,
        draws_sha256=_draws_hash(arrays),
    )
    card.pop("card_sha256", None)
    card["card_sha256"] = card_hash(card)
    text = json.dumps(card, indent=2, allow_nan=False) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / t_name, tree_raw)
    _write_atomic(out / d_name, companion)
    _fsync_dir(out)
    _write_atomic(out / f"{model_type}.json", text.encode("utf-8"))
    _fsync_dir(out)
    pattern = _data_file_pattern(model_type)
    for old in out.iterdir():
        if old.name not in (t_name, d_name) and pattern.fullmatch(old.name):
            old.unlink(missing_ok=True)
    return out / t_name


def save_posterior(
    fit: FitResult,
    model_type: str,
    *,
    variables: Sequence[str],
    priors: Any,
    sampler_settings: Mapping[str, Any],
    folder: str | Path | None = None,
    calibration: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    user_data_sha256: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a fit's posterior in ``folder``: DataTree file, fast-read draws file, model card.

    Parameters
    ----------
    fit : netbayes.fitting.FitResult
        The fit (its ``posterior`` DataTree must have a ``posterior`` group; its
        ``sample_stats``, ``log_likelihood``, ``log_prior``, ``prior``, ``observed_data`` and
        ``constant_data`` groups are stored too when present).
    model_type : str
        One of :data:`MODEL_TYPES`.
    variables : sequence of str
        Posterior variables to store (those prediction needs plus the top-level parameters).
    priors : JSON-compatible object
        The priors used (dicts, lists, numbers, strings).
    sampler_settings : mapping
        ``sampler``, ``draws``, ``tune``, ``chains``, ``seed``, ``target_accept``.
    folder : str or pathlib.Path, optional
        Destination folder (default :func:`models_dir`); created if needed. Never the installed
        package's ``netbayes/_models``.
    calibration : mapping, optional
        The calibrated input ranges of the data
        (:func:`netbayes.calibration.calibrated_ranges`), kept in the card so that predictions
        need not re-read the data tables.
    model_config : mapping, optional
        The model's settings (the card's ``model_config``).
    user_data_sha256 : str, optional
        Hash of the user's own data the model was fitted with (None: the packaged data alone).
    overwrite : bool
        Replace a posterior of this model type already saved in ``folder`` (default False).

    Returns
    -------
    pathlib.Path
        The DataTree file written (``<folder>/<model_type>.<hash>.nc``); the card is
        ``<folder>/<model_type>.json``.

    Raises
    ------
    ValueError
        A variable is missing or has non-finite draws, a setting is missing, or ``folder`` is
        a file or the installed package's models folder.
    FileExistsError
        A posterior of this model type is saved in ``folder`` and ``overwrite`` is False.
    """
    from netbayes._version import __version__

    _check_type(model_type)
    missing_settings = {"sampler", "draws", "tune", "chains", "seed", "target_accept"} - set(
        sampler_settings
    )
    if missing_settings:
        raise ValueError(f"sampler_settings is missing {sorted(missing_settings)}")
    ds = _posterior_dataset(fit.posterior["posterior"].dataset, variables, model_type)
    out = Path(folder) if folder is not None else models_dir()
    _check_destination(out, model_type, overwrite)
    card = {
        "schema_version": SCHEMA_VERSION,
        "model_type": model_type,
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "model_config": None if model_config is None else _jsonable(model_config),
        "priors": _jsonable(priors),
        "data_sha256": data_hash(),
        "user_data_sha256": user_data_sha256,
        "sampler": _jsonable(dict(sampler_settings)),
        "diagnostics": _diagnostics_summary(fit),
        "calibration": None if calibration is None else _jsonable(calibration),
    }
    return _write_entry(out, model_type, ds, fit.posterior, card, overwrite=overwrite)


def save_fit(
    fit: FitResult,
    folder: str | Path,
    *,
    overwrite: bool = False,
    calibration: Mapping[str, Any] | None = None,
) -> Path:
    """Save any fit of a netbayes model (``FitResult.save``), the user's own included.

    The fit knows its model (``fit.model_info``, set by ``SurvivalModel.fit`` and
    ``ToxicityModel.fit``): its model type, configuration, priors, the variables to store and
    the hash of the user's data. ``Predictor.load(folder)`` predicts from it.

    Parameters
    ----------
    fit : netbayes.fitting.FitResult
        A fit returned by ``SurvivalModel(...).fit()`` or ``ToxicityModel(...).fit()``. A fit
        that did not converge is saved with ``converged: false`` in its card (and
        :class:`~netbayes.predict.Predictor` warns when predicting from it).
    folder : str or pathlib.Path
        A folder (created if needed), holding at most one fit per model type: the files are
        ``<model_type>.json`` and its data files (see the module docstring).
    overwrite : bool
        Replace a fit of the same model type already saved there (default False).
    calibration : mapping, optional
        The calibrated input ranges (default: :func:`netbayes.calibration.calibrated_ranges` of
        the packaged data).

    Returns
    -------
    pathlib.Path
        The DataTree file written (opens with ``arviz.from_netcdf``).

    Raises
    ------
    ValueError
        The fit does not know its model, or ``folder`` is not allowed.
    FileExistsError
        A fit of this model type is already saved in ``folder`` and ``overwrite`` is False.
    """
    info = getattr(fit, "model_info", None)
    if not isinstance(info, Mapping) or info.get("model_type") not in MODEL_TYPES:
        raise ValueError(
            f"fit.model_info={_short(info)} is not allowed; expected the model description set "
            "by SurvivalModel(...).fit() or ToxicityModel(...).fit() (model_type, config, "
            "priors, variables, user_data_sha256); to store plain draws use "
            "netbayes.store.save_posterior"
        )
    if calibration is None:
        from netbayes.calibration import calibrated_ranges

        calibration = calibrated_ranges()
    settings = dict(fit.settings)
    settings["sampler"] = fit.sampler
    return save_posterior(
        fit,
        info["model_type"],
        variables=list(info["variables"]),
        priors=info.get("priors"),
        sampler_settings=settings,
        folder=Path(folder),
        calibration=calibration,
        model_config=info.get("config"),
        user_data_sha256=info.get("user_data_sha256"),
        overwrite=overwrite,
    )


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
_NC_TYPES = {1: ">i1", 2: "S1", 3: ">i2", 4: ">i4", 5: ">f4", 6: ">f8"}
"""NetCDF-3 external types (all big-endian): byte, char, short, int, float, double."""


class _Header:
    """Sequential reader of a NetCDF-3 header (the classic format specification).

    Nothing in the header is trusted: every read stays inside the file, and every count is
    bounded by the bytes left (each element takes at least its smallest encoding), so a corrupt
    header fails at once instead of looping over billions of phantom elements.
    """

    def __init__(self, raw: bytes) -> None:
        if len(raw) < 4 or raw[:3] != b"CDF" or raw[3] not in (1, 2):
            raise ValueError("not a NetCDF-3 file (no CDF magic number)")
        self.raw, self.pos, self.offset_size = raw, 4, 4 if raw[3] == 1 else 8

    @property
    def left(self) -> int:
        """Bytes after the read position."""
        return len(self.raw) - self.pos

    def int(self, size: int = 4) -> int:
        if size > self.left:
            raise ValueError("the header runs past the end of the file")
        v = int.from_bytes(self.raw[self.pos : self.pos + size], "big", signed=False)
        self.pos += size
        return v

    def count(self, what: str, min_bytes: int) -> int:
        """A count of elements taking at least ``min_bytes`` each, bounded by the bytes left."""
        n = self.int()
        if n * min_bytes > self.left:
            raise ValueError(
                f"corrupt header: {n} {what} cannot fit in the {self.left} bytes left in the file"
            )
        return n

    def name(self) -> str:
        n = self.count("name bytes", 1)
        s = self.raw[self.pos : self.pos + n].decode("utf-8")
        self.pos += n + (-n % 4)
        return s

    def values(self, nc_type: int, n: int) -> np.ndarray:
        if nc_type not in _NC_TYPES:
            raise ValueError(f"unknown NetCDF type {nc_type}")
        dt = np.dtype(_NC_TYPES[nc_type])
        if n * dt.itemsize > self.left:
            raise ValueError("corrupt header: attribute values run past the end of the file")
        a = np.frombuffer(self.raw, dt, count=n, offset=self.pos)
        self.pos += n * dt.itemsize + (-(n * dt.itemsize) % 4)
        return a

    def attributes(self) -> None:
        tag = self.int()
        n = self.count("attributes", 12)  # name length, type, number of values
        if tag not in (0, 0x0C):
            raise ValueError(f"bad attribute list tag {tag}")
        for _ in range(n):
            self.name()
            t = self.int()
            self.values(t, self.int())


def _read_netcdf(raw: bytes) -> tuple[dict, dict, dict]:
    """Variables, dims and string coordinates of a NetCDF-3 file.

    A small reader of the classic/64-bit-offset format (enough for what :func:`save_posterior`
    writes: fixed-size variables, no record dimension), so that loading a posterior imports
    neither xarray nor SciPy's I/O package (CLI start-up time).
    """
    h = _Header(raw)
    if h.int() != 0:
        raise ValueError("record variables are not supported")
    tag = h.int()
    n = h.count("dimensions", 8)  # name length, dimension length
    if tag not in (0, 0x0A):
        raise ValueError(f"bad dimension list tag {tag}")
    dim_names, dim_len = [], []
    for _ in range(n):
        dim_names.append(h.name())
        dim_len.append(h.int())
    if 0 in dim_len:
        raise ValueError("unlimited (record) dimensions are not supported")
    h.attributes()
    tag = h.int()
    # name length, number of dimensions, attribute list (tag, count), type, size, offset
    n = h.count("variables", 24 + h.offset_size)
    if tag not in (0, 0x0B):
        raise ValueError(f"bad variable list tag {tag}")
    arrays: dict[str, np.ndarray] = {}
    dims: dict[str, tuple[str, ...]] = {}
    coords: dict[str, list[Any]] = {}
    for _ in range(n):
        name = h.name()
        ids = [h.int() for _ in range(h.count("dimension ids", 4))]
        if any(i >= len(dim_names) for i in ids):
            raise ValueError(
                f"variable {name!r} has a dimension id beyond the {len(dim_names)} dimensions"
            )
        h.attributes()
        nc_type, _vsize, begin = h.int(), h.int(), h.int(h.offset_size)
        if nc_type not in _NC_TYPES:
            raise ValueError(f"variable {name!r} has an unknown NetCDF type {nc_type}")
        shape = tuple(dim_len[i] for i in ids)
        vdims = tuple(dim_names[i] for i in ids)
        dt = np.dtype(_NC_TYPES[nc_type])
        count = math.prod(shape)  # Python integers: no overflow
        if begin + count * dt.itemsize > len(raw):
            raise ValueError(f"variable {name!r} runs past the end of the file")
        data = np.frombuffer(raw, dt, count=count, offset=begin).reshape(shape)
        if nc_type == 2:  # characters: a string coordinate (labels x string length)
            rows = data.reshape(shape[0], -1) if shape else data.reshape(1, -1)
            coords[vdims[0]] = [b"".join(r).rstrip(b"\0").decode("utf-8") for r in rows]
        elif name in dim_names:
            if name not in ("chain", "draw"):
                coords[name] = data.tolist()
        else:
            arrays[name] = data.astype(float)
            dims[name] = vdims
    return arrays, dims, coords


def _read_card(js: Path, fix: str, model_type: str) -> dict[str, Any]:
    """The model card, parsed: a JSON object (no further checks)."""
    try:
        if not js.is_file():
            raise StoreError(f"no stored {model_type} posterior: {js} does not exist; {fix}")
        data = js.read_bytes()
    except (OSError, ValueError) as err:
        if isinstance(err, StoreError):
            raise
        raise StoreError(f"model card {js} could not be read ({err}); {fix}") from None
    try:
        card = json.loads(data.decode("utf-8"))
        if not isinstance(card, dict):
            raise ValueError("not a JSON object")
    # ValueError includes UnicodeDecodeError; RecursionError: nested too deeply
    except (ValueError, RecursionError) as err:
        raise StoreError(f"model card {js} is not valid JSON ({err}); {fix}") from None
    return card


def _convert_hint(base: Path) -> str:
    return (
        f"convert it (same draws) with `python -m netbayes.store convert {base}` "
        "(netbayes.store.convert_v1)"
    )


def _read_data_file(
    base: Path,
    card: Mapping[str, Any],
    js: Path,
    key: str,
    sha_key: str,
    model_type: str,
    fix: str,
    verify: bool = True,
) -> tuple[Path, bytes]:
    """A data file named by the card: a plain name in ``base``, present, checksum matching
    (not read when ``verify`` is False: then only its presence is checked)."""
    name = card.get(key)
    if not _is_file_name(name):
        raise StoreError(
            f"model card {js}: {key}={_short(name)} is not allowed; expected the name of a "
            f"file in {base} (no path separators, at most {_NAME_MAX} bytes); {fix}"
        )
    path = base / name
    try:
        if not path.is_file():
            raise StoreError(f"no stored {model_type} posterior: {path} does not exist; {fix}")
        if not verify:
            return path, b""
        raw = path.read_bytes()
    except (OSError, ValueError) as err:
        if isinstance(err, StoreError):
            raise
        raise StoreError(f"{path} could not be read ({err}); {fix}") from None
    if _sha256(raw) != card.get(sha_key):
        raise StoreError(
            f"{path} is corrupt or was modified: its SHA-256 does not match the model card's "
            f"{sha_key}; {fix}"
        )
    return path, raw


def load_posterior(
    model_type: str,
    folder: str | Path | None = None,
    *,
    check_data: bool = True,
    verify_datatree: bool = True,
) -> StoredPosterior:
    """Load and verify a stored posterior.

    Reads the model card and the fast-read draws file (NumPy only: no xarray, no HDF5); the
    DataTree file is checked against its checksum but not parsed
    (:meth:`StoredPosterior.open_datatree` reads it, checking its checksum again).

    Parameters
    ----------
    model_type : str
        One of :data:`MODEL_TYPES`.
    folder : str or pathlib.Path, optional
        Models folder (default :func:`models_dir`).
    check_data : bool
        Refuse a posterior fitted on different calibration data (default True).
    verify_datatree : bool
        Check the DataTree file's checksum (default True). ``Predictor.load`` passes False:
        prediction reads only the draws file (whose checksum is always checked), so it need not
        read the DataTree file; its presence is still checked.

    Returns
    -------
    StoredPosterior

    Raises
    ------
    StoreError
        The files are missing or unreadable, the card is not valid JSON or malformed (its
        variables, file names or calibration ranges), its schema version is not
        :data:`SCHEMA_VERSION` (version 1: convert it with :func:`convert_v1`), or its card
        checksum, model type, data hash or a file checksum does not match; the message says
        how to regenerate the file.
    """
    _check_type(model_type)
    base = Path(folder) if folder is not None else models_dir()
    fix = _fix(model_type, Path(folder) if folder is not None else None)
    js = base / f"{model_type}.json"
    card = _read_card(js, fix, model_type)
    ver = card.get("schema_version")
    if type(ver) is int and ver == 1:
        raise StoreError(
            f"model card {js} has store schema version 1 (one NetCDF-3 file, netbayes before "
            f"the DataTree store), but this netbayes reads version {SCHEMA_VERSION}: "
            f"{_convert_hint(base)}, or refit: {fix}"
        )
    if type(ver) is not int or ver != SCHEMA_VERSION:  # not True or 2.0
        raise StoreError(
            f"model card {js} has store schema version {_short(ver)}, but this netbayes reads "
            f"version {SCHEMA_VERSION}; {fix}"
        )
    try:
        own = card_hash(card)
    except (ValueError, TypeError, RecursionError) as err:  # NaN or infinity in the card
        raise StoreError(f"model card {js} is not canonical JSON ({err}); {fix}") from None
    if card.get("card_sha256") != own:
        raise StoreError(
            f"model card {js} was modified or is corrupt: card_sha256="
            f"{_short(card.get('card_sha256'))} does not match its content (SHA-256 "
            f"{own[:12]}...; a card is never edited by hand); {fix}"
        )
    if card.get("model_type") != model_type:
        raise StoreError(
            f"model card {js} is for model type {_short(card.get('model_type'))}, not "
            f"{model_type!r}; {fix}"
        )
    if check_data:
        now = data_hash()
        if card.get("data_sha256") != now:
            raise StoreError(
                f"the {model_type} posterior in {base} was fitted on different calibration data "
                f"(data hash {str(card.get('data_sha256'))[:12]}..., the packaged data hash "
                f"{now[:12]}...); {fix}"
            )
    calibration = card.get("calibration")
    try:
        _check_card_numbers(card)
        if calibration is not None:
            _check_calibration(calibration)
            if check_data:  # fitted on the packaged data: its ranges are known
                from netbayes.calibration import calibrated_ranges

                _check_ranges_against_data(calibration, calibrated_ranges())
    except ValueError as err:
        raise StoreError(f"model card {js}: {err}; {fix}") from None
    tree_path, _ = _read_data_file(
        base, card, js, "datatree_file", "datatree_sha256", model_type, fix, verify_datatree
    )
    nc, raw = _read_data_file(base, card, js, "draws_file", "draws_file_sha256", model_type, fix)
    try:
        arrays, dims, coords = _read_netcdf(raw)
    except Exception as err:  # checksum matched, so the writer produced an unreadable file
        raise StoreError(f"{nc} could not be read as NetCDF ({err}); {fix}") from None
    expected = card.get("variables", {})
    if not isinstance(expected, dict) or not all(
        isinstance(d, list) and all(isinstance(x, str) for x in d) for d in expected.values()
    ):
        raise StoreError(
            f"model card {js}: variables={_short(expected)} is not allowed; expected a mapping "
            f"of each stored variable to its dimension names; {fix}"
        )
    if set(expected) != set(arrays):
        raise StoreError(
            f"{nc} holds variables {sorted(arrays)} but its card lists {sorted(expected)}; {fix}"
        )
    for name, d in dims.items():
        if tuple(expected[name]) != d:
            raise StoreError(
                f"{nc}: variable {name!r} has dimensions {list(d)} but its card lists "
                f"{expected[name]}; {fix}"
            )
    for name, a in arrays.items():
        why = draws_problem(name, a)
        if why is not None:
            raise StoreError(f"{nc}: {why}; {fix}")
    return StoredPosterior(model_type, card, arrays, dims, coords, nc, tree_path)


# ----------------------------------------------------------------------------------------------
# converting a schema-1 folder (one NetCDF-3 file per model) without refitting
# ----------------------------------------------------------------------------------------------
def _default_model_config(model_type: str) -> dict[str, Any]:
    """The configuration of a default model (what ``netbayes fit`` fitted)."""
    from netbayes.models.registry import default_model

    return default_model(model_type).config()


def convert_v1(folder: str | Path, out: str | Path | None = None) -> list[Path]:
    """Convert a schema-1 models folder to this layout, with the same draws (no refit).

    Schema 1 (netbayes before the DataTree store) stored ``<type>.nc`` (NetCDF-3, the posterior
    draws) and its card ``<type>.json``; only ``netbayes fit`` wrote them, so each is a default
    model on the packaged data (``user_data_sha256`` null). Each entry is verified first (its
    card, the file's checksum and ``draws_sha256`` recomputed from the draws); the draws are
    written unchanged (float64, bit for bit: the new card's ``draws_sha256`` equals the old
    one) and the card keeps its creation date, priors, sampler settings, diagnostics and
    calibration ranges (non-finite diagnostics become null). The DataTree file has the
    ``posterior`` group only (schema 1 kept no sample statistics). Converting in place
    (``out`` None) replaces the schema-1 files.

    Parameters
    ----------
    folder : str or pathlib.Path
        The schema-1 folder (e.g. a source checkout's ``models/``).
    out : str or pathlib.Path, optional
        Destination folder (default: ``folder``, in place).

    Returns
    -------
    list of pathlib.Path
        The DataTree files written, one per converted model type.

    Raises
    ------
    StoreError
        No schema-1 entry in ``folder``, or an entry fails its checks.
    """
    import xarray as xr

    src = Path(folder)
    dst = Path(out) if out is not None else src
    written = []
    for model_type in MODEL_TYPES:
        js = src / f"{model_type}.json"
        if not js.is_file():
            continue
        fix = _fix(model_type, src)
        old = _read_card(js, fix, model_type)
        if old.get("schema_version") != 1 or old.get("model_type") != model_type:
            raise StoreError(
                f"model card {js}: schema_version={_short(old.get('schema_version'))}, "
                f"model_type={_short(old.get('model_type'))}; convert_v1 expects a schema-1 "
                f"{model_type} card"
            )
        name = old.get("netcdf_file", f"{model_type}.nc")
        if not _is_file_name(name):
            raise StoreError(f"model card {js}: netcdf_file={_short(name)} is not allowed")
        raw = (src / name).read_bytes()
        if _sha256(raw) != old.get("netcdf_sha256"):
            raise StoreError(f"{src / name} is corrupt or was modified; {fix}")
        arrays, dims, coords = _read_netcdf(raw)
        if _draws_hash(arrays) != old.get("draws_sha256"):
            raise StoreError(f"{src / name}: its draws do not match the card's draws_sha256")
        ds = xr.Dataset(
            {k: (dims[k], arrays[k]) for k in old["variables"]},
            coords={k: v for k, v in coords.items()},
        )
        ds = _posterior_dataset(ds, list(old["variables"]), model_type)
        card = {
            "schema_version": SCHEMA_VERSION,
            "model_type": model_type,
            "package_version": old.get("package_version"),
            "created": old.get("created"),
            "converted": {
                "from_schema_version": 1,
                "date": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
                "netcdf_sha256": old.get("netcdf_sha256"),
            },
            "model_config": _default_model_config(model_type),
            "priors": old.get("priors"),
            "data_sha256": old.get("data_sha256"),
            "user_data_sha256": None,
            "sampler": old.get("sampler"),
            "diagnostics": _finite_diagnostics(old.get("diagnostics") or {}),
            "calibration": old.get("calibration"),
        }
        path = _write_entry(dst, model_type, ds, None, card, overwrite=True)
        if dst.resolve() == src.resolve():
            (src / name).unlink(missing_ok=True)  # the schema-1 data file, now converted
        written.append(path)
    if not written:
        raise StoreError(f"no model card ({', '.join(MODEL_TYPES)}.json) in {src} to convert")
    return written


# ----------------------------------------------------------------------------------------------
# regenerating the default posteriors
# ----------------------------------------------------------------------------------------------
DEFAULT_SEED = 20261121
"""Seed of the shipped posteriors."""


def fit_default(
    model_type: str,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = DEFAULT_SEED,
    sampler: str = "nutpie",
    progress: bool = True,
    folder: str | Path | None = None,
    family: str | None = None,
    allow_unconverged: bool = False,
) -> tuple[Path, FitResult]:
    """Fit one default model on the packaged data and store its posterior.

    This is what ``netbayes fit`` runs (it imports PyMC). The same ``seed``, data and software
    on the same machine give the same draws, bit for bit (compare the cards' ``draws_sha256``),
    once the model's compiled code is in PyTensor's cache (README, "Reproducibility");
    another machine or other versions of the sampler stack give a statistically equivalent
    posterior, not the same draws (see the README, "Reproducibility"). A posterior of the same
    model type in ``folder`` is replaced. A fit that misses the convergence targets is not
    stored unless ``allow_unconverged`` (then its card says ``converged: false`` and every
    prediction from it warns).

    Parameters
    ----------
    model_type : str
        One of :data:`MODEL_TYPES`.
    draws, tune, chains, seed, sampler, progress
        Sampler settings (see :func:`netbayes.fitting.sample`); the model's own default
        ``target_accept`` is used and recorded.
    folder : str or pathlib.Path, optional
        Destination (default :func:`models_dir`; never the installed package's folder).

    family : str, optional
        Survival family of a survival model (:data:`netbayes.families.FAMILIES`; default the
        model's, Weibull).
    allow_unconverged : bool
        Store a fit that missed the convergence targets (default False: refuse it).

    Returns
    -------
    path : pathlib.Path
        The DataTree file written.
    fit : netbayes.fitting.FitResult

    Raises
    ------
    NotConvergedError
        The fit missed the convergence targets and ``allow_unconverged`` is False; nothing
        was written.
    """
    _check_type(model_type)
    out = Path(folder) if folder is not None else models_dir()
    _check_destination(out, model_type, overwrite=True)  # before minutes of sampling
    run: dict[str, Any] = dict(
        draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler, progress=progress
    )
    from netbayes.models.registry import default_model

    over = {} if family is None else {"family": family}
    if over and not model_type.startswith("survival-"):
        raise ValueError(
            f"family={family!r} is not allowed for {model_type}; it is a survival option"
        )
    fit = default_model(model_type, **over).fit(**run)
    if not fit.converged and not allow_unconverged:
        raise NotConvergedError(
            f"the {model_type} fit did not converge ({'; '.join(fit.problems)}), so it was not "
            f"saved to {out}: a default posterior must meet the convergence targets. Rerun "
            "with more --tune/--draws, or pass --allow-unconverged (allow_unconverged=True) to "
            "save it anyway (its card then says converged: false and every prediction from it "
            "warns)"
        )
    return save_fit(fit, out, overwrite=True), fit


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m netbayes.store convert FOLDER [--out DIR]``: :func:`convert_v1`."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m netbayes.store")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="convert a schema-1 models folder (same draws, no refit)")
    c.add_argument("folder")
    c.add_argument("--out", default=None, help="destination (default: in place)")
    args = p.parse_args(argv)
    for path in convert_v1(args.folder, args.out):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
