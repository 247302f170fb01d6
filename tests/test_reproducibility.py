"""Reproducibility, exactly as promised (issue 17).

* Same machine, same package versions, same seed: the same draws, bit for bit
  (``test_reliability.py::test_same_seed_same_stored_posterior``, ``test_store.py``).
* Another machine or other versions of the sampler stack (nutpie, PyMC, PyTensor, NumPy, the
  compiler): a statistically equivalent posterior, not the same draws. Floating-point
  reductions and vectorised math differ between CPUs and builds, and NUTS trajectories are
  chaotic, so one differing last bit changes every later draw. This file's slow test refits the
  shipped survival-PFS model with short chains and checks that its posterior medians agree with
  the shipped posterior's within Monte Carlo error, whatever machine runs it.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

KEY = ("alpha1", "alpha2", "k1", "k2", "beta_x", "beta_gbq")
"""Survival-PFS parameters the predictions rest on: scales, shapes and the two covariates."""

Z = 4.0
"""Tolerance in standard errors of the difference of the two medians (see the test)."""


def _mcse_median(draws: np.ndarray) -> float:
    """Monte Carlo SE of the posterior median of ``(chain, draw)`` draws (ArviZ, quantile
    based, autocorrelation included)."""
    import arviz as az

    ds = xr.Dataset({"x": (("chain", "draw"), draws)})
    return float(az.mcse(ds, method="median")["x"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::netbayes.fitting.ConvergenceWarning")
def test_refit_matches_the_shipped_posterior_within_monte_carlo_error():
    """A short refit (2 x 300 draws, another seed) against the shipped 4 x 1000 posterior.

    Tolerance: the two medians are independent Monte Carlo estimates of the same posterior
    median, so their difference is approximately normal with SD
    ``sqrt(mcse_refit**2 + mcse_shipped**2)``, each MCSE estimated by ArviZ from its own chains
    (autocorrelation included; quantile-based, so valid for skewed posteriors such as the
    shapes). ``Z = 4`` standard errors gives a false alarm with probability ~6e-5 per
    parameter, ~4e-4 for the six, while leaving room for the MCSE of short chains being
    estimated a little low. The test can fail: it also checks that the tolerance is below half
    a posterior SD, so a posterior shifted by one SD (a changed model or data, a sampler bug)
    is caught. A different seed on purpose: the promise across machines is about the
    distribution, not the draws.
    """
    from netbayes.models.registry import default_model
    from netbayes.store import load_posterior

    shipped = load_posterior("survival-pfs")
    fit = default_model("survival-pfs").fit(
        draws=300, tune=300, chains=2, seed=4242, progress=False
    )
    post = fit.posterior["posterior"].dataset
    assert fit.n_divergences <= 3  # a short run may have a few; many would void the test
    for name in KEY:
        ref = shipped.arrays[name]
        new = post[name].transpose("chain", "draw").to_numpy()
        se = np.hypot(_mcse_median(new), _mcse_median(ref))
        sd = float(np.std(ref))
        assert Z * se < 0.5 * sd, (name, se, sd)  # the comparison has power
        diff = float(np.median(new) - np.median(ref))
        assert abs(diff) <= Z * se, (
            f"{name}: refit median {np.median(new):.4f} vs shipped {np.median(ref):.4f}, "
            f"difference {diff:.4f} > {Z} x MCSE {se:.4f}"
        )
