"""Loaders: typed columns, vocabularies, derived views, and clear errors for bad data files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import netbayes
from netbayes import vocab
from netbayes.cohorts import Z95, calibration_summary, re188_cycle_grade_counts, survival_summaries
from netbayes.data import SCHEMAS, DataFormatError, data_dir, list_tables, load_table


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the data folder that a test may corrupt."""
    dst = tmp_path / "data"
    shutil.copytree(data_dir(), dst)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# typing and vocabularies
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_table_loads_with_declared_types(name):
    df = load_table(name)
    assert len(df) > 0
    for col, spec in SCHEMAS[name].columns.items():
        dtype = df[col].dtype
        if spec.kind == "category":
            assert isinstance(dtype, pd.CategoricalDtype)
            assert tuple(dtype.categories) == spec.levels
            assert df[col].notna().all() or spec.nullable
        elif spec.kind == "int":
            assert pd.api.types.is_integer_dtype(dtype), (col, dtype)
        elif spec.kind == "float":
            assert dtype == np.float64, (col, dtype)
        else:
            assert pd.api.types.is_string_dtype(dtype), (col, dtype)


def test_tumour_type_vocabulary():
    s = load_table("rotterdam_survival")
    assert list(s["tumour_type"].cat.categories) == [*vocab.TUMOUR_TYPES, "all"]
    p = load_table("re188_patients")
    assert list(p["tumour_type"].cat.categories) == list(vocab.PATIENT_TUMOUR_TYPES)
    assert vocab.fine_levels("gi_non_pancreatic") == ("foregut", "midgut", "hindgut")
    assert vocab.fine_levels("midgut") == ("midgut",)
    with pytest.raises(ValueError, match=r"tumour_type='colon'.*allowed: foregut"):
        vocab.fine_levels("colon")


def test_load_returns_a_copy():
    a = load_table("rotterdam_survival")
    a.loc[0, "n"] = -1
    assert load_table("rotterdam_survival").loc[0, "n"] == 168


def test_unknown_table_name():
    with pytest.raises(KeyError, match="unknown table 'nope'; known tables: rotterdam_survival"):
        load_table("nope")


def test_list_tables_describes_every_schema():
    t = list_tables()
    assert list(t["table"]) == list(SCHEMAS)
    assert t["description"].str.len().min() > 20


# ----------------------------------------------------------------------------------------------
# derived views
# ----------------------------------------------------------------------------------------------


def test_survival_summaries_wald_se():
    s = survival_summaries("pfs").set_index("row_id")
    r = s.loc["t5_pfs_retre_rprrt_all"]
    assert r.se_source == "symmetric"
    assert np.isclose(r.se_months, (16.9 - 12.4) / (2 * Z95))
    assert s.loc["t5_pfs_retre_rprrt_foregut", "se_source"] == "missing"
    assert np.isnan(s.loc["t5_pfs_retre_rprrt_foregut", "se_months"])
    o = survival_summaries("os").set_index("row_id").loc["t5_os_retre_rprrt_bronchial"]
    assert o.se_source == "upper" and np.isclose(o.se_months, (52.5 - 26.2) / Z95)
    with pytest.raises(ValueError, match="endpoint='follow_up' is not allowed"):
        survival_summaries("follow_up")


def test_re188_cycle_grade_counts():
    c = re188_cycle_grade_counts()
    assert list(c.index) == list(vocab.CELL_LINES)
    assert c.loc["leucocytes"].tolist() == [6, 4, 1, 0, 0, 11]
    assert c.loc["platelets"].tolist() == [3, 4, 2, 2, 0, 11]
    assert c.loc["haemoglobin"].tolist() == [0, 7, 3, 1, 0, 11]
    grades = c[[f"grade_{g}" for g in range(5)]].sum(axis=1)
    assert (grades == c["n_cycles"]).all()


def test_calibration_summary_tables():
    s = calibration_summary()
    assert set(s) == {"cohorts", "pfs_after_retreatment", "toxicity_grade3plus", "re188_patients"}
    pfs = s["pfs_after_retreatment"]
    assert len(pfs) == 14 and set(pfs["line"]) == {"R-PRRT", "RR-PRRT"}
    tox = s["toxicity_grade3plus"].set_index("phase")
    assert tox.loc["R-PRRT", "any_gradeIII"] == 12
    assert tox.loc["control (I-PRRT)", "platelets_gradeIV"] == 5
    assert len(s["re188_patients"]) == 6
    # cohort sizes are derived from the tables: Table 5 (168, 13, 99), Table 6 (181, 230)
    assert s["cohorts"]["n"].tolist() == [168, 13, 99, 181, 230, 6]


# ----------------------------------------------------------------------------------------------
# bad data files: the error names the file, the line and the column
# ----------------------------------------------------------------------------------------------


def test_bad_number(data_copy):
    _edit(data_copy / "rotterdam_survival.csv", ",14.7,8.9,20.4", ",14.7x,8.9,20.4")
    with pytest.raises(DataFormatError) as e:
        load_table("rotterdam_survival", data_copy)
    msg = str(e.value)
    assert "rotterdam_survival.csv" in msg and "column 'median_months'" in msg
    assert "'14.7x'" in msg and "expected a number" in msg
    assert e.value.row == 10 and e.value.column == "median_months"  # header is line 1


def test_unknown_tumour_type(data_copy):
    _edit(data_copy / "re188_patients.csv", "2,43,m,P,pancreatic", "2,43,m,P,pancreas")
    with pytest.raises(DataFormatError, match=r"line 3, column 'tumour_type'.*'pancreas'.*one of"):
        load_table("re188_patients", data_copy)


def test_negative_count(data_copy):
    _edit(data_copy / "rotterdam_toxicity.csv", "any,3,30,13.0", "any,3,-30,13.0")
    with pytest.raises(DataFormatError, match=r"column 'count': value '-30'.*>= 0"):
        load_table("rotterdam_toxicity", data_copy)


def test_non_integer_count(data_copy):
    _edit(data_copy / "rotterdam_toxicity.csv", "any,3,30,13.0", "any,3,30.5,13.0")
    with pytest.raises(DataFormatError, match=r"column 'count': value '30.5'.*an integer"):
        load_table("rotterdam_toxicity", data_copy)


def test_missing_required_value(data_copy):
    _edit(
        data_copy / "rotterdam_survival.csv",
        "pfs,retreatment,R-PRRT,all,168,",
        "pfs,,R-PRRT,all,168,",
    )
    with pytest.raises(DataFormatError, match=r"line 3, column 'group'.*may not be empty"):
        load_table("rotterdam_survival", data_copy)


def test_row_rule_ci_order(data_copy):
    _edit(data_copy / "rotterdam_survival.csv", ",14.6,12.4,16.9", ",14.6,16.9,12.4")
    with pytest.raises(DataFormatError, match=r"line 3: row rule violated: ci95_lower_months"):
        load_table("rotterdam_survival", data_copy)


def test_row_rule_count_exceeds_n(data_copy):
    _edit(data_copy / "re188_toxicity_per_cycle.csv", "leucocytes,1,4,11", "leucocytes,1,14,11")
    with pytest.raises(DataFormatError, match="count must not exceed n_cycles"):
        load_table("re188_toxicity_per_cycle", data_copy)


def test_renamed_column(data_copy):
    _edit(data_copy / "rotterdam_survival.csv", "median_months", "median")
    with pytest.raises(
        DataFormatError, match=r"missing \['median_months'\], unexpected \['median'\]"
    ):
        load_table("rotterdam_survival", data_copy)


def test_duplicate_key(data_copy):
    p = data_copy / "rotterdam_selection.csv"
    lines = p.read_text(encoding="utf-8").splitlines()
    p.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    with pytest.raises(
        DataFormatError, match=r"line 4, column 'row_id'.*duplicate key 'sel_rprrt'"
    ):
        load_table("rotterdam_selection", data_copy)


def test_missing_file(data_copy):
    (data_copy / "rotterdam_doses.csv").unlink()
    with pytest.raises(DataFormatError, match=r"rotterdam_doses\.csv: file not found"):
        load_table("rotterdam_doses", data_copy)


def test_empty_file(data_copy):
    p = data_copy / "rotterdam_doses.csv"
    p.write_text(p.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="has no data rows"):
        load_table("rotterdam_doses", data_copy)


def test_percentage_out_of_range(data_copy):
    _edit(data_copy / "rotterdam_myeloid.csv", "any,8,3.5", "any,8,350")
    with pytest.raises(DataFormatError, match=r"column 'pct_printed': value '350'.*<= 100"):
        load_table("rotterdam_myeloid", data_copy)


def test_data_format_error_is_a_value_error():
    assert issubclass(DataFormatError, ValueError)


# ----------------------------------------------------------------------------------------------
# installation: data ships with the package and loads from any working directory
# ----------------------------------------------------------------------------------------------


def test_data_loads_from_another_working_directory(tmp_path):
    code = (
        "import netbayes, pathlib; "
        "d = netbayes.load_table('rotterdam_survival'); "
        "from netbayes.data import data_dir; "
        "print(len(d), (data_dir() / 'AUDIT.md').is_file())"
    )
    env = dict(os.environ)
    if env.get("PYTHONPATH"):  # a relative PYTHONPATH (dev runs) must survive the cd
        env["PYTHONPATH"] = os.pathsep.join(
            str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep)
        )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["52", "True"]


def test_installed_package_uses_packaged_data():
    """Under a non-editable install the data come from site-packages, not the checkout."""
    pkg = Path(netbayes.__file__).resolve().parent
    repo_src = Path(__file__).resolve().parents[1] / "src"
    if repo_src in pkg.parents:
        pytest.skip("running from a source checkout (editable/PYTHONPATH), not an installed wheel")
    assert data_dir() == pkg / "_data"
    assert {f"{n}.csv" for n in SCHEMAS} <= {p.name for p in data_dir().iterdir()}


def test_cli_summary_and_data(capsys):
    from netbayes.cli import main

    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "Median PFS after retreatment" in out and "14.6" in out and "N/A" in out
    assert main(["data", "rotterdam_selection", "--csv"]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0]
        == "row_id,eligible_for,criterion_endpoint,measured_from_line,min_months"
    )
    assert main(["data", "nope"]) == 2
    assert "unknown table 'nope'" in capsys.readouterr().err


def test_the_package_is_typed_and_licensed():
    """PEP 561 marker next to the modules (so type checkers read our hints), the licence text
    at the root and in the sdist, and the classifiers that say both (issue 18, deliverable 6)."""
    import tomllib

    assert (Path(netbayes.__file__).resolve().parent / "py.typed").is_file()
    root = Path(__file__).resolve().parents[1]
    assert (root / "LICENSE").read_text().startswith("MIT License")
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["license"] == {"text": "MIT"}
    cls = meta["project"]["classifiers"]
    assert "License :: OSI Approved :: MIT License" in cls and "Typing :: Typed" in cls
    assert "LICENSE" in meta["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
