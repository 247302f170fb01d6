"""Adversarial file writes (issue 17): overwriting, empty paths, interruptions, bad arguments.

Every output (a stored posterior, a report, a CSV) is written atomically (a temporary file in
the same folder, then :func:`os.replace`; a posterior's card last); an existing user file or
folder is replaced only with ``--force``; output locations and ``netbayes fit`` arguments are
checked before any sampling.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_predict import fake_survival, fake_toxicity
from test_store import SETTINGS, fake_fit

from netbayes import store
from netbayes.cli import main
from netbayes.store import NotConvergedError, load_posterior, save_posterior


def _no_fit(*a, **k):  # pragma: no cover - must not be reached
    raise AssertionError("sampled before refusing")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for mt, d in (
        ("survival-pfs", fake_survival(0, 60)),
        ("survival-os", fake_survival(1, 60, os=True)),
        ("toxicity", fake_toxicity(2, 60)),
    ):
        save_posterior(fake_fit(d), mt, variables=list(d), priors={}, sampler_settings=SETTINGS,
                       folder=folder)  # fmt: skip
    return folder


# ----------------------------------------------------------------------------------------------
# netbayes fit: arguments and destination checked before compiling and sampling
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seed", "-1"], "--seed -1 is not allowed; expected an integer >= 0"),
        (["--seed", str(2**63)], f"--seed {2**63} is not allowed; expected an integer from 0"),
        (["--draws", "0"], "--draws 0 is not allowed; expected an integer >= 1"),
        (["--chains", "0"], "--chains 0 is not allowed; expected an integer >= 1"),
        (["--tune", "-5"], "--tune -5 is not allowed; expected an integer >= 0"),
        (["--out", ""], "--out '' is not allowed; expected a folder path"),
    ],
)
def test_fit_arguments_are_refused_before_sampling(monkeypatch, tmp_path, capsys, args, words):
    monkeypatch.setattr(store, "fit_default", _no_fit)
    out = [] if "--out" in args else ["--out", str(tmp_path / "m")]
    assert main(["fit", "--model", "toxicity", "--no-progress", *out, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netbayes: error: ") and words in err
    assert not (tmp_path / "m").exists()


def test_sample_refuses_a_negative_seed_before_compiling():
    from netbayes.fitting import sample

    with pytest.raises(ValueError, match=r"seed=-1 is not allowed; expected an integer from 0"):
        sample(object(), seed=-1)  # no model is touched: refused first


def test_fit_out_holding_a_posterior_needs_force(monkeypatch, models, tmp_path, capsys):
    mine = tmp_path / "mine"
    shutil.copytree(models, mine)
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    monkeypatch.setattr(store, "fit_default", _no_fit)
    assert main(["fit", "--model", "toxicity", "--out", str(mine), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "already holds a toxicity posterior" in err and "pass --force" in err
    assert str(mine / "toxicity.json") in err
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == before


def test_fit_out_a_file_is_refused(monkeypatch, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    monkeypatch.setattr(store, "fit_default", _no_fit)
    assert main(["fit", "--out", str(f), "--no-progress"]) == 2
    assert "it is a file; expected a folder" in capsys.readouterr().err
    assert main(["fit", "--out", str(f / "sub"), "--no-progress"]) == 2
    assert f"{f} is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "mine"


def test_fit_out_not_writable_is_refused(monkeypatch, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root may write anywhere: pretend it may not
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == ro else real(p, m))
    try:
        monkeypatch.setattr(store, "fit_default", _no_fit)
        assert main(["fit", "--out", str(ro / "m"), "--no-progress"]) == 2
        assert f"the folder {ro} is not writable" in capsys.readouterr().err
        assert main(["validate", "--csv", str(ro / "v.csv")]) == 2
        assert f"the folder {ro} is not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


# ----------------------------------------------------------------------------------------------
# netbayes fit: a non-converged posterior is not installed unless asked for
# ----------------------------------------------------------------------------------------------
class _Model:
    def __init__(self, converged: bool):
        self.converged = converged

    def fit(self, **kw):
        d = fake_survival(0, 40)
        info = {"model_type": "survival-pfs", "variables": list(d), "priors": {}, "config": {},
                "user_data_sha256": None}  # fmt: skip
        fit = fake_fit(d, model_info=info)
        if not self.converged:
            fit.problems = ["R-hat > 1.01 for 2 parameters (worst k2: 1.130): run more tuning"]
        return fit


@pytest.fixture
def fake_models(monkeypatch):
    from netbayes.models import registry

    state = {"converged": False}
    monkeypatch.setattr(registry, "default_model", lambda mt, **kw: _Model(state["converged"]))
    return state


def test_fit_default_refuses_an_unconverged_fit(fake_models, tmp_path):
    with pytest.raises(NotConvergedError, match=r"survival-pfs fit did not converge \(R-hat"):
        store.fit_default("survival-pfs", folder=tmp_path / "m")
    assert not (tmp_path / "m" / "survival-pfs.json").exists()


def test_cli_fit_unconverged_is_not_saved_unless_allowed(fake_models, tmp_path, capsys):
    out = tmp_path / "m"
    args = ["fit", "--model", "survival-pfs", "--out", str(out), "--no-progress"]
    assert main(args) == 1
    o, err = capsys.readouterr()
    assert "did not converge" in err and "--allow-unconverged" in err and "worst k2" in err
    assert "not saved (did not converge): survival-pfs" in err
    assert not (out / "survival-pfs.json").exists()
    assert main([*args, "--allow-unconverged"]) == 0
    o, err = capsys.readouterr()
    assert "saved with converged: false" in o
    card = load_posterior("survival-pfs", out).card
    assert card["diagnostics"]["converged"] is False


def test_cli_fit_converged_is_saved(fake_models, tmp_path, capsys):
    fake_models["converged"] = True
    out = tmp_path / "m"
    assert main(["fit", "--model", "survival-pfs", "--out", str(out), "--no-progress"]) == 0
    assert load_posterior("survival-pfs", out).card["diagnostics"]["converged"] is True


# ----------------------------------------------------------------------------------------------
# report --out and validate --csv: never overwrite without --force, atomic, say what was written
# ----------------------------------------------------------------------------------------------
def test_report_out_empty_is_refused(models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--out", ""]) == 2
    assert "--out '' is not allowed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_report_into_an_existing_folder_needs_force(models, tmp_path, capsys, cached_report_files):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "validation.md").write_text("my own notes")
    assert main(["report", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "existing folder with files in it; pass --force" in err and str(out) in err
    assert (out / "validation.md").read_text() == "my own notes"
    (out / "keep.txt").write_text("kept")
    assert main(["report", "--out", str(out), "--force"]) == 0
    o = capsys.readouterr().out
    assert f"wrote 35 files to {out}" in o and f"  {out / 'validation.md'}" in o
    assert (out / "validation.md").read_text() != "my own notes"
    assert (out / "keep.txt").read_text() == "kept"  # only the report's own files replaced
    assert _leftovers(tmp_path) == [] and _leftovers(out) == []
    assert cached_report_files == [True]  # the session's real report's files (conftest)


def test_report_out_a_file_is_refused(models, tmp_path, capsys):
    f = tmp_path / "r.md"
    f.write_text("mine")
    assert main(["report", "--out", str(f)]) == 2
    assert "it is a file; expected a folder" in capsys.readouterr().err
    assert f.read_text() == "mine"


def test_interrupted_report_leaves_nothing(models, tmp_path, monkeypatch, capsys):
    from netbayes import plots

    def power_cut(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(plots, "plot_type_forest", power_cut)
    out = tmp_path / "rep"
    assert main(["report", "--out", str(out)]) == 2
    assert "disk full" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no partial report


def test_interrupted_forced_report_keeps_the_previous_one(
    models, tmp_path, monkeypatch, cached_report_files
):
    from netbayes import plots

    out = tmp_path / "rep"
    assert main(["report", "--out", str(out)]) == 0
    assert cached_report_files == [True]  # the previous report: the session's real one's files
    monkeypatch.undo()  # the forced report below is written for real, until plot_validation
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(plots, "plot_validation", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["report", "--out", str(out), "--force"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _leftovers(tmp_path) == []


def test_validate_csv_needs_force_and_is_atomic(
    tmp_path, capsys, monkeypatch, cached_loo_validation, shipped_validate
):
    """File plumbing only: the cross-validated table is the session's real one (conftest),
    written by the command line's own --csv path."""
    csv = tmp_path / "v.csv"
    csv.write_text("my own table\n")
    assert main(["validate", "--csv", str(csv)]) == 2
    err = capsys.readouterr().err
    assert f"--csv '{csv}' exists; pass --force to replace it" in err
    assert csv.read_text() == "my own table\n"
    assert main(["validate", "--csv", ""]) == 2
    assert "--csv '' is not allowed" in capsys.readouterr().err
    # an interrupted write (the rename fails): the old file stays whole, no temporary left
    real = os.replace

    def fail(src, dst):
        raise OSError("interrupted")

    monkeypatch.setattr(os, "replace", fail)
    assert main(["validate", "--csv", str(csv), "--force"]) == 2
    assert "interrupted" in capsys.readouterr().err
    assert csv.read_text() == "my own table\n" and _leftovers(tmp_path) == []
    monkeypatch.setattr(os, "replace", real)
    assert main(["validate", "--csv", str(csv), "--force"]) == 0
    _, err = capsys.readouterr()
    assert csv.read_text().startswith("endpoint,figure,")  # the cross-validated table
    assert csv.read_bytes() == shipped_validate.csv  # all of it
    assert f"netbayes: wrote {csv}" in err
    assert cached_loo_validation == [True, True]  # the two runs that got past the checks


def test_validate_csv_into_a_folder_is_refused(tmp_path, capsys):
    assert main(["validate", "--csv", str(tmp_path)]) == 2
    assert "it is a folder; expected a file" in capsys.readouterr().err


def test_loso_csv_is_checked_before_the_refits(tmp_path, capsys, monkeypatch):
    from netbayes import loso

    monkeypatch.setattr(loso, "leave_one_study_out", _no_fit)
    csv = tmp_path / "l.csv"
    csv.write_text("x\n")
    assert main(["validate", "--leave-one-study-out", "--csv", str(csv)]) == 2
    assert "pass --force" in capsys.readouterr().err and csv.read_text() == "x\n"


# ----------------------------------------------------------------------------------------------
# a posterior save interrupted at any write: the previous posterior still loads, nothing partial
# ----------------------------------------------------------------------------------------------
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(fail_at=st.integers(1, 3), how=st.sampled_from(["replace", "fsync"]))
def test_interrupted_save_at_any_write(models, tmp_path_factory, fail_at, how):
    """The n-th ``os.replace`` (or the n-th ``fsync``) fails: the previous posterior loads
    unchanged, and no temporary or half-written file remains."""
    folder = tmp_path_factory.mktemp("interrupt")
    for f in models.iterdir():
        shutil.copy(f, folder / f.name)
    before = load_posterior("survival-pfs", folder)
    files = sorted(p.name for p in folder.iterdir())
    calls = {"n": 0}
    real = getattr(os, how)
    # fsync calls: tree file, draws file, folder (its failure is ignored), card, folder
    fail_at = {"replace": fail_at, "fsync": (1, 2, 4)[fail_at - 1]}[how]

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(f"power cut at {how} {fail_at}")
        return real(*a, **k)

    d = fake_survival(5, 60)
    import unittest.mock as um

    with um.patch.object(os, how, flaky), pytest.raises(OSError, match="power cut"):
        save_posterior(fake_fit(d), "survival-pfs", variables=list(d), priors={},
                       sampler_settings=SETTINGS, folder=folder, overwrite=True)  # fmt: skip
    after = load_posterior("survival-pfs", folder)
    assert after.card == before.card
    np.testing.assert_array_equal(after.arrays["k2"], before.arrays["k2"])
    left = sorted(p.name for p in folder.iterdir())
    assert _leftovers(folder) == []
    # only complete, content-named data files of the new save may remain (unreferenced, removed
    # by the next save); never a partial one
    for name in set(left) - set(files):
        raw = (folder / name).read_bytes()
        assert store._sha256(raw)[:12] in name


def test_a_save_never_overwrites_silently(models, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(models, folder)
    d = fake_survival(9, 60)
    with pytest.raises(FileExistsError, match=r"survival-pfs\.json exists.*overwrite=True"):
        save_posterior(fake_fit(d), "survival-pfs", variables=list(d), priors={},
                       sampler_settings=SETTINGS, folder=folder)  # fmt: skip
    assert json.loads((folder / "survival-pfs.json").read_text()) == json.loads(
        (models / "survival-pfs.json").read_text()
    )
