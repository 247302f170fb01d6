"""Leave-one-study-out: the machinery on injected fits (the refits themselves are PyMC fits of
the default models with ``exclude_studies``, tested in tests/test_study_level.py)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from netbayes.loso import LOSO_COLUMNS, leave_one_study_out, loso_summary
from netbayes.store import load_posterior


@pytest.fixture(scope="module")
def table():
    stored = {mt: load_posterior(mt) for mt in ("survival-pfs", "survival-os", "toxicity")}
    calls = []

    def fit(mt, held):
        calls.append((mt, held))
        return stored[mt]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = leave_one_study_out(fit=fit, seed=3)
    return t, calls


def test_every_study_of_every_multi_study_model_is_left_out_once(table):
    t, calls = table
    assert calls == [("survival-os", "rotterdam2019"), ("survival-os", "re188pilot"),
                     ("toxicity", "rotterdam2019"), ("toxicity", "re188pilot")]  # fmt: skip
    assert list(t.columns) == LOSO_COLUMNS
    assert t.attrs["skipped"] == ["survival-pfs: one study (rotterdam2019), nothing to leave out"]
    n = t.groupby(["model_type", "held_out"], sort=False).size().to_dict()
    # Table 5 OS rows in the likelihood (24 minus the 4 "all tumours" rows); the pilot's deaths
    # (a censored time has no PIT); Table 6 (32 counts) and the 188Re per-cycle table (15)
    assert n[("survival-os", "rotterdam2019")] == 20
    assert 1 <= n[("survival-os", "re188pilot")] <= 6
    assert n[("toxicity", "rotterdam2019")] == 32 and n[("toxicity", "re188pilot")] == 15
    assert t["pit"].between(0, 1).all() and t["pit"].notna().all()


def test_summary_counts_the_central_intervals(table):
    t, _ = table
    s = loso_summary(t)
    assert list(s["figures"]) == list(t.groupby(["model_type", "held_out"], sort=False).size())
    g = t[(t["model_type"] == "toxicity") & (t["held_out"] == "rotterdam2019")]["pit"]
    row = s[(s["model_type"] == "toxicity") & (s["held_out"] == "rotterdam2019")].iloc[0]
    assert row["inside_90"] == pytest.approx(np.mean(np.abs(g - 0.5) <= 0.45))
    assert row["inside_50"] <= row["inside_90"] <= row["inside_95"]


def test_a_new_centre_predictive_is_wider_than_the_own_study(table):
    """The held-out figures are predicted for a new centre: the OS medians' intervals are wider
    than the in-sample check's, which uses the study's own fitted effect."""
    from netbayes.checks.survival_ppc import survival_ppc_table

    d = dict(load_posterior("survival-os").all_draws())
    own = survival_ppc_table(d, "os", n_sims=400, study_effect=d["u_study"][:, 0])
    rng = np.random.default_rng(0)
    new = survival_ppc_table(
        d, "os", n_sims=400, study_effect=d["tau"] * rng.standard_normal(d["tau"].shape)
    )
    w = lambda x: x["pi95_eti_upper_months"] - x["pi95_eti_lower_months"]  # noqa: E731
    big = own["n"] >= 50  # small rows' intervals are mostly sampling noise of a few patients
    assert (w(new)[big] > w(own)[big]).all()
    assert w(new).sum() > 1.2 * w(own).sum()


def _stored_fit(mt, held):
    return load_posterior(mt)


def test_the_refits_on_two_dask_workers_give_the_same_table(table):
    """The refits as tasks on a local Dask cluster (netbayes.runner): the same rows, in the same
    order, and the same fit attributes as one after the other; a line per finished refit."""
    pytest.importorskip("distributed")
    cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers needn't import tests
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = leave_one_study_out(fit=_stored_fit, seed=3, workers=2, progress=lines.append)
    pd.testing.assert_frame_equal(t, table[0])
    assert t.attrs == table[0].attrs
    assert len(lines) == 5 and "4 refits to run on a local Dask cluster of 2" in lines[0]
    assert "toxicity without re188pilot" in "".join(lines) and "[4/4," in lines[-1]
    with pytest.raises(ValueError, match="workers=0 is not allowed"):
        leave_one_study_out(fit=_stored_fit, workers=0)


def test_cli_passes_workers_and_scheduler_to_the_refits(table, monkeypatch, capsys):
    """`netbayes validate --leave-one-study-out --workers N / --scheduler ADDRESS`: the values
    reach leave_one_study_out; bad or misplaced values are refused naming the flag."""
    import netbayes.loso as loso
    from netbayes.cli import main

    seen = []

    def fake(**kw):
        seen.append({k: kw.get(k) for k in ("workers", "scheduler")})
        return table[0]

    monkeypatch.setattr(loso, "leave_one_study_out", fake)
    assert main(["validate", "--leave-one-study-out", "--workers", "3"]) == 0
    assert main(["validate", "--leave-one-study-out", "--scheduler", "tcp://h:8786"]) == 0
    assert seen == [
        {"workers": 3, "scheduler": None},
        {"workers": None, "scheduler": "tcp://h:8786"},
    ]
    out = capsys.readouterr().out
    assert "leave one study out" in out
    assert main(["validate", "--leave-one-study-out", "--workers", "2", "--scheduler",
                 "tcp://h:8786"]) == 2  # fmt: skip
    assert "not allowed together" in capsys.readouterr().err
    assert main(["validate", "--workers", "2"]) == 2
    assert "--workers 2 is not allowed here" in capsys.readouterr().err
    assert len(seen) == 2  # neither refused call reached the refits
    for bad, flag in (
        (["--workers", "0"], "--workers"),
        (["--scheduler", "h:8786"], "--scheduler"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["validate", "--leave-one-study-out", *bad])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}" in err and "not" in err, err
