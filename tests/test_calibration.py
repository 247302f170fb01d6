"""The calibration registry: typed designs from the two papers, the seam models take."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from netbayes import calibration as C
from netbayes import vocab

SRC = Path(__file__).resolve().parents[1] / "src" / "netbayes"
# modules allowed to read data/ tables: the loader, the derived views, the study modules, the
# `netbayes data` command (prints a table) and the check that cites data/sources.csv
READERS = {"data.py", "cohorts.py", "cli.py", "checks/base.py"}
# still reading tables directly; the list may only shrink (issue 14, calibration registry)
PENDING: set[str] = set()


def _calls_load_table(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(n, ast.Call)
        and (
            (isinstance(n.func, ast.Name) and n.func.id == "load_table")
            or (isinstance(n.func, ast.Attribute) and n.func.attr == "load_table")
        )
        for n in ast.walk(tree)
    )


def test_only_the_study_modules_read_tables():
    readers = {
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if _calls_load_table(p) and not str(p.relative_to(SRC)).startswith("calibration/")
    }
    assert readers - READERS == PENDING


def test_survival_design_pieces_and_sources():
    cal = C.survival_calibration("os")
    assert cal.studies == ("rotterdam2019", "re188pilot")
    assert cal.threshold("R-PRRT") == 18.0 and cal.threshold("RR-PRRT") == 14.0
    assert cal.selection["RR-PRRT"].after == "R-PRRT"
    assert cal.selection["R-PRRT"].source == "rotterdam_selection:sel_rprrt"
    assert (cal.spearman.spearman, cal.spearman.n) == (0.325, 168)
    # the correlation's tumour-type mix is the R-PRRT rows' n (Table 5): 168 patients
    assert cal.spearman_type_n.sum() == 168
    (re,) = cal.individual_for("os")
    assert re.line == "188Re-HEDP" and len(re.time_months) == 6
    np.testing.assert_allclose(re.type_weights.sum(axis=1), 1.0)
    # a "GI" patient mixes over foregut/midgut/hindgut only
    gi = re.type_weights[0]
    assert set(np.flatnonzero(gi)) == {
        vocab.TUMOUR_TYPES.index(t) for t in vocab.fine_levels("gi_non_pancreatic")
    }
    assert C.survival_calibration("pfs").individual == ()


def test_default_activities_follow_the_dose_table():
    assert C.default_activities("R-PRRT") == (29.9, 14.9)
    assert C.default_activities("I-PRRT") == (0.0, 29.9)
    prior, planned = C.default_activities("188Re-HEDP")
    assert 29.6 <= prior <= 96.7 and 2.8 <= planned <= 7.8


def test_the_model_takes_its_design_from_the_calibration():
    """A changed design reaches the model: the seam issue 15 adds studies through."""
    from netbayes.models.survival import SurvivalModel

    cal = C.survival_calibration("pfs")
    rule = replace(cal.selection["R-PRRT"], min_months=12.0)
    other = replace(
        cal,
        selection={**cal.selection, "R-PRRT": rule},
        cumulative_gbq={"R-PRRT": 40.0, "RR-PRRT": 55.0},
    )
    m = SurvivalModel("pfs", calibration=other)
    assert m.threshold_r == 12.0 and m.gbq == {"R-PRRT": 40.0, "RR-PRRT": 55.0}
    with pytest.raises(KeyError):
        other.threshold("I-PRRT")
