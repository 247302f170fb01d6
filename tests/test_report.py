"""Paper tables: parameter summaries, diagnostics, Markdown/LaTeX/CSV rendering."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from netbayes.intervals import Interval
from netbayes.report import diagnostics_table, format_table, parameter_table, write_table


def _draws():
    rng = np.random.default_rng(0)
    return {"k2": rng.normal(1.8, 0.2, 4000), "z2": rng.normal(size=(4000, 3))}


def test_parameter_table_uses_the_interval_convention():
    t = parameter_table(_draws())
    assert list(t.columns) == ["parameter", "mean", "sd", "median", "eti95_lower", "eti95_upper"]
    assert list(t["parameter"]) == ["k2", "z2[0]", "z2[1]", "z2[2]"]
    k2 = t.iloc[0]
    # 95% ETI of N(1.8, 0.2): 1.8 -+ 0.392; MC error of a 2.5% quantile at n = 4000 is ~0.01
    assert k2["eti95_lower"] == pytest.approx(1.408, abs=0.03)
    assert k2["eti95_upper"] == pytest.approx(2.192, abs=0.03)
    h = parameter_table(_draws(), ["k2"], Interval(0.9, "hdi"))
    assert {"hdi90_lower", "hdi90_upper"} <= set(h.columns) and len(h) == 1
    with pytest.raises(ValueError, match="parameter 'beta' is not in the draws"):
        parameter_table(_draws(), ["beta"])


def test_diagnostics_table_flags_failures():
    diag = pd.DataFrame(
        {"r_hat": [1.001, 1.02, 1.0], "ess_bulk": [900.0, 800.0, 120.0], "ess_tail": [1.0] * 3},
        index=pd.Index(["a", "b", "c"], name="parameter"),
    )
    t = diagnostics_table(SimpleNamespace(diagnostics=diag, n_divergences=3))
    assert list(t["ok"]) == [True, False, False]
    assert t.attrs["divergences"] == 3
    assert "divergences: 3" in format_table(t)


def test_markdown_latex_csv():
    df = pd.DataFrame({"tumour_type": ["mid_gut"], "eti95_lower": [11.04], "ok": [True]})
    md = format_table(df, "markdown", digits=1, caption="Median PFS")
    assert "| tumour_type | eti95_lower | ok |" in md and "| mid_gut | 11.0 | yes |" in md
    assert "|:---|---:|:---|" in md  # text left, numbers right
    tex = format_table(df, "latex", digits=1, caption="50% of PFS")
    assert r"tumour\_type & eti95\_lower & ok \\" in tex and r"\toprule" in tex
    assert r"\caption{50\% of PFS}" in tex and r"\begin{tabular}{lrl}" in tex
    back = pd.read_csv(io.StringIO(format_table(df, "csv")))
    assert back["eti95_lower"].item() == 11.04  # CSV keeps full precision
    with pytest.raises(ValueError, match="fmt='rtf' is not allowed"):
        format_table(df, "rtf")  # type: ignore[arg-type]


def test_write_table_by_suffix(tmp_path):
    df = pd.DataFrame({"a": [1.234]})
    assert "| 1.23 |" in write_table(df, tmp_path / "t.md").read_text()
    assert r"1.23 \\" in write_table(df, tmp_path / "sub" / "t.tex").read_text()
    with pytest.raises(ValueError, match=r"suffix '\.xlsx' is not allowed"):
        write_table(df, tmp_path / "t.xlsx")


def test_parameter_table_element_labels():
    t = parameter_table(_draws(), ["z2"], labels={"z2": ["a", "b", "c"]})
    assert list(t["parameter"]) == ["z2[a]", "z2[b]", "z2[c]"]
    with pytest.raises(ValueError, match=r"labels\['z2'\] has 2 labels for 3 elements"):
        parameter_table(_draws(), ["z2"], labels={"z2": ["a", "b"]})


# -- natural-scale paper tables (issue 18) -------------------------------------------------------
def _tree(draws: dict, chains: int, shift: dict | None = None):
    """Stacked draws as a DataTree with ``chains`` chains; ``shift``: add to one chain."""
    import xarray as xr

    ds = {}
    for k, v in draws.items():
        a = np.asarray(v, float).reshape(chains, -1, *np.shape(v)[1:]).copy()
        if shift and k in shift:
            a[0] += shift[k]
        dims = ("chain", "draw", *[f"{k}_dim_{i}" for i in range(a.ndim - 2)])
        ds[k] = (dims, a)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(ds)})


def test_survival_table_medians_and_ratios_are_the_prediction_path():
    """The salvage median of a type is the prediction of the reference patient (prior PFS 36
    months, 44.7 GBq cumulative, typical centre); the time ratio per 10 GBq is exp(beta_gbq)
    draw by draw, so its median is exp of beta_gbq's median."""
    import warnings

    from test_predict import fake_survival

    from netbayes.predict import Predictor
    from netbayes.report import survival_table

    d = fake_survival(0, 400)
    t = survival_table(_tree(d, 4))
    assert t["r_hat"].notna().all() and (t["r_hat"] < 1.05).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = Predictor(d).patient(tumour_type="pancreatic", line="R-PRRT", prior_pfs_months=36.0,
                                 prior_gbq=29.8, planned_gbq=14.9, centre="typical")  # fmt: skip
    row = t[t["group"].str.startswith("Median PFS after R-PRRT") & (t["quantity"] == "pancreatic")]
    assert row["median"].item() == pytest.approx(p.median().median, rel=1e-9)
    assert row["eti95_upper"].item() == pytest.approx(p.median().upper, rel=1e-9)
    gbq = t[t["quantity"] == "per 10 GBq more cumulative 177Lu"].iloc[0]
    assert gbq["median"] == pytest.approx(np.median(np.exp(d["beta_gbq"])), rel=1e-12)
    assert gbq["estimate"] == f"{gbq['median']:.2f} ({gbq['eti95_lower']:.2f}\u2013" \
                              f"{gbq['eti95_upper']:.2f})"  # fmt: skip
    assert "4 chains" in t.attrs["note"] and "95% equal-tailed credible interval" in t.attrs["note"]
    assert "95% CrI" in survival_table(d, wording="cri").attrs["note"]


def test_per_row_convergence_can_fail():
    """A chain shifted by 1 SD in beta_gbq: that row's R-hat exceeds 1.1, the others do not
    (the diagnostics are those of each quantity's own chains)."""
    from test_predict import fake_survival

    from netbayes.report import survival_table

    d = fake_survival(0, 800)
    t = survival_table(_tree(d, 4, shift={"beta_gbq": 0.05})).set_index("quantity")
    assert t.loc["per 10 GBq more cumulative 177Lu", "r_hat"] > 1.1
    assert t.loc["per doubling of the prior PFS", "r_hat"] < 1.05


def test_negative_ranges_are_written_with_to():
    from netbayes.report_tables import _range

    assert _range(7.04, 26.2, 1) == "7.0\u201326.2"
    assert _range(-0.18, 0.68, 2) == "-0.18 to 0.68"


def test_toxicity_table_risks_are_the_prediction_path():
    from test_predict import fake_toxicity

    from netbayes.predict.evaluate import _toxicity_risk
    from netbayes.report import toxicity_table

    d = fake_toxicity(1, 400)
    t = toxicity_table(d)
    risk = _toxicity_risk(d, "R-PRRT", 14.9, 29.9)
    anyrow = t[t["quantity"] == "any"].iloc[0]
    assert anyrow["median"] == pytest.approx(np.median(risk[:, 3]), rel=1e-12)
    assert t["r_hat"].isna().all()  # one chain of plain draws: no split into chains to judge
    with pytest.raises(ValueError, match=r"wording='CrI' is not allowed"):
        toxicity_table(d, wording="CrI")


def test_rendering_escapes_notes_and_long_tables():
    df = pd.DataFrame({"quantity": ["a|b", "c"], "median": [1.0, 2.0]})
    df.attrs["note"] = "R-hat <= 1.01 | 50% of it"
    md = format_table(df, "markdown")
    assert r"| a\|b | 1.00 |" in md
    assert sum(ln.startswith("|") for ln in md.splitlines()) == 4  # header, rule, two rows
    tex = format_table(df, "latex")
    assert r"\footnotesize R-hat <= 1.01 | 50\% of it" in tex and "\n%" not in tex
    assert r"\begin{tabular}" in tex and "longtable" not in tex
    long = pd.DataFrame({"x": np.arange(40.0)})
    lt = format_table(long, "latex", caption="Long")
    assert r"\begin{longtable}{r}" in lt and r"\endhead" in lt and r"\caption{Long}" in lt
    assert r"\begin{tabular}" in format_table(long, "latex", long=False)


def test_great_tables_html_and_latex():
    pytest.importorskip("great_tables")
    df = pd.DataFrame({"group": ["G1", "G1", "G2"], "quantity": ["a", "b", "c"],
                       "median": [1.234, 2.0, 3.0], "r_hat": [1.0012, 1.0, 1.2]})  # fmt: skip
    df.attrs["note"] = "the note"
    html = format_table(df, "html", caption="Cap")
    assert "G1" in html and "G2" in html and "the note" in html and "1.23" in html
    assert "1.001" in html and "Cap" in html
    tex = format_table(df, "latex", engine="great_tables", long=True)
    assert r"\begin{longtable}" in tex and "the note" in tex
    with pytest.raises(ValueError, match="engine='gt' is not allowed"):
        format_table(df, "latex", engine="gt")  # type: ignore[arg-type]


def test_groups_render_as_section_rows():
    df = pd.DataFrame({"group": ["G1", "G1", "G2"], "quantity": ["a", "b", "c"],
                       "estimate": ["1.0 (0.5\u20132.0)", "2", "3"]})  # fmt: skip
    md = format_table(df, "markdown")
    assert "| **G1** | |" in md and "| **G2** | |" in md and md.count("G1") == 1
    assert "| group |" not in md and "0.5\u20132.0" in md
    tex = format_table(df, "latex")
    assert r"\multicolumn{2}{l}{\textit{G2}} \\" in tex and "0.5--2.0" in tex
