"""The posterior store: fitted posteriors saved as data (NetCDF + a JSON model card), never pickle.

A stored posterior is two files in a models folder, named after its *model type*
(:data:`MODEL_TYPES`): ``<type>.nc`` holds the posterior draws of the variables prediction
needs plus every top-level parameter (dimensions ``chain``, ``draw`` and the model's own, e.g.
``tumour_type``), written as NetCDF-3 with SciPy (no HDF5 library needed); ``<type>.json`` is
the model card:

``schema_version``
    :data:`SCHEMA_VERSION` of this store layout.
``model_type``, ``package_version``, ``created``
    What was fitted, by which netbayes, when (UTC, ISO 8601).
``priors``
    The priors as JSON.
``data_sha256``
    :func:`data_hash` of the packaged calibration CSVs at fit time.
``sampler``
    ``sampler``, ``draws``, ``tune``, ``chains``, ``seed``, ``target_accept``.
``diagnostics``
    ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``seconds``,
    ``converged``, ``problems``.
``variables``
    The stored variables and their dimensions.
``calibration``
    The input ranges the calibration data cover (selection thresholds, activity ranges, the
    coarse tumour-type weights), used for the extrapolation warnings.
``netcdf_sha256``, ``draws_sha256``
    Checksums of the NetCDF file and of the draws themselves (float64, variables in name
    order): the same seed and data give the same ``draws_sha256``.

:func:`load_posterior` checks the card against the file before anything is used: schema
version, model type, data hash and the NetCDF checksum. A mismatched or corrupt file raises
:class:`StoreError` saying what to do (regenerate with ``netbayes fit``).

The default folder (:func:`models_dir`) is ``$NETBAYES_MODELS_DIR`` if set, else the posteriors
shipped inside the installed package (``netbayes/_models``), else the source checkout's
``models/``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from netbayes.fitting import FitResult

__all__ = [
    "MODEL_TYPES",
    "SCHEMA_VERSION",
    "StoreError",
    "StoredPosterior",
    "data_hash",
    "load_posterior",
    "models_dir",
    "save_posterior",
]

SCHEMA_VERSION = 1
"""Version of the store layout (NetCDF variables + model card); bump on any change."""

MODEL_TYPES: tuple[str, ...] = ("survival-pfs", "survival-os", "toxicity")
"""The stored model types, also the file stems in the models folder."""

ENV_VAR = "NETBAYES_MODELS_DIR"
"""Environment variable naming a models folder to use instead of the shipped one."""

_ENGINE = "scipy"  # NetCDF-3 via SciPy: always available (scipy is a dependency), deterministic


class StoreError(ValueError):
    """A stored posterior is missing, corrupt, or does not match this netbayes and its data."""


def _fix(model_type: str, folder: Path | None = None) -> str:
    where = f" --out {folder}" if folder is not None else ""
    return f"run `netbayes fit --model {model_type}{where}` to regenerate it"


def _check_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"model_type={model_type!r} is not allowed; expected one of {', '.join(MODEL_TYPES)}"
        )


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
    packaged = Path(str(resources.files("netbayes"))) / "_models"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "models"


def data_hash() -> str:
    """SHA-256 over the packaged calibration CSV files (names and contents, sorted by name).

    Line endings are normalised to ``\\n`` so that a checkout with Windows line endings hashes
    the same.

    Returns
    -------
    str
        Hexadecimal digest.
    """
    from netbayes.data import data_dir

    h = hashlib.sha256()
    for p in sorted(data_dir().glob("*.csv")):
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()


def _draws_hash(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name], dtype="<f8"))
        h.update(name.encode() + b"\0" + str(a.shape).encode() + b"\0" + a.tobytes())
    return h.hexdigest()


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
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
        The NetCDF file it came from.
    """

    model_type: str
    card: dict[str, Any]
    arrays: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    coords: dict[str, list[Any]] = field(default_factory=dict)
    path: Path | None = None

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

    @property
    def n_draws(self) -> int:
        """Total number of draws (chains times draws per chain)."""
        a = next(iter(self.arrays.values()))
        return int(a.shape[0] * a.shape[1])


# ----------------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------------
def _diagnostics_summary(fit: FitResult) -> dict[str, Any]:
    d = fit.diagnostics
    return {
        "max_r_hat": float(d["r_hat"].max()),
        "min_ess_bulk": float(d["ess_bulk"].min()),
        "min_ess_tail": float(d["ess_tail"].min()),
        "divergences": int(fit.n_divergences),
        "seconds": {k: round(float(v), 2) for k, v in fit.seconds.items()},
        "converged": bool(fit.converged),
        "problems": list(fit.problems),
    }


def save_posterior(
    fit: FitResult,
    model_type: str,
    *,
    variables: Sequence[str],
    priors: Any,
    sampler_settings: Mapping[str, Any],
    folder: str | Path | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> Path:
    """Save a fit's posterior as ``<folder>/<model_type>.nc`` plus its model card ``.json``.

    Parameters
    ----------
    fit : netbayes.fitting.FitResult
        The fit (its ``posterior`` DataTree must have a ``posterior`` group).
    model_type : str
        One of :data:`MODEL_TYPES`.
    variables : sequence of str
        Posterior variables to store (those prediction needs plus the top-level parameters).
    priors : JSON-compatible object
        The priors used (dicts, lists, numbers, strings).
    sampler_settings : mapping
        ``sampler``, ``draws``, ``tune``, ``chains``, ``seed``, ``target_accept``.
    folder : str or pathlib.Path, optional
        Destination (default :func:`models_dir`); created if needed.
    calibration : mapping, optional
        The calibrated input ranges of the data (:func:`netbayes.predict.calibrated_ranges`),
        kept in the card so that predictions need not re-read the data tables.

    Returns
    -------
    pathlib.Path
        The NetCDF file written.
    """
    from netbayes import __version__

    _check_type(model_type)
    missing_settings = {"sampler", "draws", "tune", "chains", "seed", "target_accept"} - set(
        sampler_settings
    )
    if missing_settings:
        raise ValueError(f"sampler_settings is missing {sorted(missing_settings)}")
    post = fit.posterior["posterior"].dataset
    missing = [v for v in variables if v not in post]
    if missing:
        raise ValueError(
            f"variables {missing} are not in the posterior; available: {', '.join(post)}"
        )
    ds = post[list(variables)].astype("float64")
    ds = ds.drop_vars([c for c in ds.coords if c not in ds.dims])
    ds = ds.assign_coords(
        chain=np.arange(ds.sizes["chain"], dtype="int32"),
        draw=np.arange(ds.sizes["draw"], dtype="int32"),
    )
    ds.attrs = {"model_type": model_type, "schema_version": SCHEMA_VERSION}
    raw = ds.to_netcdf(engine=_ENGINE)  # bytes (NetCDF-3, 64-bit offset)
    raw = bytes(raw)
    out = Path(folder) if folder is not None else models_dir()
    out.mkdir(parents=True, exist_ok=True)
    nc, js = out / f"{model_type}.nc", out / f"{model_type}.json"
    arrays = {v: ds[v].to_numpy() for v in ds.data_vars}
    card = {
        "schema_version": SCHEMA_VERSION,
        "model_type": model_type,
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "priors": _jsonable(priors),
        "data_sha256": data_hash(),
        "sampler": _jsonable(dict(sampler_settings)),
        "diagnostics": _diagnostics_summary(fit),
        "variables": {v: list(ds[v].dims) for v in ds.data_vars},
        "calibration": None if calibration is None else _jsonable(calibration),
        "netcdf_file": nc.name,
        "netcdf_sha256": _sha256(raw),
        "draws_sha256": _draws_hash(arrays),
    }
    nc.write_bytes(raw)
    js.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return nc


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
_NC_TYPES = {1: ">i1", 2: "S1", 3: ">i2", 4: ">i4", 5: ">f4", 6: ">f8"}
"""NetCDF-3 external types (all big-endian): byte, char, short, int, float, double."""


class _Header:
    """Sequential reader of a NetCDF-3 header (the classic format specification)."""

    def __init__(self, raw: bytes) -> None:
        if raw[:3] != b"CDF" or raw[3] not in (1, 2):
            raise ValueError("not a NetCDF-3 file (no CDF magic number)")
        self.raw, self.pos, self.offset_size = raw, 4, 4 if raw[3] == 1 else 8

    def int(self, size: int = 4) -> int:
        v = int.from_bytes(self.raw[self.pos : self.pos + size], "big", signed=False)
        self.pos += size
        return v

    def name(self) -> str:
        n = self.int()
        s = self.raw[self.pos : self.pos + n].decode("utf-8")
        self.pos += n + (-n % 4)
        return s

    def values(self, nc_type: int, n: int) -> np.ndarray:
        dt = np.dtype(_NC_TYPES[nc_type])
        a = np.frombuffer(self.raw, dt, count=n, offset=self.pos)
        self.pos += n * dt.itemsize + (-(n * dt.itemsize) % 4)
        return a

    def attributes(self) -> None:
        tag, n = self.int(), self.int()
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
    tag, n = h.int(), h.int()
    if tag not in (0, 0x0A):
        raise ValueError(f"bad dimension list tag {tag}")
    dim_names, dim_len = [], []
    for _ in range(n):
        dim_names.append(h.name())
        dim_len.append(h.int())
    if 0 in dim_len:
        raise ValueError("unlimited (record) dimensions are not supported")
    h.attributes()
    tag, n = h.int(), h.int()
    if tag not in (0, 0x0B):
        raise ValueError(f"bad variable list tag {tag}")
    arrays: dict[str, np.ndarray] = {}
    dims: dict[str, tuple[str, ...]] = {}
    coords: dict[str, list[Any]] = {}
    for _ in range(n):
        name = h.name()
        ids = [h.int() for _ in range(h.int())]
        h.attributes()
        nc_type, _vsize, begin = h.int(), h.int(), h.int(h.offset_size)
        shape = tuple(dim_len[i] for i in ids)
        vdims = tuple(dim_names[i] for i in ids)
        dt = np.dtype(_NC_TYPES[nc_type])
        count = int(np.prod(shape)) if shape else 1
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


def load_posterior(
    model_type: str, folder: str | Path | None = None, *, check_data: bool = True
) -> StoredPosterior:
    """Load and verify a stored posterior.

    Parameters
    ----------
    model_type : str
        One of :data:`MODEL_TYPES`.
    folder : str or pathlib.Path, optional
        Models folder (default :func:`models_dir`).
    check_data : bool
        Refuse a posterior fitted on different calibration data (default True).

    Returns
    -------
    StoredPosterior

    Raises
    ------
    StoreError
        The files are missing, the card is unreadable, or its schema version, model type, data
        hash or NetCDF checksum does not match; the message says how to regenerate the file.
    """
    _check_type(model_type)
    base = Path(folder) if folder is not None else models_dir()
    fix = _fix(model_type, Path(folder) if folder is not None else None)
    js = base / f"{model_type}.json"
    if not js.is_file():
        raise StoreError(f"no stored {model_type} posterior: {js} does not exist; {fix}")
    try:
        card = json.loads(js.read_text(encoding="utf-8"))
        if not isinstance(card, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise StoreError(f"model card {js} is not valid JSON ({err}); {fix}") from None
    ver = card.get("schema_version")
    if ver != SCHEMA_VERSION:
        raise StoreError(
            f"model card {js} has store schema version {ver!r}, but this netbayes reads version "
            f"{SCHEMA_VERSION}; {fix}"
        )
    if card.get("model_type") != model_type:
        raise StoreError(
            f"model card {js} is for model type {card.get('model_type')!r}, not {model_type!r}; "
            f"{fix}"
        )
    if check_data:
        now = data_hash()
        if card.get("data_sha256") != now:
            raise StoreError(
                f"the {model_type} posterior in {base} was fitted on different calibration data "
                f"(data hash {str(card.get('data_sha256'))[:12]}..., the packaged data hash "
                f"{now[:12]}...); {fix}"
            )
    nc = base / str(card.get("netcdf_file", f"{model_type}.nc"))
    if not nc.is_file():
        raise StoreError(f"no stored {model_type} posterior: {nc} does not exist; {fix}")
    raw = nc.read_bytes()
    if _sha256(raw) != card.get("netcdf_sha256"):
        raise StoreError(
            f"{nc} is corrupt or was modified: its SHA-256 does not match the model card; {fix}"
        )
    try:
        arrays, dims, coords = _read_netcdf(raw)
    except Exception as err:  # checksum matched, so the writer produced an unreadable file
        raise StoreError(f"{nc} could not be read as NetCDF ({err}); {fix}") from None
    expected = card.get("variables", {})
    if set(expected) != set(arrays):
        raise StoreError(
            f"{nc} holds variables {sorted(arrays)} but its card lists {sorted(expected)}; {fix}"
        )
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise StoreError(f"{nc}: variable {name!r} has non-finite draws; {fix}")
    return StoredPosterior(model_type, card, arrays, dims, coords, nc)


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
) -> tuple[Path, FitResult]:
    """Fit one default model on the packaged data and store its posterior.

    This is what ``netbayes fit`` runs (it imports PyMC). The same ``seed`` and data give the
    same draws (compare the cards' ``draws_sha256``).

    Parameters
    ----------
    model_type : str
        One of :data:`MODEL_TYPES`.
    draws, tune, chains, seed, sampler, progress
        Sampler settings (see :func:`netbayes.fitting.sample`); the model's own default
        ``target_accept`` is used and recorded.
    folder : str or pathlib.Path, optional
        Destination (default :func:`models_dir`).

    Returns
    -------
    path : pathlib.Path
        The NetCDF file written.
    fit : netbayes.fitting.FitResult
    """
    from dataclasses import asdict

    _check_type(model_type)
    settings: dict[str, Any] = {"draws": draws, "tune": tune, "chains": chains, "seed": seed}
    run = dict(settings, sampler=sampler, progress=progress)
    if model_type.startswith("survival-"):
        from netbayes.formulas.survival import params_for
        from netbayes.models.survival import SurvivalModel

        endpoint = model_type.split("-", 1)[1]
        model = SurvivalModel(endpoint)  # type: ignore[arg-type]
        fit = model.fit(**run)
        variables = list(dict.fromkeys([*model.parameter_names(), *params_for(endpoint)]))
        priors: Any = asdict(model.priors)
        target_accept = fit.settings["target_accept"]
    else:
        from netbayes.formulas.toxicity import PARAMS as TOX_PARAMS
        from netbayes.models.toxicity import ToxicityModel

        tmodel = ToxicityModel()
        fit = tmodel.fit(**run)
        variables = list(dict.fromkeys([*tmodel.parameter_names(), *TOX_PARAMS]))
        priors = tmodel.priors
        target_accept = fit.settings["target_accept"]
    settings.update(sampler=sampler, target_accept=target_accept)
    from netbayes.predict import calibrated_ranges

    path = save_posterior(
        fit,
        model_type,
        variables=variables,
        priors=priors,
        sampler_settings=settings,
        folder=folder,
        calibration=calibrated_ranges(),
    )
    return path, fit
