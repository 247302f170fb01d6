"""Published figures against posterior predictive intervals (``netbayes validate``)."""

from __future__ import annotations

import numpy as np
import pytest

from netbayes.store import load_posterior
from netbayes.validation import VALIDATION_COLUMNS, validation_table


@pytest.fixture(scope="module")
def os_draws():
    return load_posterior("survival-os").all_draws()


@pytest.fixture(scope="module")
def pfs_draws():
    return load_posterior("survival-pfs").all_draws()


def test_every_survival_figure_is_listed_with_its_source(pfs_draws, os_draws):
    t = validation_table(pfs_draws, os_draws)
    assert list(t.columns) == VALIDATION_COLUMNS
    counts = t["check"].value_counts()
    assert counts["Table 5 PFS median"] == 24 and counts["Table 5 OS median"] == 24
    assert counts["188Re-HEDP OS"] == 6
    assert t["source"].str.match(r"^(rotterdam2019|re188pilot): Table \d").all()
    assert (t["pi95_lower"] <= t["predicted_median"]).all()
    assert (t["predicted_median"] <= t["pi95_upper"]).all()
    # held-out rows are exactly the "all tumours" medians
    assert set(t.loc[~t["in_likelihood"], "figure"].str.extract(r" (\w+) \(n=")[0]) == {"all"}
    # the shipped fits reproduce every published median (benchmarks/results: 24/24 each)
    assert t["inside"].all()


def test_a_wrong_posterior_fails_the_checks(pfs_draws):
    """Salvage PFS three times too long: the R-PRRT medians must fall outside."""
    bad = dict(pfs_draws)
    bad["alpha2"] = bad["alpha2"] + np.log(3.0)
    t = validation_table(bad)
    r = t[t["figure"].str.contains("R-PRRT") & ~t["figure"].str.contains("RR-PRRT")]
    assert (~r["inside"]).sum() >= 4


def test_needs_a_posterior():
    with pytest.raises(ValueError, match="at least one posterior"):
        validation_table()


def test_source_keys_name_the_data_row(os_draws):
    t = validation_table(survival_os=os_draws, keys=True)
    assert list(t.columns[-2:]) == ["source_table", "source_row_id"]
    assert set(t["source_table"]) == {"rotterdam_survival", "re188_patients"}
    assert (
        t.loc[t["source_table"] == "rotterdam_survival", "source_row_id"]
        .str.match(r"^t5_os_")
        .all()
    )
