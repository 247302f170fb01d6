"""The specification layer: one declaration of every shared constant and of the line table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from netbayes import spec, vocab

SRC = Path(__file__).resolve().parents[1] / "src" / "netbayes"
SHARED = {
    "X_REF",
    "GBQ_REF",
    "GBQ_UNIT",
    "A_REF_GBQ",
    "DOSE_SCALE_GBQ",
    "SALVAGE_LINES",
    "MODEL_TYPES",
    "PARAMS",
    "PARAMS_OS",
}


def test_line_table_matches_the_vocabulary():
    assert tuple(spec.LINE_SPECS) == vocab.LINES
    assert spec.FIRST_LINE == "I-PRRT"
    assert spec.SALVAGE_LINES == ("R-PRRT", "RR-PRRT", "188Re-HEDP")
    # every effect named in the table is a posterior variable the predictions load
    for ls in spec.LINE_SPECS.values():
        if ls.survival_effect is not None:
            assert ls.survival_effect in spec.SURVIVAL_PARAMS
        if ls.toxicity_effect is not None:
            assert ls.toxicity_effect in spec.TOXICITY_PARAMS
        if ls.selected_after is not None:
            assert ls.selected_after in spec.LINE_SPECS


def test_line_and_endpoint_errors_name_the_field():
    with pytest.raises(ValueError, match=r"line='R' is not allowed; expected one of I-PRRT"):
        spec.line_spec("R")
    with pytest.raises(ValueError, match=r"endpoint='dfs' is not allowed"):
        spec.survival_params("dfs")
    assert spec.survival_params("os")[-4:] == ("alpha1_os", "k1_os", "sigma1_os", "z1_os")


def test_formulas_read_the_table():
    from netbayes.formulas import survival as F
    from netbayes.formulas import toxicity as T

    assert F.params_for("pfs") is spec.SURVIVAL_PARAMS
    assert T.PARAMS is spec.TOXICITY_PARAMS
    assert T.LINE_EFFECT == {n: ls.toxicity_effect for n, ls in spec.LINE_SPECS.items()}
    assert F.cumulative_gbq(29.9, 7.4, "188Re-HEDP") == 29.9  # 188Re activity is not 177Lu
    assert F.cumulative_gbq(29.9, 7.4, "R-PRRT") == pytest.approx(37.3)


def test_no_module_redeclares_a_spec_constant():
    """Only spec.py assigns the shared constants at module level (others import them)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "spec.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            targets = []
            if isinstance(node, ast.Assign):
                targets = [t for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets = [node.target]
            for t in targets:
                if t.id not in SHARED:
                    continue
                value = node.value
                # an alias of the spec value (PARAMS = spec.SURVIVAL_PARAMS) is allowed
                if isinstance(value, ast.Attribute) and ast.unparse(value).startswith("spec."):
                    continue
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {t.id}")
    assert offenders == []


def test_model_registry_agrees_with_the_spec():
    from netbayes.models import registry

    assert tuple(registry.MODELS) == spec.MODEL_TYPES
    for mt, entry in registry.MODELS.items():
        model = entry.default()
        assert model.model_type == mt  # the class's own idea of its type
    with pytest.raises(ValueError, match=r"model_type='hazard' is not allowed"):
        registry.default_model("hazard")


def test_nesting_is_derived_from_the_selecting_line():
    """RR-PRRT is selected on R-PRRT PFS, a salvage time: its prior-PFS mixture is nested."""
    assert [n for n, ls in spec.LINE_SPECS.items() if ls.nested] == ["RR-PRRT"]
    assert not spec.LINE_SPECS["R-PRRT"].nested  # selected on first-line PFS
