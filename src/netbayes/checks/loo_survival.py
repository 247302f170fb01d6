r"""Leave-one-out units of the survival model: Table 5 rows and 188Re-HEDP patients (NumPy).

For each published Table 5 row in the likelihood this module computes, at every posterior draw,
the row's log-likelihood exactly as :class:`netbayes.models.survival.SurvivalModel` writes it
(the KM median as an order statistic of the row's law, truncated first-line or a mixture over
the prior-PFS quadrature nodes, with the effective sample size of ``censoring="followup"``, plus
the SE term), the predictive CDF of the row's median at the published value and one predictive
median. ``tests/test_loo.py`` checks the log-likelihoods against the model's own PyTensor
terms, so the two cannot drift apart silently.

The predictive of a published median under draw :math:`\theta` is the one the likelihood
states: :math:`F_\theta(\hat m) \sim \mathrm{Beta}(\alpha, \beta)` with :math:`\alpha = 1 +
(r-1)s`, :math:`\beta = 1 + (n-r)s`, :math:`s = (n_{eff}-1)/(n-1)` (:math:`s = 1` without
censoring: the :math:`r`-th order statistic of :math:`n`), so its CDF at :math:`y` is the
regularised incomplete beta function :math:`I_{F_\theta(y)}(\alpha, \beta)`.

The "all tumours" rows are not in the likelihood; their predictive comes from the in-sample
check's cohort simulation (:func:`netbayes.checks.survival_ppc.survival_ppc_table`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import betainc, gammaln

from netbayes import spec, vocab
from netbayes.calibration import re188, rotterdam, survival_calibration
from netbayes.checks.base import Posteriors, model_config, source_labels
from netbayes.checks.loo_units import LooFigure, LooUnit
from netbayes.checks.survival_ppc import survival_ppc_table
from netbayes.families import get_family
from netbayes.formulas.survival import re188_prior_pfs_nodes
from netbayes.spec import GBQ_REF, GBQ_UNIT, X_REF

__all__ = ["re188_units", "survival_config", "table5_units"]

_SURVIVAL_TABLE = "rotterdam_survival"
_RE188_TABLE = "re188_patients"
_TINY = -1e-300
_LOG_2PI = math.log(2.0 * math.pi)
Law = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def survival_config(posterior: Any) -> dict[str, Any]:
    """The settings of a survival posterior that its likelihood depends on.

    Parameters
    ----------
    posterior : StoredPosterior, FitResult or mapping
        Its card's (or fit's) ``model_config``; a plain mapping of draws gets the defaults.

    Returns
    -------
    dict
        ``n_grid`` (16), ``censoring`` (``"none"``) and ``accrual`` (``"uniform"``).
    """
    cfg = model_config(posterior)
    cens = cfg.get("censoring") or {}
    return {
        "n_grid": int(cfg.get("n_grid", 16)),
        "censoring": str(cens.get("censoring", "none")),
        "accrual": str(cens.get("accrual", "uniform")),
    }


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """:math:`\\log(1 - e^x)` for :math:`x < 0`."""
    x = np.asarray(x, float)
    out = np.empty_like(x)
    near = x > -math.log(2.0)  # each element's branch only (NaN takes the second, as before)
    far = ~near
    with np.errstate(divide="ignore", invalid="ignore"):
        out[near] = np.log(-np.expm1(x[near]))
        out[far] = np.log1p(-np.exp(x[far]))
    return out


def _midpoints(g: int) -> np.ndarray:
    return (np.arange(g) + 0.5) / g


def _truncated_law(fam: Any, k: np.ndarray, lam: np.ndarray, lower: float) -> Law:
    """``(log S, log F, log f)`` of the law truncated at ``lower``; ``k``, ``lam``: (S,)."""
    log_sl = fam.logsf_np(lower, k, lam)

    def law(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.asarray(t, float)
        kk, ll, sl = (np.reshape(v, (-1,) + (1,) * (t.ndim - 1)) for v in (k, lam, log_sl))
        log_s = np.minimum(fam.logsf_np(t, kk, ll) - sl, 0.0)
        log_f = fam.logpdf_np(t, kk, ll) - sl
        return log_s, _log1mexp(np.minimum(log_s, _TINY)), log_f

    return law


def _mixture_law(fam: Any, k: np.ndarray, log_lam: np.ndarray) -> Law:
    """The equal-weight mixture over nodes: ``k`` (S,), ``log_lam`` (S, G)."""
    g = log_lam.shape[-1]
    lam = np.exp(log_lam)

    def nodes(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.asarray(t, float)[..., None]  # (S, ..., 1)
        shape = (-1,) + (1,) * (t.ndim - 1)
        return t, np.reshape(k, shape), lam.reshape(lam.shape[0], *(1,) * (t.ndim - 2), g)

    def mean(v: np.ndarray) -> np.ndarray:  # log of the equal-weight mean over the nodes
        m = v.max(axis=-1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        with np.errstate(divide="ignore"):
            return np.log(np.exp(v - m).sum(axis=-1)) + m[..., 0] - math.log(g)

    def law(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t, kk, ll = nodes(t)
        log_s = fam.logsf_np(t, kk, ll)
        return (
            mean(log_s),
            mean(_log1mexp(np.minimum(log_s, _TINY))),
            mean(fam.logpdf_np(t, kk, ll)),
        )

    def log_cdf(t: np.ndarray) -> np.ndarray:
        """The second output of ``law`` alone (the same numbers; no density)."""
        t, kk, ll = nodes(t)
        return mean(_log1mexp(np.minimum(fam.logsf_np(t, kk, ll), _TINY)))

    law.log_cdf = log_cdf  # type: ignore[attr-defined]  # what _invert evaluates 60 times
    return law


def _row_terms(
    law: Law,
    median: float,
    se: float,
    n: float,
    kappa: np.ndarray,
    cens: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihood (median + SE term) and the Beta order-statistic parameters per draw."""
    S = len(kappa)
    log_s_m, log_cdf_m, log_f_m = (
        np.broadcast_to(v, (S, 1))[:, 0] for v in law(np.full((S, 1), median))
    )
    n_eff = np.full(S, n)
    if cens is not None and np.any(cens[1] > 0):
        t_nodes, c = cens
        log_s_t, _, log_f_t = law(np.broadcast_to(t_nodes, (S, len(t_nodes))))
        expo = log_f_t - 2.0 * log_s_t + (log_s_m - log_cdf_m)[:, None]
        n_eff = n / (1.0 + np.sum(c * np.exp(np.minimum(expo, 700.0)), axis=-1))
    r = math.ceil(n / 2.0)
    s = np.ones(S) if n <= 1.0 else (n_eff - 1.0) / (n - 1.0)
    alpha, beta = 1.0 + (r - 1.0) * s, 1.0 + (n - r) * s
    ll = (
        gammaln(alpha + beta) - gammaln(alpha) - gammaln(beta)
        + (alpha - 1.0) * log_cdf_m + (beta - 1.0) * log_s_m + log_f_m
    )  # fmt: skip
    if np.isfinite(se):
        resid = math.log(se) - (math.log(0.5) - 0.5 * np.log(n_eff) - log_f_m)
        tau = kappa / math.sqrt(n)
        z = (resid + 0.5 * tau**2) / tau
        ll = ll - 0.5 * z**2 - np.log(tau) - 0.5 * _LOG_2PI
    return ll, alpha, beta


def _invert(law: Law, u: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 60) -> np.ndarray:
    """Per draw, the time ``t`` with ``F(t) = u`` (bisection on log t in ``[lo, hi]``)."""
    a, b = np.log(lo), np.log(hi)
    log_u = np.log(u)
    cdf = getattr(law, "log_cdf", None) or (lambda t: law(t)[1])
    for _ in range(iters):
        mid = 0.5 * (a + b)
        below = cdf(np.exp(mid)[:, None])[:, 0] < log_u
        a, b = np.where(below, mid, a), np.where(below, b, mid)
    return np.exp(0.5 * (a + b))


def _study_shift(post: Posteriors, name: str, study: str, S: int) -> np.ndarray:
    u = post.study_effect(name, study)
    return np.zeros(S) if u is None else np.asarray(u, float).reshape(S)


def table5_units(
    post: Posteriors, endpoint: str, seed: int = 11, n_sims: int = 1000
) -> list[LooUnit]:
    """The Table 5 rows of one endpoint as leave-one-out units.

    Parameters
    ----------
    post : Posteriors
        Holds the survival posterior of ``endpoint``.
    endpoint : {"pfs", "os"}
    seed : int
        Seed of the predictive medians (and of the "all tumours" rows' simulation).
    n_sims : int
        Posterior draws of the "all tumours" rows' cohort simulation.

    Returns
    -------
    list of LooUnit
        One unit per row in the likelihood (its median and SE), then one unit without a
        log-likelihood per "all tumours" row.
    """
    name = "survival_pfs" if endpoint == "pfs" else "survival_os"
    d = post.draws(name)
    src = post.get(name)
    cfg = survival_config(src)
    fam = get_family(post.family(name))
    cal = survival_calibration(endpoint)
    thr_r, thr_rr = cal.threshold("R-PRRT"), cal.threshold("RR-PRRT")
    S = d["k1"].shape[0]
    rng = np.random.default_rng(seed)
    u_rot = _study_shift(post, name, rotterdam.STUDY_ID, S)
    log_lam1 = d["alpha1"][:, None] + d["sigma1"][:, None] * d["z1"]  # (S, 6), PFS first line
    type2 = d["alpha2"][:, None] + d["sigma2"][:, None] * d["z2"]
    if endpoint == "os":
        ll1_ep = d["alpha1_os"][:, None] + d["sigma1_os"][:, None] * d["z1_os"]
        k1_ep = d["k1_os"]
    else:
        ll1_ep, k1_ep = log_lam1, d["k1"]
    k1, k2 = d["k1"], d["k2"]
    kappa = d["kappa_se"]
    rows = cal.summaries[endpoint]
    fu = (
        cal.followup_of(endpoint, rows) if cfg["censoring"] == "followup"
        else np.full(len(rows), np.nan)
    )  # fmt: skip
    src_lab = source_labels()
    label = endpoint.upper()
    units: list[LooUnit] = []
    g = cfg["n_grid"]
    for i, row in enumerate(rows.itertuples(index=False)):
        ty, line, group = str(row.tumour_type), str(row.line), str(row.group)
        if ty == vocab.ALL_TUMOURS or not np.isfinite(row.median_months):
            continue
        j = vocab.TUMOUR_TYPES.index(ty)
        n, med, se = float(row.n), float(row.median_months), float(row.se_months)
        if line == spec.FIRST_LINE:
            ctrl = d["delta_control"] if group == "control" else 0.0
            lam = np.exp(ll1_ep[:, j] + ctrl + u_rot)
            law, lower = _truncated_law(fam, k1_ep, lam, thr_r), thr_r
        elif group == "retreatment":
            x1 = fam.truncated_quantile(
                _midpoints(g)[None, :],
                k1[:, None],
                np.exp(log_lam1[:, j] + u_rot)[:, None],
                thr_r,
            )  # (S, G)
            t2 = (type2[:, j] + u_rot)[:, None]
            lp_r = t2 + d["beta_x"][:, None] * np.log(x1 / X_REF)
            lp_r = (
                lp_r
                + (d["beta_gbq"] * (cal.cumulative_gbq["R-PRRT"] - GBQ_REF) / GBQ_UNIT)[:, None]
            )
            if not spec.line_spec(line).nested:
                log_lam = lp_r
            else:
                g2 = max(g // 2, 4)
                x2 = fam.truncated_quantile(
                    _midpoints(g2)[None, None, :],
                    k2[:, None, None],
                    np.exp(lp_r)[..., None],
                    thr_rr,
                )  # (S, G, G2)
                log_lam = (
                    t2[..., None]
                    + d["beta_x"][:, None, None] * np.log(x2 / X_REF)
                    + (d["beta_gbq"] * (cal.cumulative_gbq["RR-PRRT"] - GBQ_REF) / GBQ_UNIT)[
                        :, None, None
                    ]
                    + d["gamma_rr"][:, None, None]
                ).reshape(S, -1)
            law, lower = _mixture_law(fam, k2, log_lam), 0.0
        else:  # pragma: no cover - the model has no such rows
            continue
        cens = None
        if np.isfinite(fu[i]):
            from netbayes.likelihoods.censoring import greenwood_nodes

            t_n, c_n = greenwood_nodes(med, fu[i], n, lower, cfg["accrual"])
            cens = (t_n[0], c_n[0])
        ll, alpha, beta = _row_terms(law, med, se, n, kappa, cens)
        _, log_cdf_y, _ = law(np.full((S, 1), med))
        below = betainc(alpha, beta, np.exp(log_cdf_y[:, 0]))
        u = rng.beta(alpha, beta)
        if line == spec.FIRST_LINE:
            sample = fam.truncated_quantile(u, k1_ep, lam, thr_r)
        else:
            q = fam.quantile(u[:, None], k2[:, None], np.exp(log_lam))
            sample = _invert(law, u, q.min(axis=1) * 0.999, q.max(axis=1) * 1.001)
        rid = str(row.row_id)
        fig = LooFigure(
            endpoint=label,
            figure=f"{label} {group} {line} {ty} (n={int(n)}) median, months",
            source=src_lab.get((_SURVIVAL_TABLE, rid), ""),
            source_table=_SURVIVAL_TABLE,
            source_row_id=rid,
            published=med,
            below=below,
            equal=np.zeros(S),
            sample=sample,
        )
        units.append(LooUnit(f"{endpoint}:{rid}", ll, [fig]))
    units += _all_rows(post, name, endpoint, fam.name, seed, n_sims)
    return units


def _all_rows(
    post: Posteriors, name: str, endpoint: str, family: str, seed: int, n_sims: int
) -> list[LooUnit]:
    """The "all tumours" rows: held out of the likelihood, scored under the posterior
    predictive (the in-sample check's cohort simulation)."""
    t = survival_ppc_table(
        dict(post.draws(name)), endpoint, n_sims=n_sims, seed=seed, family=family,
        study_effect=post.study_effect(name, rotterdam.STUDY_ID),
    )  # fmt: skip
    t = t[~t["in_likelihood"]]
    src_lab = source_labels()
    label = endpoint.upper()
    out = []
    for r in t.itertuples(index=False):
        rid = str(r.row_id)
        fig = LooFigure(
            endpoint=label,
            figure=f"{label} {r.group} {r.line} {r.tumour_type} (n={r.n}) median, months",
            source=src_lab.get((_SURVIVAL_TABLE, rid), ""),
            source_table=_SURVIVAL_TABLE,
            source_row_id=rid,
            published=float(r.published_median_months),
            precomputed={
                "pit": float(r.pit),
                "median": float(r.predicted_median_months),
                "lower": float(r.pi95_eti_lower_months),
                "upper": float(r.pi95_eti_upper_months),
            },
        )
        out.append(LooUnit(f"{endpoint}:{rid}", None, [fig]))
    return out


def re188_units(post: Posteriors, seed: int = 12) -> list[LooUnit]:
    """Each 188Re-HEDP patient's OS as a leave-one-out unit (the OS posterior).

    The patient's term is the censored log-likelihood of the model's 188Re-HEDP block (the
    salvage law with :math:`\\gamma_{188Re}` at the patient's own prior 177Lu activity, mixed
    over the prior-PFS nodes of the pilot's interval law,
    :func:`netbayes.formulas.survival.re188_prior_pfs_nodes`, and a coarse tumour type over its
    fine types); a censored time's PIT is randomised over :math:`[F(c), 1]`.

    Parameters
    ----------
    post : Posteriors
        Holds the OS posterior.
    seed : int
        Seed of the predictive times.

    Returns
    -------
    list of LooUnit
    """
    name = "survival_os"
    d = post.draws(name)
    fam = get_family(post.family(name))
    S = d["k2"].shape[0]
    rng = np.random.default_rng(seed)
    blocks = survival_calibration("os").individual_for("os")
    pts = re188.patients().reset_index(drop=True)
    src_lab = source_labels()
    units: list[LooUnit] = []
    for b in blocks:
        if b.line != "188Re-HEDP":  # pragma: no cover - the packaged data have one block
            continue
        u = _study_shift(post, name, b.study or re188.STUDY_ID, S)
        loglam = d["alpha2"][:, None] + d["sigma2"][:, None] * d["z2"] + d["gamma_re188"][:, None]
        base = loglam + u[:, None]  # (S, 6)
        k = d["k2"][:, None]
        lx = (
            np.zeros(1)
            if b.prior_pfs is None
            else np.log(np.asarray(re188_prior_pfs_nodes(*b.prior_pfs)) / X_REF)
        )
        gb = np.full(len(b.time_months), GBQ_REF) if b.cumulative_gbq is None else b.cumulative_gbq
        for i in range(len(b.time_months)):
            t, ev, w = float(b.time_months[i]), float(b.event[i]), b.type_weights[i]
            cols = np.flatnonzero(w > 0)
            shift = d["beta_gbq"] * (gb[i] - GBQ_REF) / GBQ_UNIT  # (S,)
            # components: tumour types x prior-PFS nodes, weights w_j / J
            lam = np.exp(
                base[:, cols, None] + (shift[:, None] + d["beta_x"][:, None] * lx)[:, None, :]
            ).reshape(S, -1)
            wc = np.repeat(w[cols], len(lx)) / len(lx)
            ll_c = fam.censored_loglik_np(t, ev, k, lam) + np.log(wc)
            m = ll_c.max(axis=1, keepdims=True)
            ll = np.log(np.exp(ll_c - m).sum(axis=1)) + m[:, 0]
            cdf = (fam.cdf(t, k, lam) * wc).sum(axis=1)
            j = rng.choice(len(wc), size=S, p=wc / wc.sum())
            sample = fam.sample(rng, d["k2"], lam[np.arange(S), j], (S,))
            p = pts.iloc[i] if i < len(pts) else None
            pid = str(int(p["patient"])) if p is not None else str(i + 1)
            ty = str(p["tumour_type"]) if p is not None else ""
            fig = LooFigure(
                endpoint="OS",
                figure=f"188Re-HEDP patient {pid} ({ty}) OS, months"
                + ("" if ev else " (censored)"),
                source=src_lab.get((_RE188_TABLE, pid), ""),
                source_table=_RE188_TABLE,
                source_row_id=pid,
                published=t,
                below=cdf,
                equal=np.zeros(S) if ev else 1.0 - cdf,
                sample=sample,
                censored=not ev,
            )
            units.append(LooUnit(f"os:re188_patient_{pid}", ll, [fig]))
    return units
