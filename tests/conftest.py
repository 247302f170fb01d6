"""Session-wide test settings, and the two slow commands on the shipped posteriors, run once.

``netbayes validate`` (a full PSIS-LOO over the shipped posteriors) and ``netbayes report`` take
10-15 s each. :func:`shipped_validate` and :func:`shipped_report` run each for real once per
test session (per xdist worker), through the command line, and record what it printed and
wrote; the end-to-end tests assert on those runs. Tests of file plumbing only (``--force``,
atomic writes, interrupted writes) use :func:`cached_loo_validation` and
:func:`cached_report_files`, which answer from the recorded run, as fresh copies, only for the
same shipped posteriors and the same arguments (anything else is computed for real).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# netbayes' disk cache of the calibrated ranges (netbayes.calibration.ranges_cache): a folder of
# this test run, never the user's ~/.cache (subprocesses inherit it)
os.environ.setdefault("NETBAYES_CACHE_DIR", tempfile.mkdtemp(prefix="netbayes-test-cache-"))

_MODEL_TYPES = ("survival-pfs", "survival-os", "toxicity")


@contextlib.contextmanager
def _captured():
    """stdout and stderr of the block, as two StringIO (capsys is per test, not per session)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


# ----------------------------------------------------------------------------------------------
# netbayes validate (PSIS-LOO)
# ----------------------------------------------------------------------------------------------
def _folder_key(folder: str | Path | None) -> tuple[Any, ...]:
    """What ``loo_validation(folder)`` reads: the resolved folder and its cards' bytes (a card
    holds its draws' checksums)."""
    from netbayes.store import models_dir

    f = Path(models_dir() if folder is None else folder).resolve()
    cards = [f / f"{m}.json" for m in _MODEL_TYPES]
    return f, tuple(hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
                    for p in cards)  # fmt: skip


@dataclass(frozen=True)
class ValidateRun:
    """One real ``netbayes validate --csv FILE`` on the shipped posteriors."""

    rc: int
    out: str
    err: str
    csv: bytes
    call: tuple[Any, ...]  # (folder key, keyword arguments) of its loo_validation call
    returned: Any  # what loo_validation returned: (table, summary), a copy kept here

    def result(self) -> Any:
        """A fresh copy of loo_validation's (table, summary): no test sees another's edits."""
        return copy.deepcopy(self.returned)


@pytest.fixture(scope="session")
def shipped_validate(tmp_path_factory) -> ValidateRun:
    """``netbayes validate --csv FILE`` on the shipped posteriors (the real PSIS-LOO), once."""
    from netbayes import validation
    from netbayes.cli import main

    real = validation.loo_validation
    calls = []

    def spy(folder=None, **kw):  # records; computes for real
        res = real(folder, **kw)
        calls.append(((_folder_key(folder), kw), copy.deepcopy(res)))
        return res

    csv = tmp_path_factory.mktemp("validate") / "loo.csv"
    with pytest.MonkeyPatch.context() as mp, _captured() as (out, err):
        mp.setattr(validation, "loo_validation", spy)
        rc = main(["validate", "--csv", str(csv)])
    assert rc in (0, 1) and len(calls) == 1, (rc, err.getvalue())
    (call, returned), = calls  # fmt: skip
    return ValidateRun(rc, out.getvalue(), err.getvalue(), csv.read_bytes(), call, returned)


@pytest.fixture
def cached_loo_validation(monkeypatch, shipped_validate) -> list[bool]:
    """``netbayes.validation.loo_validation`` answering from :func:`shipped_validate` (a fresh
    copy of the real table) when asked exactly what that run asked, for real otherwise.
    Returns, per call, whether it was answered from the recorded run."""
    from netbayes import validation

    real = validation.loo_validation
    hits: list[bool] = []

    def cached(folder=None, **kw):
        hit = (_folder_key(folder), kw) == shipped_validate.call
        hits.append(hit)
        return shipped_validate.result() if hit else real(folder, **kw)

    monkeypatch.setattr(validation, "loo_validation", cached)
    return hits


# ----------------------------------------------------------------------------------------------
# netbayes report
# ----------------------------------------------------------------------------------------------
def _posteriors_key(posts: dict[str, Any]) -> tuple[Any, ...]:
    """What ``_write_report(out, posts)`` reads: each posterior's card and draws."""
    key = []
    for m, p in sorted(posts.items()):
        h = hashlib.sha256(json.dumps(p.card, sort_keys=True, default=str).encode())
        for k in sorted(p.arrays):
            a = p.arrays[k]
            h.update(f"{k}{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        key.append((m, p.model_type, h.hexdigest()))
    return tuple(key)


@dataclass(frozen=True)
class ReportRun:
    """One real ``netbayes report --out DIR`` on the shipped posteriors."""

    rc: int
    out: str
    err: str
    folder: Path  # what it wrote (read it; do not write into it)
    names: tuple[str, ...]  # the files _write_report returned, in its order
    posteriors: tuple[Any, ...]  # _posteriors_key of the posteriors it reported on


@pytest.fixture(scope="session")
def shipped_report(tmp_path_factory) -> ReportRun:
    """``netbayes report --out DIR`` on the shipped posteriors, once."""
    from netbayes import cli

    real = cli._write_report
    calls = []

    def spy(out, posts):  # records; writes for real
        written = real(out, posts)
        calls.append((tuple(Path(p).name for p in written), _posteriors_key(posts)))
        return written

    folder = tmp_path_factory.mktemp("report") / "rep"
    with pytest.MonkeyPatch.context() as mp, _captured() as (out, err):
        mp.setattr(cli, "_write_report", spy)
        rc = cli.main(["report", "--out", str(folder)])
    assert rc == 0 and len(calls) == 1, (rc, err.getvalue())
    (names, posteriors), = calls  # fmt: skip
    return ReportRun(rc, out.getvalue(), err.getvalue(), folder, names, posteriors)


@pytest.fixture
def cached_report_files(monkeypatch, shipped_report) -> list[bool]:
    """``netbayes.cli._write_report`` writing copies of :func:`shipped_report`'s files (the
    staging, renames and ``--force`` of ``netbayes report`` still run) when given the same
    posteriors, the real one otherwise. Returns, per call, whether it copied."""
    from netbayes import cli

    real = cli._write_report
    hits: list[bool] = []

    def cached(out, posts):
        hit = _posteriors_key(posts) == shipped_report.posteriors
        hits.append(hit)
        if not hit:
            return real(out, posts)
        for n in shipped_report.names:
            shutil.copyfile(shipped_report.folder / n, Path(out) / n)
        return [Path(out) / n for n in shipped_report.names]

    monkeypatch.setattr(cli, "_write_report", cached)
    return hits
