"""``netbayes predict`` and ``netbayes fit`` on injected posteriors (no MCMC)."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
from test_predict import fake_survival, fake_toxicity
from test_store import SETTINGS, fake_fit

from netbayes import store
from netbayes.cli import main

ARGS = [
    "predict",
    "--tumour-type",
    "midgut",
    "--prior-pfs",
    "30",
    "--prior-gbq",
    "29.9",
    "--planned-gbq",
    "14.9",
    "--line",
    "R-PRRT",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for mt, d in (
        ("survival-pfs", fake_survival(0, 400)),
        ("survival-os", fake_survival(1, 400, os=True)),
        ("toxicity", fake_toxicity(2, 400)),
    ):
        store.save_posterior(
            fake_fit(d), mt, variables=list(d), priors={}, sampler_settings=SETTINGS, folder=folder
        )
    return folder


def test_predict_table(models, capsys):
    assert main([*ARGS, "--models-dir", str(models)]) == 0
    out, err = capsys.readouterr()
    assert "Median PFS, months" in out
    assert "P(PFS > 12 months)" in out and "P(PFS > 24 months)" in out
    for line in ("leucocytes", "platelets", "haemoglobin", "any"):
        assert f"P(grade >= III), {line}" in out
    assert "95% ETI" in out
    assert "median PFS after R-PRRT" in out
    assert "midgut, R-PRRT" in out
    assert err == ""


def _check_est(e: dict, prob: bool) -> None:
    assert set(e) == {"median", "mean", "eti95_lower", "eti95_upper"}
    assert all(math.isfinite(v) for v in e.values())
    assert e["eti95_lower"] <= e["median"] <= e["eti95_upper"]
    if prob:
        assert 0.0 <= e["eti95_lower"] and e["eti95_upper"] <= 1.0


def test_predict_json_schema(models, capsys):
    assert main([*ARGS, "--models-dir", str(models), "--json", "--times", "6", "12", "36"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "netbayes.predict/2"
    assert set(doc) == {
        "schema",
        "netbayes_version",
        "endpoint",
        "centre",
        "interval",
        "posteriors",
        "patients",
        "prior_share",  # issue 16: the prior-dominated parameters (docs/prior_share.md)
    }
    assert doc["prior_share"]["sd_ratio_threshold"] == 0.7
    assert doc["centre"]["choice"] == "new" and doc["centre"]["meaning"]
    assert doc["endpoint"] == "pfs"
    assert doc["interval"] == {
        "kind": "eti",
        "prob": 0.95,
        "columns": ["eti95_lower", "eti95_upper"],
    }
    assert doc["posteriors"]["survival"]["model_type"] == "survival-pfs"
    assert doc["posteriors"]["survival"]["draws"] == 200 * 2
    assert doc["posteriors"]["toxicity"]["model_type"] == "toxicity"
    (p,) = doc["patients"]
    assert p["input"] == {
        "tumour_type": "midgut",
        "line": "R-PRRT",
        "prior_pfs_months": 30.0,
        "prior_gbq": 29.9,
        "planned_gbq": 14.9,
    }
    assert p["extrapolation"] == []
    _check_est(p["median_months"], prob=False)
    assert [g["t_months"] for g in p["p_event_free"]] == [6.0, 12.0, 36.0]
    for g in p["p_event_free"]:
        _check_est({k: v for k, v in g.items() if k != "t_months"}, prob=True)
    probs = [g["median"] for g in p["p_event_free"]]
    assert probs == sorted(probs, reverse=True)
    assert set(p["p_grade3plus"]) == {"leucocytes", "platelets", "haemoglobin", "any"}
    for e in p["p_grade3plus"].values():
        _check_est(e, prob=True)


def test_predict_os_and_no_toxicity(models, capsys):
    assert main([*ARGS, "--models-dir", str(models), "--json", "--endpoint", "os",
                 "--no-toxicity"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    p = doc["patients"][0]
    assert doc["endpoint"] == "os" and "median_months" in p and "p_event_free" in p
    assert p["p_grade3plus"] is None and doc["posteriors"]["toxicity"] is None


def test_predict_warns_on_stderr(models, capsys):
    args = [a if a != "30" else "12" for a in ARGS]
    assert main([*args, "--models-dir", str(models), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "warning: the prediction extrapolates: prior_pfs_months=12" in err
    assert "18-month" in json.loads(out)["patients"][0]["extrapolation"][0]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (["--tumour-type", "colon"], "--tumour-type='colon' is not allowed"),
        (["--line", "X"], "--line='X' is not allowed"),
        (["--planned-gbq", "7400"], "--planned-gbq=7400.0 is not allowed"),
        (["--interval", "2"], "--interval=2.0 is not allowed"),
        (["--times", "12", "-1"], "--times=[12.0, -1.0] is not allowed"),  # the flag, not t_probs
        (["--times", "nan"], "--times=[nan] is not allowed"),
        (["--prior-pfs", "0.01"], "--prior-pfs=0.01 is not allowed"),
        (["--centre", "lyon"], "--centre='lyon' is not allowed"),
        (["--rmst", "24", "0"], "--rmst=[24.0, 0.0] is not allowed"),
        (["--rmst", "-3"], "--rmst=[-3.0] is not allowed"),
    ],
)
def test_predict_bad_input_exit_2(models, capsys, change, match):
    """Errors name the flag the user typed, never the library keyword (issue 18)."""
    assert main([*ARGS, *change, "--models-dir", str(models)]) == 2
    err = capsys.readouterr().err
    assert match in err
    for kw in ("tumour_type=", "planned_gbq=", "prior_pfs_months=", "prob=", "centre="):
        assert not re.search(rf"(?<![\w-]){kw}", err), kw


def test_predict_missing_prior_pfs_names_the_flag(models, capsys):
    args = [a for a in ARGS]
    i = args.index("--prior-pfs")
    del args[i : i + 2]
    assert main([*args, "--models-dir", str(models)]) == 2
    err = capsys.readouterr().err
    assert "netbayes: error: --prior-pfs is missing; expected a number of months" in err
    assert "None" not in err


def test_flag_names_leaves_other_words_alone():
    from netbayes.cli import flag_names

    msg = "patients[0].planned_gbq=3 and baseline_line=2 and line='X' is not allowed"
    assert flag_names(msg) == (
        "patients[0].planned_gbq=3 and baseline_line=2 and --line='X' is not allowed"
    )


def test_predict_new_type_population(models, capsys):
    args = [*ARGS, "--tumour-type", "colon", "--new-type", "population", "--json"]
    assert main([*args, "--models-dir", str(models)]) == 0
    out, err = capsys.readouterr()
    assert "population" in err
    assert json.loads(out)["patients"][0]["input"]["tumour_type"] == "colon"


def test_predict_missing_posteriors_say_what_to_do(tmp_path, capsys):
    assert main([*ARGS, "--models-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "netbayes fit --model survival-pfs" in err


@pytest.mark.parametrize(
    ("card", "match"),
    [
        ("[" * 100_000, "is not valid JSON"),
        ({"draws_file": "x" * 300}, "draws_file='xxx"),
        ({"variables": None}, "variables=None is not allowed"),
        ({"calibration": {"planned_gbq": {}}}, "calibration="),
    ],
)
def test_predict_corrupt_store_is_a_clean_error(models, tmp_path, capsys, card, match):
    """A malformed model card: one line on standard error, exit status 2, no traceback."""
    import shutil

    for f in models.iterdir():
        shutil.copy(f, tmp_path / f.name)
    js = tmp_path / "survival-pfs.json"
    if isinstance(card, str):
        js.write_text(card)
    else:
        edited = json.loads(js.read_text()) | card
        edited["card_sha256"] = store.card_hash(edited)  # re-signed: the field's check is hit
        js.write_text(json.dumps(edited))
    assert main([*ARGS, "--models-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("netbayes: error: ") and match in err
    assert "netbayes fit --model survival-pfs" in err and "Traceback" not in err


def test_file_system_errors_are_clean(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["report", "--out", str(blocker / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netbayes: error: ") and str(blocker) in err


def test_fit_wiring(monkeypatch, tmp_path, capsys):
    """`netbayes fit` passes its options to the store (the MCMC itself is not run here)."""
    calls = []

    def fake_fit_default(mt, **kw):
        calls.append((mt, kw))
        d = fake_toxicity(0, 20) if mt == "toxicity" else fake_survival(0, 20, os=True)
        path = store.save_posterior(
            fake_fit(d), mt, variables=list(d), priors={}, sampler_settings=SETTINGS,
            folder=kw["folder"], overwrite=True,  # as fit_default: regenerating replaces
        )  # fmt: skip
        return path, fake_fit(d)

    monkeypatch.setattr(store, "fit_default", fake_fit_default)
    args = ["fit", "--model", "survival-os", "toxicity", "--draws", "10", "--seed", "5"]
    assert main([*args, "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert [c[0] for c in calls] == ["survival-os", "toxicity"]
    kw = calls[0][1]
    assert kw["draws"] == 10 and kw["seed"] == 5 and kw["chains"] == 4 and kw["tune"] == 1000
    assert kw["progress"] is False and Path(kw["folder"]) == tmp_path
    assert "[1/2] survival-os" in out and "[2/2] toxicity" in out
    assert (tmp_path / "toxicity.json").is_file()
    again = ["fit", "--model", "all", "--out", str(tmp_path), "--no-progress"]
    assert main(again) == 2  # a posterior already there: replaced only with --force
    assert "pass --force to replace it" in capsys.readouterr().err and len(calls) == 2
    assert main([*again, "--force"]) == 0
    assert [c[0] for c in calls[2:]] == list(store.MODEL_TYPES)


def test_summary_and_data_still_work(capsys):
    assert main(["summary"]) == 0
    assert "Cohorts" in capsys.readouterr().out
    assert main(["data", "rotterdam_selection", "--csv"]) == 0
    assert "min_months" in capsys.readouterr().out


def test_predict_help_documents_the_json_schema(capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "netbayes.predict/2" in out and '"p_grade3plus"' in out and "eti95_lower" in out


# ----------------------------------------------------------------------------------------------
# validate and report (the shipped posteriors)
# ----------------------------------------------------------------------------------------------
def test_validate_passes_on_the_shipped_posteriors(tmp_path, capsys):
    rc = main(["validate", "--in-sample", "--csv", str(tmp_path / "v.csv")])
    out = capsys.readouterr().out
    assert rc == 0 and "FAIL" not in out and "IN-SAMPLE" in out
    for check in ("Table 5 PFS median", "Table 6 grade III/IV counts", "188Re per-cycle grades"):
        assert check in out
    import pandas as pd

    t = pd.read_csv(tmp_path / "v.csv")
    assert f"{int(t['inside'].sum())}/{len(t)} figures inside" in out


def test_validate_fails_loudly_on_a_wrong_posterior(tmp_path, capsys, monkeypatch):
    """A posterior with salvage PFS three times too long: exit 1 and the failures listed."""
    import numpy as np

    from netbayes import validation

    real = validation.run_checks

    def shifted(survival_pfs=None, survival_os=None, toxicity=None, **kw):
        d = survival_pfs.all_draws()
        d["alpha2"] = d["alpha2"] + np.log(3.0)
        return real(d, survival_os, toxicity, **kw)

    monkeypatch.setattr(validation, "run_checks", shifted)
    rc = main(["validate", "--in-sample"])
    out = capsys.readouterr().out
    assert rc == 1 and "FAIL" in out and "OUTSIDE PFS retreatment R-PRRT" in out


def test_report_writes_tables_and_plots(shipped_report):
    # `netbayes report --out DIR` on the shipped posteriors, end to end, run once per session
    # for the tests that need it (conftest)
    rep = shipped_report.folder
    assert shipped_report.rc == 0
    files = {p.name for p in rep.iterdir()}
    for stem in ("validation", "parameters_survival-pfs", "parameters_toxicity"):
        assert {f"{stem}.md", f"{stem}.tex", f"{stem}.csv"} <= files
    assert {"validation.png", "forest_median_pfs.png", "toxicity_risk.png"} <= files
    md = (rep / "parameters_survival-pfs.md").read_text()
    assert "| z2[midgut] |" in md and "eti95_lower" in md and "max R-hat" in md
    # issue 18: natural-scale summaries with per-row convergence, the patient's curve
    assert {"survival_curve_pfs.png", "hazard_pfs.png", "rmst_pfs.png"} <= files
    assert {"validation_table_5_pfs_median.png", "validation_188re_hedp_os.png"} <= files
    for m in ("survival-pfs", "survival-os", "toxicity"):
        assert {f"summary_{m}.md", f"summary_{m}.tex", f"summary_{m}.csv",
                f"summary_{m}.html"} <= files  # fmt: skip
    s = (rep / "summary_survival-pfs.md").read_text()
    assert "| **Time ratios (> 1: longer)** |" in s and "| per 10 GBq more cumulative 177Lu |" in s
    assert "r_hat" in s and "\u2013" in s and "credible interval" in s
    tex = (rep / "validation.tex").read_text()
    assert r"\begin{longtable}" in tex  # 101 rows break across pages
    csv = pd.read_csv(rep / "summary_toxicity.csv")
    assert {"median", "eti95_lower", "estimate", "ess_bulk"} <= set(csv.columns)
    assert (csv["r_hat"] < 1.01).all()  # the shipped fit's every reported quantity


def test_predict_interval_kind_hdi(models, capsys):
    """``--interval-kind hdi`` (issue 18): the shortest 95% interval, labelled HDI in the text
    and the JSON, equal to the library's ``Interval(0.95, "hdi")``; a bad kind is refused by
    the parser (exit 2)."""
    import warnings

    from netbayes.intervals import Interval
    from netbayes.predict import Predictor

    args = [*ARGS, "--models-dir", str(models), "--interval-kind", "hdi", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["interval"]["kind"] == "hdi"
    got = doc["patients"][0]["median_months"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Predictor.load("pfs", models).patient(
            tumour_type="midgut", line="R-PRRT", prior_pfs_months=30.0, prior_gbq=29.9,
            planned_gbq=14.9, interval=Interval(0.95, "hdi"),
        )  # fmt: skip
    m = ref.median()
    assert got["hdi95_lower"] == pytest.approx(m.lower) and got["hdi95_upper"] == pytest.approx(
        m.upper
    )
    assert main([*ARGS, "--models-dir", str(models), "--interval-kind", "hdi"]) == 0
    assert "95% HDI" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main([*ARGS, "--interval-kind", "shortest"])
    assert e.value.code == 2
    assert "--interval-kind" in capsys.readouterr().err


def test_report_tables_label_cell_lines_and_studies(shipped_report):
    """The parameter tables name every element (issue 18): the toxicity store calls its
    cell-line dimension ``line``, which the report used to print as c3[0], c3[1], c3[2]."""
    out = shipped_report.folder  # `netbayes report --out DIR`, the shipped posteriors (conftest)
    assert shipped_report.rc == 0
    tox = (out / "parameters_toxicity.csv").read_text()
    for cl in ("leucocytes", "platelets", "haemoglobin"):
        assert f"c3[{cl}]" in tox
    assert not re.search(r"\bc3\[\d\]", tox)
    assert "v_study[rotterdam2019]" in tox and "v_study[re188pilot]" in tox
    assert "u_study[rotterdam2019]" in (out / "parameters_survival-pfs.csv").read_text()


def test_predict_rmst_text_and_json(models, capsys):
    """``--rmst``: the restricted mean in the table and the JSON, equal to
    ``Prediction.rmst`` of the same posteriors, with its prior share; without the flag the
    JSON has no RMST key."""
    from netbayes.predict import Predictor

    assert main([*ARGS, "--models-dir", str(models), "--rmst", "24", "--rmst", "60"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Restricted mean PFS over 24 months, months +\d+\.\d +\d", out)
    assert re.search(r"Restricted mean PFS over 60 months: prior share \d+%", out)
    assert main([*ARGS, "--models-dir", str(models), "--json", "--rmst", "60", "24"]) == 0
    (p,) = json.loads(capsys.readouterr().out)["patients"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = Predictor.load("pfs", models).patient(
            tumour_type="midgut", line="R-PRRT", prior_pfs_months=30, prior_gbq=29.9,
            planned_gbq=14.9,
        )  # fmt: skip
    want = pred.rmst([24.0, 60.0])
    assert [r["tau_months"] for r in p["rmst_months"]] == [24.0, 60.0]
    for r, (_, w) in zip(p["rmst_months"], want.iterrows(), strict=True):
        for c in ("median", "mean", "eti95_lower", "eti95_upper"):
            assert r[c] == pytest.approx(w[c], rel=1e-12)
        assert 0.0 <= r["prior_share"] <= 1.0
    assert main([*ARGS, "--models-dir", str(models), "--json"]) == 0
    assert "rmst_months" not in json.loads(capsys.readouterr().out)["patients"][0]


@pytest.mark.parametrize(
    ("argv", "extra", "absent"),
    [
        (["fit", "--out", "x"], "fit", "pymc"),
        ([*ARGS[:0], "report", "--out", "x"], "all", "matplotlib"),
    ],
)
def test_a_command_without_its_extra_says_which_to_install(monkeypatch, capsys, argv, extra,
                                                           absent):  # fmt: skip
    """``pip install .`` gives the prediction path only; a command that needs an extra says
    which, before anything runs (exit 2), and prediction does not need them."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == absent else real(name, *a))  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"needs the optional '{extra}' dependencies, and {absent} is not installed" in err
    assert f"pip install 'netbayes[{extra}]'" in err


@pytest.fixture(scope="module")
def schema_validator():
    jsonschema = pytest.importorskip("jsonschema")
    from netbayes.cli import JSON_SCHEMA

    schema = json.loads(JSON_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--endpoint", "os", "--no-toxicity"],
        ["--endpoint", "os", "--rmst", "24", "60"],
        ["--interval", "0.9", "--interval-kind", "hdi", "--times", "6", "--rmst", "12"],
        ["--centre", "typical"],
    ],
)
def test_predict_json_validates_against_the_shipped_schema(models, capsys, schema_validator,
                                                           extra):  # fmt: skip
    """Every --json document validates against the JSON Schema file that ships with the
    package; the same keys for PFS and OS."""
    assert main([*ARGS, "--models-dir", str(models), "--json", *extra]) == 0
    doc = json.loads(capsys.readouterr().out)
    errors = sorted(schema_validator.iter_errors(doc), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    keys = set(doc["patients"][0])
    assert {"median_months", "p_event_free"} <= keys and not any("pfs" in k or "os_" in k
                                                                  for k in keys)  # fmt: skip


def test_the_schema_rejects_what_it_should(models, capsys, schema_validator):
    """The schema can fail: a probability above 1, a missing answer, an unknown key, a
    non-number, an endpoint-named key of schema /1."""
    assert main([*ARGS, "--models-dir", str(models), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert schema_validator.is_valid(doc)
    bad = []
    d = json.loads(json.dumps(doc))
    d["patients"][0]["p_event_free"][0]["median"] = 1.2
    bad.append(d)
    d = json.loads(json.dumps(doc))
    del d["patients"][0]["median_months"]
    bad.append(d)
    d = json.loads(json.dumps(doc))
    d["patients"][0]["median_pfs_months"] = d["patients"][0]["median_months"]
    bad.append(d)
    d = json.loads(json.dumps(doc))
    d["patients"][0]["p_grade3plus"]["any"]["eti95_lower"] = "0.1"
    bad.append(d)
    d = json.loads(json.dumps(doc))
    d["schema"] = "netbayes.predict/1"
    bad.append(d)
    assert not any(schema_validator.is_valid(b) for b in bad)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["summary"],
        ["data"],
        ["predict"],
        ["fit"],
        ["validate"],
        ["report"],
        ["prior-sensitivity"],
    ],
)
def test_help_reads_at_80_columns(command, capsys, monkeypatch):
    """Every ``--help`` fits an 80-column terminal (issue 18)."""
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    long = [ln for ln in out.splitlines() if len(ln) > 80]
    assert not long, long[:3]
