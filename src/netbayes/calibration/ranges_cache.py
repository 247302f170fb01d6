"""A content-keyed disk cache of the few values prediction derives from the data tables.

Loading a saved posterior compares its card's calibrated ranges
(:func:`netbayes.calibration.calibrated_ranges`) with the packaged data's, and the OS model's
default ``beta_x`` prior is linked to the PFS share of OS after R-PRRT
(:func:`netbayes.calibration.rprrt_pfs_share_of_os`); both come from the data tables, and
reading them needs pandas, whose import alone costs more than a whole ``netbayes predict``.
They are therefore computed once per version of the data and of the code that derives them,
and kept in small JSON files:

* **Where**: ``$NETBAYES_CACHE_DIR``, else ``$XDG_CACHE_HOME/netbayes``, else
  ``~/.cache/netbayes``; a folder that cannot be made or written only means no cache (the
  values are then computed each time).
* **Key**: SHA-256 over the package version, every calibration CSV (name and bytes) and the
  source of every module of the package, and for a value computed from more than the tables
  (the prior share's regressions on a posterior's draws) that content too. Changed data,
  code or draws give a new key, so a cached file is never stale; nothing ever needs clearing
  by hand.
* **Checks**: a file that is unreadable, is not JSON, has another key or holds a value that
  fails its check (:func:`netbayes.calibration.ranges.check_calibration` for the ranges, a
  share in (0, 1) for the OS link) is ignored and rewritten. Writes are atomic (temporary
  file, then ``os.replace``).

A file holds the value with tuples written as JSON lists; the values hold no lists, so every
list read back is a tuple again and the value equals the computed one exactly (floats
round-trip through JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from netbayes.calibration.ranges import check_calibration

__all__ = ["ENV_VAR", "cache_dir", "cached", "cached_ranges", "cached_share"]

ENV_VAR = "NETBAYES_CACHE_DIR"
"""The environment variable naming the cache folder."""


def cache_dir() -> Path:
    """The cache folder (it may not exist yet)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "netbayes"


@cache  # once per process (~10 ms: 1.1 MB of source)
def _key() -> str:
    from netbayes._version import __version__
    from netbayes.data import data_dir

    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"netbayes {__version__}\0".encode())
    for path in sorted(data_dir().glob("*.csv")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for path in sorted(package.rglob("*.py")):  # every module: none can be missed
        name = path.relative_to(package).as_posix()
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _tuples(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return tuple(_tuples(v) for v in obj)
    return obj


def _read(path: Path, key: str, check: Callable[[Any], None]) -> Any:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("key") != key:
            return None
        value = _tuples(doc["value"])
        check(value)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value


def _write(path: Path, key: str, value: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"key": key, "value": value}, fh, allow_nan=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, ValueError, TypeError):
        pass  # no cache: the value is computed again next time


def cached(
    name: str,
    compute: Callable[[], Any],
    check: Callable[[Any], None],
    content: bytes | None = None,
) -> Any:
    """A value derived from the data tables, from the cache or ``compute()`` written to it.

    Parameters
    ----------
    name : str
        The value's file name stem (``calibrated-ranges``).
    compute : callable
        Computes the value from the tables: JSON numbers, strings, dicts with string keys and
        tuples (no lists).
    check : callable
        Raises ValueError for a value read back that is not well formed.
    content : bytes, optional
        What else the value is computed from (e.g. posterior draws): hashed into the key, so
        that other content gives another file.

    Returns
    -------
    object
        Equal to ``compute()``.
    """
    key = _key()
    if content is not None:
        key = hashlib.sha256(key.encode() + b"\0" + content).hexdigest()
    path = cache_dir() / f"{name}-{key[:32]}.json"
    value = _read(path, key, check)
    if value is None:
        value = compute()
        _write(path, key, value)
    return value


def cached_ranges(compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """:func:`cached` for :func:`netbayes.calibration.calibrated_ranges` (checked with
    :func:`~netbayes.calibration.ranges.check_calibration`)."""
    return cached("calibrated-ranges", compute, check_calibration)


def _check_share(value: Any) -> None:
    if not (isinstance(value, float) and 0.0 < value < 1.0):
        raise ValueError(f"{value!r} is not a share in (0, 1)")


def cached_share(compute: Callable[[], float]) -> float:
    """:func:`cached` for :func:`netbayes.calibration.rprrt_pfs_share_of_os`."""
    return cached("rprrt-pfs-share-of-os", compute, _check_share)
