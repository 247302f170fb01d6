"""The published-cohort loader (docs/published_cohorts.md): layout, defaults, errors.

Every study here is SIMULATED (ids ``sim_*``); the only real numbers are the packaged Rotterdam
Table 5 rows, read through the calibration module.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import netbayes
from netbayes import calibration as C
from netbayes import vocab
from netbayes.calibration.published import (
    SURVIVAL_COLUMNS,
    TOXICITY_COLUMNS,
    PublishedDataError,
    PublishedStudies,
    check_new_studies,
    default_mix,
    load_published,
    rotterdam_as_published,
)
from netbayes.cohorts import Z95

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "published_example.csv"


def _survival(**over) -> pd.DataFrame:
    """Two simulated survival rows of study sim_a (R-PRRT PFS: all + midgut)."""
    d = {
        "study": ["sim_a", "sim_a"],
        "row_id": ["r1", "r2"],
        "endpoint": ["pfs", "pfs"],
        "line": ["R-PRRT", "R-PRRT"],
        "tumour_type": ["all", "midgut"],
        "n": [40, 24],
        "median_months": [15.0, 17.5],
        "ci95_lower_months": [11.0, 12.1],
        "ci95_upper_months": [19.0, 22.9],
    }
    d.update(over)
    return pd.DataFrame(d)


def _toxicity(**over) -> pd.DataFrame:
    d = {
        "study": ["sim_t"],
        "row_id": ["t1"],
        "line": ["R-PRRT"],
        "cell_line": ["platelets"],
        "grade": ["3+"],
        "count": [2],
        "n": [40],
        "planned_gbq": [14.8],
        "prior_gbq": [29.6],
    }
    d.update(over)
    return pd.DataFrame(d)


def _csv(tmp_path: Path, df: pd.DataFrame, name: str = "sim.csv") -> Path:
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


# ---------------------------------------------------------------------------------------------
# layout, defaults, notes
# ---------------------------------------------------------------------------------------------
def test_example_file_loads_with_both_kinds():
    ps = load_published(EXAMPLE)
    assert isinstance(ps, PublishedStudies)
    assert ps.studies == ("sim_a", "sim_b")
    assert tuple(ps.survival.columns) == SURVIVAL_COLUMNS
    assert tuple(ps.toxicity.columns) == TOXICITY_COLUMNS
    assert len(ps.survival) == 5 and len(ps.toxicity) == 2
    s = ps.survival.set_index("row_id")
    assert s.loc["os_all", "group"] == "retreatment"  # default group
    assert np.isnan(s.loc["os_all", "median_months"])  # not reached: adds nothing
    assert s.loc["pfs_rr", "se_source"] == "upper"  # CI clipped at zero
    assert s.loc["pfs_first", "se_source"] == "given"
    assert s.loc["pfs_first", "selection_min_prior_pfs_months"] == 0.0
    t = ps.toxicity
    assert list(t["grade"].astype(str)) == ["3+", "3"]
    assert t["count"].dtype == np.int64 and t["ctcae_version"].iloc[0] == "5.0"


def test_dtypes_and_normalised_mix():
    ps = load_published(_survival(mix_midgut=[30, np.nan], mix_unknown=[10, np.nan]))
    s = ps.survival
    assert s["n"].dtype == np.int64 and s["median_months"].dtype == np.float64
    assert isinstance(s["line"].dtype, pd.CategoricalDtype)
    assert list(s["line"].cat.categories) == list(vocab.LINES)
    assert s["study"].dtype == "string" and s["mix_default"].dtype == bool
    assert s.loc[0, "mix_midgut"] == pytest.approx(0.75)
    assert s.loc[0, "mix_unknown"] == pytest.approx(0.25)
    assert s.loc[0, "mix_foregut"] == 0.0
    assert not s.loc[0, "mix_default"]
    assert s.loc[1, ["mix_midgut", "mix_unknown"]].isna().all()  # a fine-type row: no mix
    mix_cols = [f"mix_{t}" for t in vocab.TUMOUR_TYPES]
    assert s.loc[0, mix_cols].sum() == pytest.approx(1.0)


def test_defaults_and_notes():
    ps = load_published(_survival())
    s = ps.survival
    assert list(s["group"].astype(str)) == ["retreatment", "retreatment"]
    assert (s["cumulative_gbq"] == netbayes.spec.GBQ_REF).all()
    assert (s["selection_min_prior_pfs_months"] == 0.0).all()
    assert list(s["mix_default"]) == [True, False]
    mix = default_mix()
    counts = C.rotterdam.cohort_mix()["I-PRRT/R-PRRT"]
    for t in vocab.TUMOUR_TYPES:
        assert s.loc[0, f"mix_{t}"] == pytest.approx(counts[t] / sum(counts.values()))
        assert mix[t] == pytest.approx(s.loc[0, f"mix_{t}"])
    assert "row sim_a:r1 has no tumour mix: the Rotterdam retreatment mix is assumed" in ps.notes
    assert any("sim_a:r2 has no cumulative_gbq" in n and "44.7 GBq" in n for n in ps.notes)


def test_wald_se_matches_the_cohorts_rule():
    ps = load_published(_survival(ci95_lower_months=[0.0, 12.1], ci95_upper_months=[40.0, 22.9]))
    s = ps.survival
    # 15 - (40 - 15) < 0 and the lower bound is 0: the upper half only
    assert s.loc[0, "se_months"] == pytest.approx((40.0 - 15.0) / Z95)
    assert s.loc[1, "se_months"] == pytest.approx((22.9 - 12.1) / (2 * Z95))
    assert list(s["se_source"].astype(str)) == ["upper", "symmetric"]
    given = load_published(_survival(se_months=[2.0, np.nan])).survival
    assert given.loc[0, "se_months"] == 2.0 and given.loc[0, "se_source"] == "given"


@pytest.mark.parametrize("endpoint", ["pfs", "os"])
def test_rotterdam_becomes_a_study_of_this_kind(endpoint):
    ps = rotterdam_as_published()
    assert ps.studies == (C.rotterdam.STUDY_ID,)
    assert ps.notes == []  # every mix and activity is the paper's
    mine = ps.survival[ps.survival["endpoint"] == endpoint].reset_index(drop=True)
    ref = netbayes.survival_summaries(endpoint)
    assert list(mine["row_id"]) == list(ref["row_id"].astype(str))
    np.testing.assert_allclose(mine["se_months"], ref["se_months"], equal_nan=True)
    assert list(mine["se_source"].astype(str)) == list(ref["se_source"])
    np.testing.assert_array_equal(mine["n"], ref["n"])
    r = mine[(mine["line"] == "R-PRRT") & (mine["group"] == "retreatment")]
    assert (r["selection_min_prior_pfs_months"] == 18.0).all()
    assert (r["cumulative_gbq"] == 44.7).all()
    rr = mine[mine["line"] == "RR-PRRT"]
    assert (rr["selection_min_prior_pfs_months"] == 14.0).all()
    alls = mine[mine["tumour_type"] == "all"]
    mix_cols = [f"mix_{t}" for t in vocab.TUMOUR_TYPES]
    np.testing.assert_allclose(alls[mix_cols].sum(axis=1), 1.0)
    ctrl = alls[alls["group"] == "control"].iloc[0]
    assert ctrl["mix_midgut"] == pytest.approx(63 / 99)


def test_csv_round_trip_equals_dataframe(tmp_path):
    df = _survival(mix_midgut=[30, np.nan], source=["simulated", None])
    from_frame = load_published(df)
    from_csv = load_published(_csv(tmp_path, df))
    pd.testing.assert_frame_equal(from_frame.survival, from_csv.survival)
    pd.testing.assert_frame_equal(from_frame.toxicity, from_csv.toxicity)
    assert from_frame.notes == from_csv.notes and from_frame.studies == from_csv.studies


def test_normalised_output_loads_again_unchanged(tmp_path):
    ps = load_published(EXAMPLE)
    again = load_published(ps.survival)
    pd.testing.assert_frame_equal(again.survival, ps.survival)
    via_csv = load_published(_csv(tmp_path, ps.toxicity))
    pd.testing.assert_frame_equal(via_csv.toxicity, ps.toxicity)


def test_list_of_sources_and_mixed_kinds(tmp_path):
    ps = load_published([_survival(), _csv(tmp_path, _toxicity())])
    assert ps.studies == ("sim_a", "sim_t")
    assert len(ps.survival) == 2 and len(ps.toxicity) == 1
    # a study's survival and toxicity rows may come from two sources of one call
    ps2 = load_published([_survival(), _toxicity(study=["sim_a"])])
    assert ps2.studies == ("sim_a",)
    surv, tox = ps2.rows_of("sim_a")
    assert len(surv) == 2 and len(tox) == 1


def test_comment_lines_keep_line_numbers(tmp_path):
    p = tmp_path / "c.csv"
    body = _survival(n=[40, 0]).to_csv(index=False)
    p.write_text("# simulated\n# second comment\n" + body)
    with pytest.raises(PublishedDataError, match=r"c\.csv, line 5, column 'n': value '0'"):
        load_published(p)


def test_public_api():
    assert netbayes.load_published is load_published
    assert C.load_published is load_published and C.PublishedDataError is PublishedDataError
    assert issubclass(PublishedDataError, ValueError)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_missing_required_column(tmp_path):
    df = _survival().drop(columns="median_months")
    with pytest.raises(
        PublishedDataError, match=r"sim\.csv, column 'median_months': missing required column"
    ):
        load_published(_csv(tmp_path, df))
    with pytest.raises(PublishedDataError, match=r"missing required column 'prior_gbq'"):
        load_published(_toxicity().drop(columns="prior_gbq"))


def test_misspelled_column_is_not_dropped(tmp_path):
    df = _survival().rename(columns={"ci95_upper_months": "ci95_uper_months"})
    with pytest.raises(
        PublishedDataError,
        match=r"sim\.csv, column 'ci95_uper_months': unknown column .*did you mean "
        r"'ci95_upper_months'",
    ):
        load_published(_csv(tmp_path, df))
    with pytest.raises(PublishedDataError, match=r"did you mean 'mix_midgut'"):
        load_published(_survival(mix_midgt=[1.0, np.nan]))


def test_kind_cannot_be_told():
    df = _survival(cell_line=[None, None])
    with pytest.raises(PublishedDataError, match="give a 'kind' column"):
        load_published(df)


@pytest.mark.parametrize(
    ("column", "bad", "allowed"),
    [
        ("endpoint", "PFS", "pfs, os"),
        ("line", "PRRT2", "I-PRRT, R-PRRT"),
        ("group", "treated", "retreatment, control"),
        ("tumour_type", "gastric", "foregut, midgut"),
    ],
)
def test_bad_survival_levels(tmp_path, column, bad, allowed):
    df = _survival(**{column: [bad, bad]})
    with pytest.raises(
        PublishedDataError,
        match=rf"sim\.csv, line 2, column '{column}': value '{bad}' is not allowed; "
        rf"expected one of {allowed}",
    ):
        load_published(_csv(tmp_path, df))


@pytest.mark.parametrize(
    ("column", "bad", "allowed"),
    [("cell_line", "neutrophils", "leucocytes, platelets"), ("grade", "5", "3, 4, 3\\+")],
)
def test_bad_toxicity_levels(column, bad, allowed):
    df = _toxicity(**{column: [bad]}).set_index(pd.Index(["row_a"]))
    with pytest.raises(
        PublishedDataError,
        match=rf"DataFrame, row 'row_a', column '{column}': value '{bad}' .*one of {allowed}",
    ):
        load_published(df)


def test_grade_as_integer_is_accepted():
    assert list(load_published(_toxicity(grade=[4])).toxicity["grade"].astype(str)) == ["4"]


@pytest.mark.parametrize(
    ("column", "bad", "expected"),
    [
        ("n", "forty", "an integer"),
        ("n", "12.5", "an integer"),
        ("n", "0", "an integer >= 1"),
        ("median_months", "inf", "a number \\(finite\\)"),
        ("median_months", "-3", "a number > 0 months"),
        ("median_months", "700", "at most 600 months"),
        ("ci95_upper_months", "abc", "a number"),
        ("se_months", "0", "a number > 0 months"),
        ("cumulative_gbq", "44700", "an activity in GBq, at most 200 \\(this looks like MBq\\)"),
        ("cumulative_gbq", "-1", "an activity >= 0 GBq"),
        ("followup_months", "0", "a number > 0 months"),
        ("selection_min_prior_pfs_months", "-2", "a number >= 0 months"),
    ],
)
def test_bad_numbers_in_a_file(tmp_path, column, bad, expected):
    df = _survival().astype(object)
    df[column] = [df[column].iloc[0] if column in df else None, bad]
    with pytest.raises(
        PublishedDataError,
        match=rf"sim\.csv, line 3, column '{column}': value '{re.escape(bad)}' is not "
        rf"allowed; expected {expected}",
    ) as err:
        load_published(_csv(tmp_path, df))
    assert (err.value.source, err.value.row, err.value.column) == ("sim.csv", 3, column)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("planned_gbq", 7400.0, "looks like MBq"),
        ("prior_gbq", np.nan, "this column is required"),
        ("count", -1, "an integer >= 0"),
        ("n", True, "True is not 1"),
        ("count", np.True_, "True is not 1"),
        ("planned_gbq", float("inf"), "finite"),
    ],
)
def test_bad_numbers_in_a_frame(column, value, message):
    df = _toxicity().astype(object)
    df[column] = [value]
    with pytest.raises(
        PublishedDataError, match=rf"DataFrame, row 0, column '{column}'.*{message}"
    ):
        load_published(df)


@pytest.mark.parametrize(
    "value",
    [
        pd.Timedelta(days=300),
        pd.Timestamp("2020-01-01"),
        dt.timedelta(days=30),
        dt.date(2020, 1, 1),
    ],
)
def test_times_are_rejected_not_converted(value):
    df = _survival().astype(object)
    df["median_months"] = [value, 17.5]
    with pytest.raises(PublishedDataError, match=r"row 0, column 'median_months'.*not converted"):
        load_published(df)


def test_timedelta_column_is_rejected():
    df = _survival(followup_months=pd.to_timedelta([300, 200], unit="D"))
    with pytest.raises(PublishedDataError, match=r"column 'followup_months'.*not a time"):
        load_published(df)


def test_bool_column_is_not_a_number(tmp_path):
    with pytest.raises(PublishedDataError, match=r"column 'mix_default': value 1 .*1 is not True"):
        load_published(_survival(mix_default=[1, 0]))
    with pytest.raises(PublishedDataError, match=r"line 2, column 'mix_default': value '1'"):
        load_published(_csv(tmp_path, _survival(mix_default=["1", "0"])))
    ok = load_published(_csv(tmp_path, _survival(mix_default=["true", "false"])))
    assert list(ok.survival["mix_default"]) == [True, False]


def test_ci_rules(tmp_path):
    with pytest.raises(
        PublishedDataError,
        match=r"sim\.csv, line 3, column 'ci95_upper_months': median_months 17\.5 exceeds "
        r"ci95_upper_months 16",
    ):
        load_published(_csv(tmp_path, _survival(ci95_upper_months=[19.0, 16.0])))
    with pytest.raises(PublishedDataError, match=r"line 2, column 'ci95_lower_months'.* exceeds"):
        load_published(_csv(tmp_path, _survival(ci95_lower_months=[16.0, 12.1])))
    with pytest.raises(PublishedDataError, match="give both or neither"):
        load_published(_survival(ci95_upper_months=[np.nan, 22.9]))
    with pytest.raises(PublishedDataError, match="a CI is given without a median"):
        load_published(_survival(median_months=[np.nan, 17.5]))


def test_mix_rules():
    with pytest.raises(
        PublishedDataError,
        match=r"DataFrame, row 1, column 'mix_midgut': a tumour mix is given on a 'midgut' row",
    ):
        load_published(_survival(mix_midgut=[30, 24]))
    with pytest.raises(PublishedDataError, match=r"row 0, column 'mix_midgut': .*all zero"):
        load_published(_survival(mix_midgut=[0, np.nan], mix_unknown=[0, np.nan]))
    with pytest.raises(PublishedDataError, match=r"column 'mix_bronchial': value -1"):
        load_published(_survival(mix_bronchial=[-1, np.nan]))


def test_duplicate_row(tmp_path):
    with pytest.raises(
        PublishedDataError,
        match=r"sim\.csv, line 3, column 'row_id': duplicate row sim_a:r1 \(first at sim\.csv, "
        r"line 2\)",
    ):
        load_published(_csv(tmp_path, _survival(row_id=["r1", "r1"])))
    # the same row id in two studies is fine; across sources of one call it is not
    load_published(_survival(study=["sim_a", "sim_b"], row_id=["r1", "r1"]))
    with pytest.raises(PublishedDataError, match="duplicate row sim_t:t1"):
        load_published([_toxicity(), _toxicity()])


def test_count_exceeds_n():
    with pytest.raises(
        PublishedDataError, match=r"DataFrame, row 0, column 'count': count 41 exceeds n 40"
    ):
        load_published(_toxicity(count=[41]))


def test_control_only_on_first_line(tmp_path):
    df = _survival(group=["control", "retreatment"])
    with pytest.raises(
        PublishedDataError,
        match=r"sim\.csv, line 2, column 'group': value 'control' is not allowed.*only on I-PRRT",
    ):
        load_published(_csv(tmp_path, df))


def test_selection_rule_on_first_line():
    df = _survival(line=["I-PRRT", "I-PRRT"], selection_min_prior_pfs_months=[18.0, np.nan])
    with pytest.raises(PublishedDataError, match="I-PRRT has no previous line"):
        load_published(df)


def test_column_of_the_other_kind_must_be_empty():
    df = _survival(kind=["survival", "survival"], cell_line=["platelets", None])
    with pytest.raises(
        PublishedDataError, match=r"row 0, column 'cell_line': column 'cell_line' belongs to tox"
    ):
        load_published(df)


def test_text_and_required_cells():
    with pytest.raises(PublishedDataError, match=r"row 1, column 'study': value nan"):
        load_published(_survival(study=["sim_a", np.nan]))
    with pytest.raises(PublishedDataError, match=r"column 'row_id': value 1\.5 .*expected text"):
        load_published(_survival(row_id=[1.5, 2.5]))


def test_bad_sources(tmp_path):
    with pytest.raises(PublishedDataError, match=r"nope\.csv: file not found"):
        load_published(tmp_path / "nope.csv")
    with pytest.raises(TypeError, match="expected a CSV path"):
        load_published(42)  # type: ignore[arg-type]
    with pytest.raises(PublishedDataError, match=r"^DataFrame: has no data rows"):
        load_published(_survival().iloc[:0])
    p = tmp_path / "dup.csv"
    p.write_text("study,row_id,n,n\n")
    with pytest.raises(PublishedDataError, match=r"dup\.csv: duplicate column"):
        load_published(p)
    with pytest.raises(PublishedDataError, match=r"^my cohorts, row 1, column 'n'"):
        load_published(_survival(n=[40, 0]), name="my cohorts")


def test_check_new_studies():
    a = load_published(_survival())
    b = load_published(_toxicity())
    assert check_new_studies([a, b], C.STUDIES) == ("sim_a", "sim_t")
    with pytest.raises(PublishedDataError, match="study 'rotterdam2019' is already present"):
        check_new_studies(rotterdam_as_published(), C.STUDIES)
    with pytest.raises(PublishedDataError, match="study 'sim_a' is given twice"):
        check_new_studies([a, a], C.STUDIES)


def test_the_doc_matches_the_loader():
    doc = (EXAMPLE.parents[1] / "published_cohorts.md").read_text(encoding="utf-8")
    block = doc.split("```csv\n", 1)[1].split("```", 1)[0]
    assert block == EXAMPLE.read_text(encoding="utf-8")
    for c in {*SURVIVAL_COLUMNS, *TOXICITY_COLUMNS, "kind"}:
        assert f"`{c}`" in doc, c
    for note in load_published(EXAMPLE).notes:
        assert note in doc
