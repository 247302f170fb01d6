"""Published-figure checks as objects: results with their source rows, no PyMC on the path."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from netbayes.checks.base import CHECK_COLUMNS, VALIDATION_COLUMNS, CheckResult, Posteriors
from netbayes.checks.registry import CHECKS
from netbayes.checks.survival_ppc import survival_ppc_table
from netbayes.data import load_table
from netbayes.formulas.toxicity_ppc import toxicity_ppc_table
from netbayes.store import load_posterior
from netbayes.validation import results_table, run_checks


@pytest.fixture(scope="module")
def shipped():
    return {
        "survival_pfs": load_posterior("survival-pfs"),
        "survival_os": load_posterior("survival-os"),
        "toxicity": load_posterior("toxicity"),
    }


@pytest.fixture(scope="module")
def results(shipped):
    return run_checks(**shipped)


def test_every_check_returns_rows_with_their_source_row(results):
    assert [r.name for r in results] == [c.name for c in CHECKS]
    assert [r.n for r in results] == [24, 24, 6, 32, 15]
    sources = load_table("sources")
    keys = set(
        zip(sources["file"].str.removesuffix(".csv"), sources["row_id"].astype(str), strict=True)
    )
    for r in results:
        assert list(r.table.columns) == CHECK_COLUMNS
        assert r.passed and r.sentence().endswith("PASS")
        # every survival figure names its data row, and that row has a provenance entry
        if r.name.startswith(("Table 5", "188Re-HEDP OS")):
            rows = set(zip(r.table["source_table"], r.table["source_row_id"], strict=True))
            assert rows <= keys, rows - keys


def test_a_wrong_posterior_fails_and_says_so(shipped):
    d = shipped["survival_pfs"].all_draws()
    d["alpha2"] = d["alpha2"] + np.log(3.0)  # salvage PFS three times too long
    (res,) = run_checks(survival_pfs=d, checks=[CHECKS[0]])
    assert not res.passed and res.sentence().endswith("FAIL")
    bad = res.failures()
    assert len(bad) > 0 and bad["figure"].str.contains("R-PRRT").any()


def test_check_result_refuses_a_malformed_table():
    with pytest.raises(ValueError, match="expected exactly"):
        CheckResult("x", pd.DataFrame({"check": ["x"]}))


def test_results_table_is_the_validation_table(results):
    t = results_table(results)
    assert len(t) == 101 and t["inside"].all()
    assert "source_table" in results_table(results, keys=True)


def test_the_family_of_the_posterior_drives_the_simulation(shipped):
    """The same draws read as a log-normal posterior give other predictive medians."""
    d = shipped["survival_pfs"].all_draws()
    w = survival_ppc_table(d, "pfs", n_sims=200)
    ln = survival_ppc_table(d, "pfs", n_sims=200, family="lognormal")
    assert (w["row_id"] == ln["row_id"]).all()
    assert not np.allclose(w["predicted_median_months"], ln["predicted_median_months"])
    assert Posteriors(survival_pfs=shipped["survival_pfs"]).family("survival_pfs") == "weibull"


def test_validate_imports_no_pymc_or_pytensor():
    code = (
        "import sys\n"
        "from netbayes.cli import main\n"
        "rc = main(['validate'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pymc', 'pytensor', 'nutpie', 'numba', 'arviz'))\n"
        "print('HEAVY', heavy, rc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY [] 0" in out


def test_validate_a_folder_with_one_fit(tmp_path, shipped):
    """A folder of your own holding only a PFS posterior: its checks run, the others skip;
    an empty folder is refused naming what it expected."""
    import shutil

    from netbayes.store import StoreError
    from netbayes.validation import validation_results

    sp = shipped["survival_pfs"]
    for f in (sp.path, sp.datatree_path, sp.path.parent / "survival-pfs.json"):
        shutil.copy(f, tmp_path / f.name)
    res = validation_results(tmp_path)
    assert [r.name for r in res] == ["Table 5 PFS median"] and res[0].n == 24
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StoreError, match="no stored posterior in"):
        validation_results(empty)


@pytest.fixture(scope="module")
def toxicity_post(shipped):
    return shipped["toxicity"]


def test_toxicity_checks_share_one_simulation_and_carry_source_keys(toxicity_post):
    post = Posteriors(toxicity=toxicity_post)
    t6, re = (c.run(post) for c in CHECKS[3:])
    assert list(t6.table.columns) == CHECK_COLUMNS and t6.n == 32 and re.n == 15
    assert (t6.table["source_table"] == "rotterdam_toxicity").all()
    assert t6.table["source_row_id"].str.match(r"^t6_(contr|retre)_\w+_g[34]$").all()
    assert set(re.table["source_row_id"].str[-2:]) == {"g0", "g1", "g2", "g3", "g4"}
    assert list(post._cache) == ["toxicity_ppc"]  # computed once for both checks
    assert t6.sentence() == f"{'Table 6 grade III/IV counts':<30}  32/32  inside  PASS"


def test_model_ppc_table_delegates_to_the_numpy_check(toxicity_post):
    from netbayes.models.toxicity import ToxicityModel

    a = ToxicityModel().ppc_table(toxicity_post, max_draws=300, seed=3)
    b = toxicity_ppc_table(toxicity_post, max_draws=300, seed=3)
    pd.testing.assert_frame_equal(a, b)
    d = {k: toxicity_post.draws(k) for k in toxicity_post.arrays}
    pd.testing.assert_frame_equal(toxicity_ppc_table(d, max_draws=300, seed=3), b)


def test_check_result_rejects_wrong_columns_and_reports_failures():
    rows = pd.DataFrame({c: [0.0, 0.0] for c in CHECK_COLUMNS})
    rows["check"] = "x"
    rows["inside"] = [True, False]
    r = CheckResult("x", rows)
    assert not r.passed and r.n_inside == 1 and len(r.failures()) == 1
    assert r.sentence().endswith("1/2   inside  FAIL")
    with pytest.raises(ValueError, match=r"table columns=.*expected exactly"):
        CheckResult("x", rows[VALIDATION_COLUMNS])
    with pytest.raises(ValueError, match="expected only the check name 'y'"):
        CheckResult("y", rows)


def test_posteriors_name_errors():
    p = Posteriors(survival_pfs={"k1": np.ones(3)})
    assert p.available() == ("survival_pfs",)
    with pytest.raises(ValueError, match="posterior='pfs'; expected one of survival_pfs"):
        p.get("pfs")
    with pytest.raises(ValueError, match="'toxicity' is None"):
        p.draws("toxicity")
