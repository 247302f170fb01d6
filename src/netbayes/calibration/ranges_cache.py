"""A content-keyed disk cache of :func:`netbayes.calibration.calibrated_ranges`.

Loading a saved posterior compares its card's calibrated ranges with the packaged data's; those
come from the data tables, and reading them needs pandas, whose import alone costs more than a
whole ``netbayes predict``. The ranges are therefore computed once per version of the data and
of the code that derives them, and kept in a small JSON file:

* **Where**: ``$NETBAYES_CACHE_DIR``, else ``$XDG_CACHE_HOME/netbayes``, else
  ``~/.cache/netbayes``; a folder that cannot be made or written only means no cache (the
  ranges are then computed each time).
* **Key**: SHA-256 over the package version, every calibration CSV (name and bytes) and the
  source of every module that reads them into ranges. Changed data or code give a new key,
  so a cached file is never stale; nothing ever needs clearing by hand.
* **Checks**: a file that is unreadable, is not JSON, has another key or fails
  :func:`netbayes.calibration.ranges.check_calibration` is ignored and rewritten. Writes are
  atomic (temporary file, then ``os.replace``).

The file holds the dictionary with tuples written as JSON lists; the ranges hold no lists, so
every list read back is a tuple again and the value equals the computed one exactly (floats
round-trip through JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netbayes.calibration.ranges import check_calibration

__all__ = ["ENV_VAR", "cache_dir", "cached_ranges"]

ENV_VAR = "NETBAYES_CACHE_DIR"
"""The environment variable naming the cache folder."""

_SOURCES = (  # the modules that turn the tables into ranges, relative to the package
    "calibration/__init__.py",
    "calibration/base.py",
    "calibration/ranges_cache.py",
    "calibration/ranges.py",
    "calibration/re188.py",
    "calibration/rotterdam.py",
    "cohorts.py",
    "data.py",
    "fields.py",
    "spec.py",
    "vocab.py",
)


def cache_dir() -> Path:
    """The cache folder (it may not exist yet)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "netbayes"


def _key() -> str:
    from netbayes._version import __version__
    from netbayes.data import data_dir

    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"netbayes {__version__}\0".encode())
    for path in sorted(data_dir().glob("*.csv")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _SOURCES:
        h.update(name.encode() + b"\0" + (package / name).read_bytes() + b"\0")
    return h.hexdigest()


def _tuples(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return tuple(_tuples(v) for v in obj)
    return obj


def _read(path: Path, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("key") != key:
            return None
        ranges = _tuples(doc["ranges"])
        check_calibration(ranges)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return ranges


def _write(path: Path, key: str, ranges: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"key": key, "ranges": ranges}, fh, allow_nan=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, ValueError, TypeError):
        pass  # no cache: the ranges are computed again next time


def cached_ranges(compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The calibrated ranges from the cache, or ``compute()`` written to it.

    Parameters
    ----------
    compute : callable
        Computes the ranges from the data tables.

    Returns
    -------
    dict
        Equal to ``compute()``.
    """
    key = _key()
    path = cache_dir() / f"calibrated-ranges-{key[:32]}.json"
    ranges = _read(path, key)
    if ranges is None:
        ranges = compute()
        _write(path, key, ranges)
    return ranges
