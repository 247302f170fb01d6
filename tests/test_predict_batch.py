"""Batch summaries (``Predictor.summaries``) against single-patient predictions, and the
tabulated any-line toxicity risk (``formulas.toxicity.any_line_risk_table``) against its
quadrature."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr
from test_predict import STD_R, fake_survival, fake_toxicity

from netbayes import vocab
from netbayes.formulas import survival as F
from netbayes.formulas import toxicity as T
from netbayes.intervals import Interval
from netbayes.predict import (
    ExtrapolationWarning,
    Predictor,
    _mixture_median,
    _order_statistics,
    _summarise,
)
from netbayes.predict.evaluate import _NEW_TYPE_BASE, _survival_components, _toxicity_risk

S = 400
ANY_LINE_BOUND = 1e-7  # summaries refuses an any-line table whose proven error bound is larger
CELLS = (*vocab.CELL_LINES, "any")


def wide_toxicity(seed: int = 2, n: int = S) -> dict[str, np.ndarray]:
    """Toxicity draws whose sigma_u spans ~0, tiny, moderate and large values and whose 188Re
    conversion theta spans 0.5-50: every tabulation path (fine grids of both kinds, node by
    node) and saturated linear predictors are exercised."""
    d = fake_toxicity(seed, n)
    r = np.random.default_rng(seed)
    sig = np.exp(r.uniform(np.log(1e-4), np.log(3.0), n))
    sig[:5] = [1e-12, 1e-6, 1e-3, 0.02, 3.0]  # a posterior SD is > 0 (checked by Predictor)
    d["sigma_u"] = sig
    d["theta"] = np.exp(r.uniform(np.log(0.5), np.log(50.0), n))
    d["beta_activity"] = r.normal(0.2, 0.3, n)
    return d


@pytest.fixture(scope="module")
def pred() -> Predictor:
    return Predictor(fake_survival(), wide_toxicity())


@pytest.fixture(scope="module")
def pred_os() -> Predictor:
    return Predictor(fake_survival(os=True), fake_toxicity(), endpoint="os")


def random_patients(n: int, seed: int) -> pd.DataFrame:
    """Patients over every tumour type (fine, coarse, two new ones) and line, activities and
    prior PFS inside and far outside the calibrated ranges, some cells missing."""
    r = np.random.default_rng(seed)
    types = [*vocab.PATIENT_TUMOUR_TYPES, "appendiceal", "Thymic"]
    line = r.choice(vocab.LINES, n)
    first = line == "I-PRRT"
    prior = np.where(first, 0.0, r.uniform(1.0, 120.0, n))
    pfs = np.where(r.random(n) < 0.1, np.nan, np.exp(r.uniform(np.log(0.5), np.log(200.0), n)))
    pfs[np.isin(line, ["R-PRRT", "RR-PRRT"]) & np.isnan(pfs)] = 30.0  # required there
    df = pd.DataFrame(
        {
            "tumour_type": r.choice(types, n),
            "line": line,
            "planned_gbq": np.round(np.exp(r.uniform(np.log(0.5), np.log(59.0), n)), 2),
            "prior_gbq": np.where(first & (r.random(n) < 0.5), np.nan, prior),
            "prior_pfs_months": pfs,
        },
        index=[f"p{i}" for i in range(n)],
    )
    return df


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        return fn(*a, **k)


def single_row(pred: Predictor, rec: pd.Series, **kw) -> pd.DataFrame:
    """``Predictor.patient`` on one table row, its summary laid out as ``summaries``."""
    args = {k: v for k, v in rec.items() if not (isinstance(v, float) and math.isnan(v))}
    p = quiet(pred.patient, **args, **kw)
    e, (lo, hi) = p.endpoint, p.interval.columns
    out = {}
    for _, r in p.summary.iterrows():
        q = r["quantity"]
        if q == f"p_{e}_gt":
            q = f"{q}_{np.format_float_positional(r['t_months'], trim='-')}"
        elif q == "p_grade3plus":
            q = f"{q}_{r['cell_line']}"
        for st in ("median", "mean", lo, hi):
            out[f"{q}_{st}"] = r[st]
    return pd.DataFrame([out])


# ---------------------------------------------------------------------------------------------
# agreement with single-patient predictions
# ---------------------------------------------------------------------------------------------
def assert_agree(
    batch: pd.DataFrame, one: pd.DataFrame, lab: str, bound: float, hdi: bool = False
) -> None:
    """Every summary of patient ``lab`` agrees with its single prediction.

    Tolerance argument. The survival quantities and the per-line grade >= III risks are the
    formulas of :meth:`Predictor.patient` with the same operations in the same order, and
    the summaries use the same order statistics and arithmetic as ``numpy.median`` and
    ``numpy.quantile``; they differ only by rounding: the mean's summation order, and the
    median of a coarse tumour type's mixture, solved by Newton where ``patient`` bisects to
    the same root (both to ~1e-15 relative). Hence 1e-9 relative, six orders above what is
    seen. The any-line risk is interpolated per draw from a table whose error is proven at
    most ``AnyLineRiskTable.max_error`` at every draw, and ``summaries`` refuses a table
    whose bound exceeds ``bound`` (1e-7); the mean, every order statistic and their linear
    interpolation (an equal-tailed interval) are 1-Lipschitz in the sup norm of the draws, so
    every such summary of it is within ``bound`` too, below the 1e-6 required. An HDI is not
    Lipschitz (the shortest window can jump between near-ties), so with ``hdi`` only the
    any-line median and mean are compared.
    """
    for col in one.columns:
        a, b = float(batch.loc[lab, col]), float(one[col].iloc[0])
        if col.startswith("p_grade3plus_any"):
            if hdi and col.endswith(("_lower", "_upper")):
                continue
            assert abs(a - b) <= bound, (lab, col, a, b)
        else:
            assert a == b or abs(a - b) <= 1e-9 * abs(b), (lab, col, a, b)


def test_evaluation_path_is_the_formulas(pred):
    """The one evaluation path every method shares gives, bit for bit, the closed forms of
    ``formulas``: the log scale of each fine, coarse (mixture) and new type on every line and
    the single patient's grade >= III risks."""
    th = pred.survival
    coarse = [pred.ranges["type_weights"][c] for c in pred.ranges["type_weights"]]
    z_new = [np.random.default_rng(0).standard_normal(pred.n_draws)]
    n_fine = len(vocab.TUMOUR_TYPES)
    for line in vocab.LINES:
        x, cum = (None, 0.0) if line == "I-PRRT" else (25.0, 40.0)
        lx, gq = F.covariates(x, cum)
        ref = F.log_scale(th, line, x, cum)
        for ty in range(n_fine + len(coarse)):
            k, loglam, w = _survival_components(th, line, "pfs", ty, lx, gq, z_new, coarse)
            wts = {vocab.TUMOUR_TYPES[ty]: 1.0} if ty < n_fine else coarse[ty - n_fine]
            assert np.array_equal(k, F.shape(th, line))
            cols = [vocab.TUMOUR_TYPES.index(m) for m in wts]
            assert np.array_equal(np.stack(loglam, axis=1), ref[:, cols])
            assert np.array_equal(w, list(wts.values()))
        _, loglam, _ = _survival_components(th, line, "pfs", _NEW_TYPE_BASE, lx, gq, z_new, [])
        assert np.array_equal(loglam[0], F.log_scale(th, line, x, cum, z_new=z_new[0])[:, 0])
        per_line, any_line = T.grade3_risk(pred.toxicity, 12.0, 30.0, line)
        risk = _toxicity_risk(pred.toxicity, line, 12.0, 30.0)
        assert np.array_equal(risk, np.concatenate([per_line[:, 0], any_line], axis=1))


def test_summaries_agree_with_single_patients(pred):
    df = random_patients(300, seed=11)
    batch = quiet(pred.summaries, df, new_type="population", seed=3, t_probs=[6.5, 12, 24])
    assert list(batch.index) == list(df.index) and batch.index.name == "patient"
    first_new = {}
    for lab, rec in df.iterrows():
        first_new.setdefault(rec["tumour_type"], lab)
    for lab, rec in df.iterrows():
        # a new type's effect is the first vector drawn from the seed when it is the first
        # new label in the table; compare those patients (and all calibrated types)
        t = rec["tumour_type"]
        if t not in vocab.PATIENT_TUMOUR_TYPES:
            news = [k for k in first_new if k not in vocab.PATIENT_TUMOUR_TYPES]
            if news[0] != t:
                continue
        one = single_row(pred, rec, new_type="population", seed=3, t_probs=[6.5, 12, 24])
        assert_agree(batch, one, lab, ANY_LINE_BOUND)


def test_os_endpoint_and_hdi_agree(pred_os):
    df = random_patients(60, seed=5)
    df = df[df["tumour_type"].isin(vocab.PATIENT_TUMOUR_TYPES)]
    iv = Interval(0.9, "hdi")
    batch = quiet(pred_os.summaries, df, interval=iv)
    assert "median_os_hdi90_lower" in batch.columns and "p_os_gt_12_mean" in batch.columns
    for lab, rec in df.iterrows():
        assert_agree(batch, single_row(pred_os, rec, interval=iv), lab, ANY_LINE_BOUND, hdi=True)


def test_summaries_equal_the_patients_table(pred):
    """The same numbers as ``patients(df).summary`` (new types share the seed's draws in order
    of first appearance), and the same extrapolation notes."""
    df = random_patients(40, seed=8)
    batch = quiet(pred.summaries, df, new_type="population", seed=9)
    many = quiet(pred.patients, df, new_type="population", seed=9, times=[12.0])
    assert list(batch["extrapolation"]) == list(many.patients["extrapolation"])
    s = many.summary
    for c in ("median", "mean", "eti95_lower", "eti95_upper"):
        med = s[s["quantity"] == "median_pfs"].set_index("patient")[c]
        np.testing.assert_allclose(batch[f"median_pfs_{c}"], med.loc[batch.index], rtol=1e-9)
        gt = s[(s["quantity"] == "p_pfs_gt") & (s["t_months"] == 24)].set_index("patient")[c]
        np.testing.assert_allclose(batch[f"p_pfs_gt_24_{c}"], gt.loc[batch.index], rtol=1e-9)
        anyl = s[s["cell_line"] == "any"].set_index("patient")[c]
        np.testing.assert_allclose(batch[f"p_grade3plus_any_{c}"], anyl.loc[batch.index], atol=1e-7)


def test_columns_and_layout(pred):
    df = pd.DataFrame([STD_R, STD_R | {"planned_gbq": 7.4}], index=["a", "b"])
    out = pred.summaries(df, t_probs=[24, 12])
    quantities = [
        "median_pfs",
        "p_pfs_gt_12",
        "p_pfs_gt_24",
        *(f"p_grade3plus_{c}" for c in CELLS),
    ]
    stats = ("median", "mean", "eti95_lower", "eti95_upper")
    assert list(out.columns) == [f"{q}_{s}" for q in quantities for s in stats] + [
        f"{q}_prior_share" for q in quantities
    ] + ["extrapolation"]
    assert list(out["extrapolation"]) == ["", ""]
    assert out.filter(like="p_").to_numpy().min() >= 0
    assert out.filter(like="p_").to_numpy().max() <= 1
    lo = out.filter(like="_eti95_lower").to_numpy()
    hi = out.filter(like="_eti95_upper").to_numpy()
    assert np.all(lo <= out.filter(regex="_median$").to_numpy())
    assert np.all(out.filter(regex="_median$").to_numpy() <= hi)
    no_tox = Predictor(fake_survival()).summaries(df)
    assert not any(c.startswith("p_grade3plus") for c in no_tox.columns)


def test_chunks_and_duplicates_do_not_change_the_numbers(pred):
    df = random_patients(50, seed=21)
    df = pd.concat([df, df.iloc[:10].set_axis([f"dup{i}" for i in range(10)])])
    a = quiet(pred.summaries, df, new_type="population")
    b = quiet(pred.summaries, df, new_type="population", chunk_size=1)
    c = quiet(pred.summaries, df, new_type="population", chunk_size=7)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    # threads: each chunk computed as it would be alone, bit for bit (rmst/quantile columns,
    # prior shares and the any-line risk included)
    opts = dict(new_type="population", chunk_size=3, rmst_tau=[24.0], quantiles=[0.25])
    one = quiet(pred.summaries, df, threads=1, **opts)
    for th in (2, 3):
        pd.testing.assert_frame_equal(one, quiet(pred.summaries, df, threads=th, **opts),
                                      check_exact=True)  # fmt: skip
    assert {"rmst_pfs_24_prior_share", "p_grade3plus_any_median"} <= set(one.columns)
    pd.testing.assert_frame_equal(
        a.iloc[:10].reset_index(drop=True), a.iloc[-10:].reset_index(drop=True)
    )


def test_new_type_seed(pred):
    df = pd.DataFrame(
        [STD_R | {"tumour_type": "thymic"}, STD_R | {"tumour_type": "appendiceal"}],
        index=["t", "a"],
    )
    one = quiet(pred.summaries, df, new_type="population", seed=4)
    again = quiet(pred.summaries, df, new_type="population", seed=4)
    other = quiet(pred.summaries, df, new_type="population", seed=5)
    pd.testing.assert_frame_equal(one, again)
    assert not np.allclose(one["median_pfs_mean"], other["median_pfs_mean"])
    # the first new label gets the first draws: as a single patient with that seed
    p = quiet(pred.patient, **(STD_R | {"tumour_type": "thymic"}), new_type="population", seed=4)
    med = p.summary.loc[p.summary["quantity"] == "median_pfs", "median"].iloc[0]
    assert one.loc["t", "median_pfs_median"] == pytest.approx(med, rel=1e-12)
    with pytest.raises(ValueError, match="patient 't': tumour_type='thymic'"):
        pred.summaries(df)


# ---------------------------------------------------------------------------------------------
# validation and warnings
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        dict(planned_gbq=-3.0),
        dict(planned_gbq="7.4"),
        dict(prior_pfs_months=None),
        dict(line="PRRT"),
        dict(prior_gbq=float("nan")),
        dict(prior_pfs_months=5000.0),
    ],
)
def test_errors_are_those_of_single_patients(pred, change):
    df = pd.DataFrame([STD_R, STD_R | change], index=["ok", "bad"])
    with pytest.raises(ValueError) as many:
        pred.summaries(df)
    with pytest.raises(ValueError) as table:
        pred.patients(df)
    assert str(many.value) == str(table.value)
    rec = {k: math.nan if v is None else v for k, v in (STD_R | change).items()}
    with pytest.raises(ValueError) as one:
        pred.patient(**rec)
    assert str(many.value) == f"patient 'bad': {one.value}"
    with pytest.raises(ValueError) as alone:
        pred.summaries(df.loc[["bad"]])
    assert str(alone.value) == str(one.value)


def test_bad_tables_and_options(pred):
    df = pd.DataFrame([STD_R])
    with pytest.raises(TypeError, match="DataFrame"):
        pred.summaries([STD_R])
    with pytest.raises(ValueError, match="missing column"):
        pred.summaries(df.drop(columns="line"))
    with pytest.raises(ValueError, match="no rows"):
        pred.summaries(df.iloc[:0])
    for kw, match in [
        (dict(chunk_size=0), "chunk_size=0"),
        (dict(chunk_size=2.5), "chunk_size=2.5"),
        (dict(threads=0), "threads=0"),
        (dict(threads=True), "threads=True"),
        (dict(threads=1.5), "threads=1.5"),
        (dict(t_probs=[-1]), "t_probs"),
        (dict(seed=-1), "seed=-1"),
        (dict(new_type="drop"), "new_type"),
        (dict(interval=1.5), "prob=1.5"),
    ]:
        with pytest.raises(ValueError, match=match):
            pred.summaries(df, **kw)


def test_extrapolation_warnings_are_aggregated(pred):
    n = 500
    df = pd.DataFrame([STD_R] * n, index=range(n))
    df.loc[::2, "planned_gbq"] = np.linspace(20.0, 30.0, n // 2)  # outside R-PRRT's range
    df.loc[::5, "prior_pfs_months"] = 12.0  # below the 18-month threshold
    with pytest.warns(ExtrapolationWarning) as rec:
        out = pred.summaries(df)
    msgs = [str(w.message) for w in rec if issubclass(w.category, ExtrapolationWarning)]
    assert len(msgs) == 2  # planned activity, prior PFS (cumulative activity stays in range)
    planned = next(m for m in msgs if "activity range" in m)
    assert planned.startswith(f"{n // 2} of {n} patients extrapolate, e.g. patient 0: ")
    assert "planned_gbq=20 is outside the calibrated R-PRRT activity range" in planned
    assert any(m.startswith(f"{n // 5} of {n} patients") and "18-month" in m for m in msgs)
    assert out.loc[1, "extrapolation"] == ""
    assert "18-month" in out.loc[5, "extrapolation"]
    with pytest.warns(ExtrapolationWarning, match=r"^the prediction extrapolates: prior_pfs"):
        pred.summaries(pd.DataFrame([STD_R | {"prior_pfs_months": 12.0}]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        pred.summaries(pd.DataFrame([STD_R] * 3))


def test_nonfinite_draws_raise(pred):
    bad = fake_survival()
    bad["alpha2"] = np.full(S, 800.0)  # refused before any answer (store's range checks)
    with pytest.raises(ValueError, match=r"'alpha2'.*800"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        Predictor(bad).summaries(pd.DataFrame([STD_R]))


def test_summaries_import_no_pymc():
    code = f"""
import sys, pandas as pd
sys.path.insert(0, {str(__file__.rsplit("/", 1)[0])!r})
from netbayes.predict import Predictor
from test_predict import fake_survival, fake_toxicity, STD_R
Predictor(fake_survival(), fake_toxicity()).summaries(pd.DataFrame([STD_R] * 3))
heavy = [m for m in ("pymc", "pytensor", "arviz", "nutpie") if m in sys.modules]
assert not heavy, heavy
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


# ---------------------------------------------------------------------------------------------
# pieces: the mixture median and the any-line risk table
# ---------------------------------------------------------------------------------------------
def test_mixture_median_newton_finds_the_bisection_root():
    r = np.random.default_rng(4)
    n, P = 300, 20
    k = np.exp(r.uniform(np.log(0.3), np.log(5.0), n))
    w = np.array([0.07, 0.76, 0.17])
    loglam = [r.normal(3.0, 1.5, (P, n)) for _ in w]
    got = _mixture_median(k, loglam, w, np.power(math.log(2.0), 1.0 / k))
    for p in range(P):
        lam = np.exp(np.stack([L[p] for L in loglam], axis=1))
        ref = F.mixture_median(k, lam, w)
        np.testing.assert_allclose(got[p], ref, rtol=1e-12)
        s = (w * F.weibull_sf(got[p][:, None], k[:, None], lam)).sum(axis=1)
        assert np.all(np.abs(s - 0.5) < 1e-12)  # S(median) = 1/2


def _quadrature(th: dict[str, np.ndarray], eta: np.ndarray, n_nodes: int, rule: str) -> np.ndarray:
    """The any-line risk of ``grade3_risk`` per draw at each eta, (S, E), written out."""
    x, w = T.normal_quadrature(n_nodes, rule)  # type: ignore[arg-type]
    c, sig = th["c3"], th["sigma_u"]
    z = c[:, None, :, None] - eta[None, :, None, None] - sig[:, None, None, None] * x
    return 1.0 - np.prod(ndtr(z), axis=2) @ w


@pytest.mark.parametrize(("n_nodes", "rule"), [(96, "trapezoid"), (24, "gauss-hermite")])
def test_any_line_table_meets_its_error_bound(n_nodes, rule):
    """Densely between the nodes, over a range that saturates at both ends, for sigma_u from
    0 to 3: the error is below the proven bound, and the bound below 1e-7."""
    n = 40
    th = wide_toxicity(3, n)
    eta = np.linspace(-40.0, 40.0, 2667)  # step 0.03 against grid steps of 0.02-0.04
    table = T.any_line_risk_table(
        th, np.full(n, -40.0), np.full(n, 40.0), n_nodes=n_nodes, rule=rule
    )
    got = table(np.ascontiguousarray(np.broadcast_to(eta[:, None], (eta.size, n)))).T
    exact = _quadrature(th, eta, n_nodes, rule)
    err = float(np.max(np.abs(got - exact)))
    assert err <= table.max_error < 1e-7
    assert err > 0  # it does interpolate
    # and against grade3_risk itself, at patients
    _, anyl = T.grade3_risk(
        th, [3.0, 7.4, 29.6], [0.0, 44.7, 10.0], "188Re-HEDP", n_nodes=n_nodes, rule=rule
    )
    e = T._eta(
        T._draws(th),
        np.array([3.0, 7.4, 29.6]),
        np.array([0.0, 44.7, 10.0]),
        np.zeros(3),
        np.array(["188Re-HEDP"] * 3),
    )
    np.testing.assert_allclose(table(e.T).T, anyl, rtol=0, atol=table.max_error)


def test_fourth_derivative_bound_holds():
    """D4_BOUND bounds |h''''| for h(y) = prod_l Phi(c_l - y), any cutpoints (checked by
    finite differences, including equal cutpoints, where the factors' peaks coincide)."""
    y = np.linspace(-8.0, 8.0, 16001)
    dy = y[1] - y[0]
    r = np.random.default_rng(0)
    worst = 0.0
    for c in [np.zeros(3), *r.normal(0.0, 1.5, (100, 3))]:
        h = np.prod(ndtr(c[:, None] - y), axis=0)
        worst = max(worst, float(np.max(np.abs(np.diff(h, 4)))) / dy**4)
    assert worst < T.D4_BOUND
    assert T.D4_BOUND == pytest.approx(7.9118, abs=1e-4)


def test_any_line_table_input_checks():
    th = fake_toxicity()
    with pytest.raises(ValueError, match="finite"):
        T.any_line_risk_table(th, np.full(S, -np.inf), np.zeros(S))
    with pytest.raises(ValueError, match="max_step"):
        T.any_line_risk_table(th, np.zeros(S), np.ones(S), max_step=0.0)
    table = T.any_line_risk_table(th, np.zeros(S), np.ones(S))
    with pytest.raises(ValueError, match="draw axis last"):
        table(np.zeros((3, S + 1)))
    # a degenerate range still gives a usable table
    point = T.any_line_risk_table(th, np.full(S, 0.5), np.full(S, 0.5))
    np.testing.assert_allclose(
        point(np.full((1, S), 0.5))[0],
        _quadrature(th, np.array([0.5]), T.DEFAULT_N_NODES, T.DEFAULT_RULE)[:, 0],
        atol=1e-12,
    )


def test_order_statistics_are_exact():
    """Candidate columns or whole rows, bit patterns or floats: always the exact order
    statistics (against numpy.partition), for similar rows (the chunks' case), unrelated
    rows, ties, zeros and negative values."""
    r = np.random.default_rng(7)
    base = r.lognormal(0.0, 1.0, 4000)
    cases = {
        "similar rows": base * np.exp(r.normal(0.0, 0.01, (64, 1)) + r.normal(0, 1e-3, (64, 4000))),
        "unrelated rows": r.random((64, 4000)),
        "ties and zeros": np.round(r.random((64, 4000)), 2) * (r.random((64, 4000)) < 0.7),
        "negative": r.normal(size=(64, 4000)),
        "one row": r.random((1, 4000)),
        "equal rows": np.tile(base, (5, 1)),
        "odd draws": base[:3999] * np.exp(r.normal(0.0, 0.01, (8, 1))),
    }
    for name, x in cases.items():
        n = x.shape[1]
        kth = np.unique([99, 100, n // 2 - 1, n // 2, n - 101, n - 100])
        want = np.partition(x, kth, axis=1)[:, kth]
        got = _order_statistics(x, kth)
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("iv", [Interval(), Interval(0.8), Interval(0.9, "hdi")])
def test_summarise_is_interval_describe(iv):
    """The chunk summaries equal ``Interval.describe`` (the single-patient path) row by row."""
    r = np.random.default_rng(3)
    draws = r.lognormal(0.0, 0.5, (4, 3, 1001)) * np.exp(r.normal(0, 0.01, (4, 1, 1)))
    want = np.stack(
        [np.stack([list(iv.describe(draws[p, q]).values()) for q in range(3)]) for p in range(4)]
    )
    got = _summarise(iv, draws.copy(), ["x"] * 3)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_shipped_posteriors_agree():
    """The shipped posteriors (4000 draws; sigma_u down to ~0 and theta up to ~48 exercise
    every tabulation path): a patient per line and tumour-type kind."""
    pred = Predictor.load()
    rows = [
        dict(tumour_type="midgut", line="I-PRRT", planned_gbq=29.6),
        dict(
            tumour_type="gi_non_pancreatic",
            line="R-PRRT",
            prior_pfs_months=30.0,
            prior_gbq=29.9,
            planned_gbq=14.9,
        ),
        dict(
            tumour_type="pancreatic",
            line="RR-PRRT",
            prior_pfs_months=16.0,
            prior_gbq=44.7,
            planned_gbq=15.0,
        ),
        dict(tumour_type="bronchial", line="188Re-HEDP", prior_gbq=60.0, planned_gbq=5.0),
        dict(
            tumour_type="appendiceal",
            line="R-PRRT",
            prior_pfs_months=8.0,
            prior_gbq=120.0,
            planned_gbq=40.0,
        ),
    ]
    df = pd.DataFrame(rows, index=list("abcde"))
    batch = quiet(pred.summaries, df, new_type="population", seed=2)
    for lab, rec in df.iterrows():
        one = single_row(pred, rec, new_type="population", seed=2)
        assert_agree(batch, one, lab, ANY_LINE_BOUND)
