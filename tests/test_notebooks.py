"""The notebooks execute top to bottom (fast settings) and show what they promise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _run(name: str) -> list[str]:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = os.environ.get("NETBAYES_NOTEBOOK_FAST")
    os.environ["NETBAYES_NOTEBOOK_FAST"] = "1"  # the kernel inherits it
    try:
        nbclient.NotebookClient(
            nb, timeout=900, kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        ).execute()  # fmt: skip
    finally:
        if old is None:
            os.environ.pop("NETBAYES_NOTEBOOK_FAST")
        else:
            os.environ["NETBAYES_NOTEBOOK_FAST"] = old
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":  # pragma: no cover - execute() raises first
                raise AssertionError(out)
            text.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
            if "image/png" in out.get("data", {}):
                text.append("<image/png>")
    return text


def test_committed_notebooks_have_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in code), f"{path.name} is not executed"
        assert any(c.get("outputs") for c in code)


def test_predict_patient_notebook():
    out = "\n".join(_run("02_predict_patient.ipynb"))
    assert "median PFS after R-PRRT" in out and "(95% ETI" in out
    assert "below the 18-month selection threshold" in out  # the extrapolation warning
    assert "tumour_type='colon' is not allowed" in out
    # the plots render as images where they are returned (bare figures, no pyplot): the
    # survival curve, the forest and the toxicity risk
    assert out.count("<image/png>") == 3
    assert "standardised median PFS after R-PRRT over a weighted mix of 3 profiles" in out
    assert "rmst_pfs" in out


@pytest.mark.slow
def test_calibrate_notebook():
    out = "\n".join(_run("01_calibrate.ipynb"))
    assert "Table 5 PFS median" in out and "Table 6" in out


@pytest.mark.slow
def test_paper_table_notebook():
    out = "\n".join(_run("03_paper_table.ipynb"))
    assert r"\begin{tabular}" in out and "| tumour_type |" in out
    assert "median PFS after R-PRRT" in out


@pytest.mark.slow
def test_add_published_cohort_notebook():
    out = "\n".join(_run("04_add_published_cohort.ipynb"))
    assert "('sim_a', 'sim_b')" in out and "column 'endpoint'" in out
    assert "left out: sim_b:pfs_rr (RR-PRRT)" in out
    assert "a new centre (the between-centre spread included)" in out and "sim_a" in out


@pytest.mark.slow
def test_compare_families_notebook():
    """A user's fit carries log_likelihood, log_prior and prior: az.compare prefers the
    log-normal family the patients were simulated from, and psense runs."""
    out = "\n".join(_run("05_compare_families.ipynb"))
    assert "preferred: lognormal" in out
    assert "'log_likelihood', 'log_prior', 'posterior', 'prior'" in out
    assert "likelihood" in out and "standardised median PFS after R-PRRT over 300 patients" in out
    assert out.count("<image/png>") == 1
