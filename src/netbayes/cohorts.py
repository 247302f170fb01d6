"""Typed views of the calibration cohorts, built from the validated tables in :mod:`netbayes.data`.

These functions reshape published numbers for people and for the model builders; they never
invent data. Derived quantities (grade-0 counts, Wald standard errors) are computed here, once.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from netbayes import vocab
from netbayes._lazy import LazyModule
from netbayes.data import load_table

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = [
    "calibration_summary",
    "largest_remainder",
    "re188_cycle_grade_counts",
    "survival_summaries",
    "wald_se",
]

Z95 = 1.959963984540054
"""Standard-normal 97.5% quantile: the papers' 95% Wald intervals are median ± Z95·SE."""


def survival_summaries(endpoint: str = "pfs") -> pd.DataFrame:
    """Return Table 5 rows for one endpoint with the standard error implied by each CI.

    Parameters
    ----------
    endpoint : {"pfs", "os"}
        Progression-free or overall survival.

    Returns
    -------
    pandas.DataFrame
        The ``rotterdam_survival`` columns plus ``se_months`` (the Wald SE, NaN where the CI was
        printed "N/A") and ``se_source``: ``"symmetric"`` (half the CI width / 1.96),
        ``"upper"`` (a lower bound clipped at zero: upper half only) or ``"missing"``.

    Raises
    ------
    ValueError
        If ``endpoint`` is not ``"pfs"`` or ``"os"``.
    """
    if endpoint not in ("pfs", "os"):
        raise ValueError(f"endpoint={endpoint!r} is not allowed; expected 'pfs' or 'os'")
    s = load_table("rotterdam_survival")
    s = s[s["endpoint"] == endpoint].reset_index(drop=True)
    se, source = wald_se(s["median_months"], s["ci95_lower_months"], s["ci95_upper_months"])
    s["se_months"] = se
    s["se_source"] = source
    return s


def wald_se(median: object, lower: object, upper: object) -> tuple[np.ndarray, np.ndarray]:
    """The standard error of a median implied by its symmetric 95% (Wald) CI.

    Parameters
    ----------
    median, lower, upper : array-like of float
        The median and the CI bounds (NaN where no CI was printed).

    Returns
    -------
    se : numpy.ndarray
        Half the CI width / 1.96; where the lower bound was clipped at zero (``lower <= 0`` and
        the symmetric lower bound would be negative), the upper half-width / 1.96; NaN where
        the CI is missing.
    source : numpy.ndarray of str
        ``"symmetric"``, ``"upper"`` or ``"missing"`` per row.
    """
    med, lo, hi = (np.asarray(x, dtype=float) for x in (median, lower, upper))
    with np.errstate(invalid="ignore"):
        clipped = (lo <= 0) & (med - (hi - med) < 0)
    se = np.where(clipped, (hi - med) / Z95, (hi - lo) / (2 * Z95))
    source = np.select([np.isnan(lo) | np.isnan(hi), clipped], ["missing", "upper"], "symmetric")
    return se, source.astype(object)


def re188_cycle_grade_counts() -> pd.DataFrame:
    """Return the 188Re-HEDP per-cycle CTCAE grade counts, grades 0-IV, one row per cell line.

    Grade 0 is derived as the number of cycles minus the cycles at grades I-IV (the per-cycle
    grades are mutually exclusive; see ``data/AUDIT.md``, F18).

    Returns
    -------
    pandas.DataFrame
        Index ``cell_line`` (the :data:`netbayes.vocab.CELL_LINES` order); columns
        ``grade_0`` ... ``grade_4`` and ``n_cycles``.
    """
    t = load_table("re188_toxicity_per_cycle")
    wide = t.pivot_table(index="cell_line", columns="grade", values="count", observed=True)
    wide = wide.reindex(index=list(vocab.CELL_LINES), columns=[1, 2, 3, 4]).astype(int)
    n = t.groupby("cell_line", observed=True)["n_cycles"].first().reindex(wide.index)
    out = pd.DataFrame({"grade_0": n - wide.sum(axis=1)})
    for g in (1, 2, 3, 4):
        out[f"grade_{g}"] = wide[g]
    out["n_cycles"] = n
    out.index = pd.CategoricalIndex(out.index, categories=list(vocab.CELL_LINES), name="cell_line")
    if (out["grade_0"] < 0).any():  # pragma: no cover - the loader's row rules prevent this
        raise ValueError("re188_toxicity_per_cycle: grade counts exceed n_cycles")
    return out


def calibration_summary() -> dict[str, pd.DataFrame]:
    """Summarise the published calibration cohorts in a few tables.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``"pfs_after_retreatment"``: Table 5 median PFS (months, 95% CI) after R-PRRT and
        RR-PRRT by tumour type; ``"toxicity_grade3plus"``: Table 6 grade III and IV counts and
        percentages per phase for each cell line and any line; ``"re188_patients"``: the six
        188Re-HEDP patients; ``"cohorts"``: one line per cohort with its size and source.
    """
    pfs = survival_summaries("pfs")
    pfs = pfs[(pfs["group"] == "retreatment") & (pfs["line"] != "I-PRRT")]
    pfs_table = pfs.assign(
        tumour_type=pfs["tumour_type"].astype(str), line=pfs["line"].astype(str)
    )[
        [
            "line",
            "tumour_type",
            "n",
            "median_months",
            "ci95_lower_months",
            "ci95_upper_months",
        ]
    ].rename(
        columns={
            "median_months": "median_pfs_months",
            "ci95_lower_months": "ci95_lower",
            "ci95_upper_months": "ci95_upper",
        }
    )
    tox = load_table("rotterdam_toxicity")
    tox = tox[tox["cell_line"] != "creatinine"]
    tox_table = (
        tox.assign(
            phase=np.where(tox["group"] == "control", "control (I-PRRT)", tox["phase"].astype(str)),
        )
        .pivot_table(
            index=["phase", "n"],
            columns=["cell_line", "grade"],
            values="count",
            observed=True,
            sort=False,
        )
        .astype(int)
    )
    tox_table.columns = [f"{cl}_grade{'III' if g == 3 else 'IV'}" for cl, g in tox_table.columns]
    pts = load_table("re188_patients")[
        [
            "patient",
            "age_years",
            "sex",
            "tumour_type",
            "lu177_cumulative_gbq",
            "re188_cumulative_gbq",
            "n_cycles",
            "os_months",
            "os_event",
        ]
    ]
    mix = load_table("rotterdam_tumour_mix")
    mix = mix[(mix["reported_in"] == "table5_pfs") & (mix["tumour_type"] == "all")]
    n_mix = dict(
        zip(zip(mix["group"], mix["line"].astype(str), strict=True), mix["n"], strict=True)
    )
    n_tox = tox.groupby(["group", "phase"], observed=True)["n"].first()
    cohorts = pd.DataFrame(
        [
            (
                "Rotterdam R-PRRT (efficacy)",
                n_mix[("retreatment", "I-PRRT/R-PRRT")],
                "aggregate",
                "rotterdam2019 Tables 3, 5",
            ),
            (
                "Rotterdam RR-PRRT",
                n_mix[("retreatment", "RR-PRRT")],
                "aggregate",
                "rotterdam2019 Tables 3, 5",
            ),
            (
                "Rotterdam control (efficacy)",
                n_mix[("control", "I-PRRT")],
                "aggregate",
                "rotterdam2019 Table 5",
            ),
            (
                "Rotterdam safety (I-/R-PRRT)",
                n_tox[("retreatment", "R-PRRT")],
                "aggregate",
                "rotterdam2019 Tables 6, 7",
            ),
            (
                "Rotterdam control (safety)",
                n_tox[("control", "I-PRRT")],
                "aggregate",
                "rotterdam2019 Tables 6, 7",
            ),
            ("188Re-HEDP pilot", len(pts), "individual", "re188pilot Tables 1, 2"),
        ],
        columns=["cohort", "n", "data", "source"],
    )
    return {
        "cohorts": cohorts,
        "pfs_after_retreatment": pfs_table.sort_values("line", kind="stable").reset_index(
            drop=True
        ),
        "toxicity_grade3plus": tox_table.reset_index(),
        "re188_patients": pts,
    }


def largest_remainder(n: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``n`` patients over groups in proportion to positive-total ``weights``:
    floor each share, then give the remaining patients to the largest remainders (ties in the
    order of ``weights``). Groups with no patient are left out. The one rule of the cohort
    prediction and the study simulator, so both build the same cohorts."""
    tot = sum(weights.values())
    exact = {t: n * v / tot for t, v in weights.items()}
    counts = {t: math.floor(v) for t, v in exact.items()}
    rest = n - sum(counts.values())
    for t in sorted(exact, key=lambda u: exact[u] - counts[u], reverse=True)[:rest]:
        counts[t] += 1
    return {t: c for t, c in counts.items() if c > 0}
