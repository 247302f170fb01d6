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
import math
import os
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netbayes import spec

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

MODEL_TYPES: tuple[str, ...] = spec.MODEL_TYPES
"""The stored model types, also the file stems in the models folder."""

ENV_VAR = "NETBAYES_MODELS_DIR"
"""Environment variable naming a models folder to use instead of the shipped one."""

_ENGINE = "scipy"  # NetCDF-3 via SciPy: always available (scipy is a dependency), deterministic


class StoreError(ValueError):
    """A stored posterior is missing, corrupt, or does not match this netbayes and its data."""


def _fix(model_type: str, folder: Path | None = None) -> str:
    where = f" --out {folder}" if folder is not None else ""
    return f"run `netbayes fit --model {model_type}{where}` to regenerate it"


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


_CALIBRATION_KEYS = (
    "prior_pfs_min",
    "planned_gbq",
    "cumulative_gbq",
    "re188_prior_gbq",
    "type_weights",
    "cohort_mix",
)
"""The entries of a card's ``calibration`` (:func:`netbayes.predict.calibrated_ranges`)."""


def _is_amount(x: Any) -> bool:
    """A finite number >= 0 (not a boolean)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < math.inf


def _check_calibration(cal: Any) -> None:
    """Check a model card's ``calibration`` entry: every range prediction reads, well formed.

    Parameters
    ----------
    cal : object
        The entry, as read from JSON (see :func:`netbayes.predict.calibrated_ranges`).

    Raises
    ------
    ValueError
        Naming the malformed entry, its value and what is allowed.
    """
    from netbayes import vocab

    def bad(keys: tuple[str, ...], value: Any, allowed: str) -> ValueError:
        where = "calibration" + "".join(f"[{k!r}]" for k in keys)
        return ValueError(f"{where}={_short(value)} is not allowed; expected {allowed}")

    def amounts(keys: tuple[str, ...], value: Any, names: Sequence[str], positive: bool) -> None:
        """A mapping of some of ``names`` to numbers >= 0 (one positive if ``positive``)."""
        what = f"a mapping of {', '.join(names)} to numbers >= 0"
        if not isinstance(value, Mapping) or not all(
            k in names and _is_amount(v) for k, v in value.items()
        ):
            raise bad(keys, value, what)
        if positive and not sum(value.values()) > 0:
            raise bad(keys, value, f"{what}, at least one of them > 0")

    def pair(keys: tuple[str, ...], value: Any) -> None:
        if not (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(_is_amount(v) for v in value)
            and value[0] <= value[1]
        ):
            raise bad(keys, value, "a pair [lower, upper] of numbers, 0 <= lower <= upper")

    if not isinstance(cal, Mapping):
        raise ValueError(
            f"calibration={_short(cal)} is not allowed; expected a mapping of the calibrated "
            "ranges (netbayes.predict.calibrated_ranges)"
        )
    missing = [k for k in _CALIBRATION_KEYS if k not in cal]
    if missing:
        raise ValueError(
            f"calibration={_short(cal)} is not allowed; expected a mapping with the entries "
            f"{', '.join(_CALIBRATION_KEYS)} (missing: {', '.join(missing)})"
        )
    amounts(("prior_pfs_min",), cal["prior_pfs_min"], vocab.LINES, positive=False)
    planned = cal["planned_gbq"]
    if not isinstance(planned, Mapping) or not set(vocab.LINES) <= set(planned):
        raise bad(("planned_gbq",), planned, f"a pair for each of {', '.join(vocab.LINES)}")
    for line, v in planned.items():
        pair(("planned_gbq", line), v)
    pair(("cumulative_gbq",), cal["cumulative_gbq"])
    pair(("re188_prior_gbq",), cal["re188_prior_gbq"])
    weights = cal["type_weights"]
    coarse = vocab.COARSE_TUMOUR_TYPES
    if not isinstance(weights, Mapping) or not set(coarse) <= set(weights):
        raise bad(("type_weights",), weights, f"a mapping with each of {', '.join(coarse)}")
    for c, members in coarse.items():
        amounts(("type_weights", c), weights[c], members, positive=True)
    mix = cal["cohort_mix"]
    groups = ("I-PRRT/R-PRRT", "RR-PRRT")
    if not isinstance(mix, Mapping) or not set(groups) <= set(mix):
        raise bad(("cohort_mix",), mix, f"a mapping with each of {', '.join(groups)}")
    for g in groups:
        amounts(("cohort_mix", g), mix[g], vocab.PATIENT_TUMOUR_TYPES, positive=True)


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
    for v in ds.data_vars:
        if not np.all(np.isfinite(ds[v].to_numpy())):
            raise ValueError(
                f"variable {v!r} has non-finite draws (NaN or infinite); a posterior with them "
                "cannot be stored, and prediction would refuse it: check the fit"
            )
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
        The files are missing or unreadable, the card is not valid JSON or malformed (its
        variables, NetCDF file name or calibration ranges), or its schema version, model type,
        data hash or NetCDF checksum does not match; the message says how to regenerate the
        file.
    """
    _check_type(model_type)
    base = Path(folder) if folder is not None else models_dir()
    fix = _fix(model_type, Path(folder) if folder is not None else None)
    js = base / f"{model_type}.json"
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
    ver = card.get("schema_version")
    if type(ver) is not int or ver != SCHEMA_VERSION:  # not True or 1.0
        raise StoreError(
            f"model card {js} has store schema version {_short(ver)}, but this netbayes reads "
            f"version {SCHEMA_VERSION}; {fix}"
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
    if calibration is not None:
        try:
            _check_calibration(calibration)
        except ValueError as err:
            raise StoreError(f"model card {js}: {err}; {fix}") from None
    name = card.get("netcdf_file", f"{model_type}.nc")
    if not _is_file_name(name):
        raise StoreError(
            f"model card {js}: netcdf_file={_short(name)} is not allowed; expected the name of a "
            f"file in {base} (no path separators, at most {_NAME_MAX} bytes); {fix}"
        )
    nc = base / name
    try:
        if not nc.is_file():
            raise StoreError(f"no stored {model_type} posterior: {nc} does not exist; {fix}")
        raw = nc.read_bytes()
    except (OSError, ValueError) as err:
        if isinstance(err, StoreError):
            raise
        raise StoreError(f"{nc} could not be read ({err}); {fix}") from None
    if _sha256(raw) != card.get("netcdf_sha256"):
        raise StoreError(
            f"{nc} is corrupt or was modified: its SHA-256 does not match the model card; {fix}"
        )
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
