"""The public API: every exported name resolves, and ``import netbayes`` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import netbayes


@pytest.mark.parametrize("name", netbayes.__all__)
def test_every_public_name_resolves(name):
    assert getattr(netbayes, name) is not None
    assert name in dir(netbayes)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'fit_everything'"):
        netbayes.fit_everything  # noqa: B018


def test_import_and_prediction_do_not_load_pymc():
    code = (
        "import sys, netbayes\n"
        "p = netbayes.predict_patient(tumour_type='midgut', line='R-PRRT', planned_gbq=14.9,"
        " prior_gbq=29.9, prior_pfs_months=30)\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'nutpie') if m in sys.modules]\n"
        "print(heavy, p.sentence())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("[] median PFS after R-PRRT")
