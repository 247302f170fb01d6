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
    with pytest.raises(ValueError, match="fmt='html' is not allowed"):
        format_table(df, "html")  # type: ignore[arg-type]


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
