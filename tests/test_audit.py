"""The data audit as assertions (see data/AUDIT.md; each test's ID is a row there).

Every total, percentage, mean and median that can be recomputed from data/ is recomputed here.
Where the papers are inconsistent, the inconsistency itself is asserted (``KNOWN_*``), so an edit
that silently "fixes" or breaks a printed number fails a test and has to be explained.
"""

from __future__ import annotations

import math
import re
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from netbayes.data import data_dir, load_table

ROUND_TOL = 0.05 + 1e-9  # a value printed to 0.1 differs from the exact one by at most 0.05


def pct(count: float, n: float) -> float:
    return 100.0 * count / n


def text_value(table: str, row_id: str) -> float:
    t = load_table(table).set_index("row_id")
    return float(t.loc[row_id, "value"])


def rtxt(row_id: str) -> float:
    return text_value("rotterdam_text_values", row_id)


def ptxt(row_id: str) -> float:
    return text_value("re188_text_values", row_id)


def mismatches(df: pd.DataFrame, count: str, denominator: pd.Series) -> dict[str, tuple]:
    """Rows whose printed percentage differs from count/denominator by more than rounding."""
    out = {}
    for (_, row), d in zip(df.iterrows(), denominator, strict=True):
        if pd.isna(row["pct_printed"]):
            continue
        exact = pct(row[count], d)
        if abs(exact - row["pct_printed"]) > ROUND_TOL:
            out[row["row_id"]] = (round(exact, 2), row["pct_printed"])
    return out


# ----------------------------------------------------------------------------------------------
# Rotterdam: percentages
# ----------------------------------------------------------------------------------------------

KNOWN_MIX_PCT = {
    # 31/168 = 18.45%, printed 18.8 (both Table 5 blocks)
    "mix_table5_pfs_retre_iprrt_unknown": (18.45, 18.8),
    "mix_table5_os_retre_iprrt_unknown": (18.45, 18.8),
    # 63/99 = 63.64%, printed 63.3 in the PFS block and 63.6 in the OS block
    "mix_table5_pfs_contr_iprrt_midgut": (63.64, 63.3),
}


def test_A01_tumour_mix_percentages():
    mix = load_table("rotterdam_tumour_mix")
    totals = {"I-PRRT/R-PRRT": 168, "RR-PRRT": 13, "I-PRRT": 99}
    assert mismatches(mix, "n", mix["line"].map(totals).astype(float)) == KNOWN_MIX_PCT


def test_A02_tumour_mix_parts_sum_to_totals_and_agree_across_tables():
    mix = load_table("rotterdam_tumour_mix")
    for (rep, grp, line), g in mix.groupby(["reported_in", "group", "line"], observed=True):
        parts = g[g["tumour_type"] != "all"]["n"].sum()
        total = g[g["tumour_type"] == "all"]["n"]
        if rep != "table1" and grp == "retreatment":
            assert parts == int(total.iloc[0]), (rep, line)
        if grp == "control":  # only midgut and pancreatic are reported: 83 of 99
            assert parts == 83 and int(total.iloc[0]) == 99
    # the same counts wherever they are printed (Table 5 PFS block, OS block, Table 1)
    wide = mix.pivot_table(
        index=["group", "line", "tumour_type"], columns="reported_in", values="n", observed=True
    )
    both = wide.dropna(subset=["table1"])
    assert (both["table1"] == both["table5_pfs"]).all()
    assert (wide["table5_pfs"] == wide["table5_os"]).all()
    # and the n of every Table 5 survival row matches the mix
    surv = load_table("rotterdam_survival")
    pfs_mix = mix[mix["reported_in"] == "table5_pfs"].copy()
    pfs_mix["line_key"] = pfs_mix["line"].astype(str)
    for _, row in surv.iterrows():
        key = "RR-PRRT" if row["line"] == "RR-PRRT" else "I-PRRT/R-PRRT"
        if row["group"] == "control":
            key = "I-PRRT"
        m = pfs_mix[
            (pfs_mix["group"] == row["group"])
            & (pfs_mix["line_key"] == key)
            & (pfs_mix["tumour_type"] == row["tumour_type"])
        ]
        assert len(m) == 1 and int(m["n"].iloc[0]) == row["n"], row["row_id"]


def test_A03_toxicity_myeloid_response_percentages():
    for name in ("rotterdam_toxicity", "rotterdam_myeloid", "rotterdam_response"):
        t = load_table(name)
        assert mismatches(t, "count", t["n"].astype(float)) == {}, name


KNOWN_BASELINE_PCT = {
    # Table 1 prints 15.5; 25/(168 - 4 unknown) = 15.2, which Table 4 prints for the same patients
    "t1_before_iprrt_alkaline_phosphatase_gt_2uln_yes": (15.24, 15.5),
    # 35/168 = 20.8 with 0 unknown printed; 21.0 would need 167 known
    "t1_before_rprrt_alkaline_phosphatase_gt_2uln_yes": (20.83, 21.0),
    # 15/28 = 53.57 rounds to 53.6, printed 53.5
    "t4_control_who_grade_I": (53.57, 53.5),
}


def _baseline_denominators(b: pd.DataFrame) -> pd.Series:
    """Column n, less the 'unknown' count where the paper prints it without a percentage."""
    unknown = b[b["category"] == "unknown"].set_index(["table", "column", "characteristic"])
    dens = []
    for _, row in b.iterrows():
        key = (row["table"], row["column"], row["characteristic"])
        d = row["column_n"]
        if key in unknown.index and pd.isna(unknown.loc[key, "pct_printed"]):
            d -= unknown.loc[key, "count"]
        dens.append(float(d))
    return pd.Series(dens, index=b.index)


def test_A04_baseline_percentages():
    b = load_table("rotterdam_baseline_counts")
    assert mismatches(b, "count", _baseline_denominators(b)) == KNOWN_BASELINE_PCT


COMPLETE_CHARACTERISTICS = (
    "baseline_progression_recist",
    "prior_surgery",
    "prior_chemotherapy",
    "prior_radiotherapy",
    "prior_somatostatin_analogues",
    "extent_of_disease",
    "octreoscan_uptake",
    "liver_lesions",
    "bone_lesions",
    "who_grade",
    "response_to_i_prrt",
)


def test_A05_baseline_categories_sum_to_n():
    b = load_table("rotterdam_baseline_counts")
    for (table, col, ch), g in b.groupby(["table", "column", "characteristic"], observed=True):
        if ch not in COMPLETE_CHARACTERISTICS:
            continue
        if table == "table1" and col != "before_I-PRRT" and ch == "baseline_progression_recist":
            # before R/RR-PRRT, progression is split over RECIST, OctreoScan and clinical rows
            sub = b[
                (b["table"] == table)
                & (b["column"] == col)
                & b["characteristic"].str.startswith("baseline_progression")
            ]
            assert sub["count"].sum() == g["column_n"].iloc[0], (table, col)
            continue
        assert g["count"].sum() == g["column_n"].iloc[0], (table, col, ch)


def test_A06_table4_retreatment_column_equals_table1_before_iprrt():
    b = load_table("rotterdam_baseline_counts")
    t1 = b[b["column"] == "before_I-PRRT"].set_index(["characteristic", "category"])["count"]
    t4 = b[b["column"] == "retreatment"].set_index(["characteristic", "category"])["count"]
    common = t1.index.intersection(t4.index)
    assert len(common) >= 25
    assert (t1.loc[common] == t4.loc[common]).all()
    cont = load_table("rotterdam_baseline_continuous").set_index(["column", "characteristic"])
    for ch in ("age", "chromogranin_a", "alkaline_phosphatase"):
        a, c = cont.loc[("before_I-PRRT", ch)], cont.loc[("retreatment", ch)]
        assert (a[["median", "low", "high"]] == c[["median", "low", "high"]]).all(), ch


def test_A07_table4_response_matches_table3():
    b = load_table("rotterdam_baseline_counts")
    resp = load_table("rotterdam_response")
    for col, grp in (("control", "control"), ("retreatment", "retreatment")):
        t4 = b[(b["column"] == col) & (b["characteristic"] == "response_to_i_prrt")]
        t3 = resp[(resp["group"] == grp) & (resp["after_line"] == "I-PRRT")]
        t4c = dict(zip(t4["category"].replace({"unknown": "NE"}), t4["count"], strict=True))
        t3c = dict(zip(t3["category"].astype(str), t3["count"], strict=True))
        assert t4c == t3c, col


# ----------------------------------------------------------------------------------------------
# Rotterdam: Table 3 (responses) against its n and the text
# ----------------------------------------------------------------------------------------------


def test_A08_response_parts_sum_to_n():
    r = load_table("rotterdam_response")
    sums = r.groupby(["group", "after_line", "assessment"], observed=True)["count"].sum()
    n = r.groupby(["group", "after_line", "assessment"], observed=True)["n"].first()
    # R-PRRT best response omits the 5 patients who died before follow-up (3-month column only)
    died = int(
        r[(r["category"] == "died_before_follow_up") & (r["after_line"] == "R-PRRT")]["count"].iloc[
            0
        ]
    )
    for key, s in sums.items():
        expected = n[key] - (died if key == ("retreatment", "R-PRRT", "best") else 0)
        assert s == expected, key


def test_A09_response_text_matches_table3():
    r = load_table("rotterdam_response").set_index("row_id")["count"]
    best = "t3_retre_rprrt_best_"
    assert r[best + "PR"] == rtxt("txt_abs_or_r_n") == 26
    assert r[best + "SD"] == rtxt("txt_abs_sd_r_n") == 100
    assert r[best + "PD"] == rtxt("txt_res_pd_r_n") == 33
    assert r[best + "clinical_PD"] == rtxt("txt_res_clinical_pd_n")
    assert r["t3_retre_rprrt_3_months_died_before_follow_up"] == rtxt("txt_res_died_before_dose_n")
    assert r["t3_retre_rrprrt_best_PR"] == rtxt("txt_abs_or_rr_n")
    assert r["t3_retre_rrprrt_best_SD"] == rtxt("txt_abs_sd_rr_n")
    # disease control rate = (CR + PR + SD) / n
    assert abs(pct(26 + 100, 168) - rtxt("txt_dis_dcr_r_pct")) < ROUND_TOL
    assert abs(pct(26 + 100, 168) - rtxt("txt_res_pr_sd_pct")) < 0.5  # printed "75%"
    # ORR/SD after I-PRRT in the retreatment group (Discussion)
    orr_i = r["t3_retre_iprrt_best_CR"] + r["t3_retre_iprrt_best_PR"]
    assert abs(pct(orr_i, 168) - rtxt("txt_dis_orr_i_pct")) < ROUND_TOL
    assert abs(pct(r["t3_retre_iprrt_best_SD"], 168) - rtxt("txt_dis_sd_i_pct")) < ROUND_TOL
    # of the 33 with PD, 54.5% PR and 45.5% SD after I-PRRT: integer counts 18 and 15 exist
    assert abs(pct(18, 33) - rtxt("txt_res_pd_r_prior_pr_pct")) < ROUND_TOL
    assert abs(pct(15, 33) - rtxt("txt_res_pd_r_prior_sd_pct")) < ROUND_TOL
    for n_id, p_id, den in (
        ("txt_res_pd_r_n", "txt_res_pd_r_pct", 168),
        ("txt_res_died_before_dose_n", "txt_res_died_before_dose_pct", 168),
        ("txt_res_clinical_pd_n", "txt_res_clinical_pd_pct", 168),
        ("txt_res_uptake_up_n", "txt_res_uptake_up_pct", 166),  # 2 unknown uptake scores
        ("txt_res_uptake_down_n", "txt_res_uptake_down_pct", 166),
    ):
        assert abs(pct(rtxt(n_id), den) - rtxt(p_id)) < ROUND_TOL, n_id


def test_A10_known_died_before_dose_vs_table2():
    """Text: 5 patients died before the intended 14.8 GBq; Table 2 lists 3 deaths."""
    reasons = load_table("rotterdam_incomplete_dose").set_index("reason")["count"]
    assert rtxt("txt_res_died_before_dose_n") == 5
    assert reasons["death_after_first_cycle"] == 3


def test_A11_table2_reasons_sum():
    reasons = load_table("rotterdam_incomplete_dose").set_index("reason")["count"]
    parts = reasons.drop("total").sum()
    assert parts == reasons["total"] == 168 - rtxt("txt_res_intended_r_n")
    assert reasons["persistent_myelosuppression"] == rtxt("txt_dis_myelo_stopped_n")
    assert (
        rtxt("txt_t2_foot_thrombo_g2") + rtxt("txt_t2_foot_thrombo_g3")
        == reasons["persistent_myelosuppression"]
    )


def test_A12_known_nec_counts_do_not_add_up():
    """Discussion: 7 of 9 NEC patients responded to I-PRRT, 'four with PR and four with SD'."""
    assert rtxt("txt_dis_nec_i_pr_n") + rtxt("txt_dis_nec_i_sd_n") == 8
    assert rtxt("txt_dis_nec_fav_n") == 7
    # the R-PRRT split (1 PR + 6 SD) does add up to 7, and 7/9 = 78% as printed
    assert rtxt("txt_dis_nec_r_pr_n") + rtxt("txt_dis_nec_r_sd_n") == rtxt(
        "txt_res_who3_responded_n"
    )
    assert round(pct(7, 9)) == rtxt("txt_res_who3_pct")


# ----------------------------------------------------------------------------------------------
# Rotterdam: Table 5 (survival)
# ----------------------------------------------------------------------------------------------


def test_A13_survival_cis_are_symmetric_wald_intervals():
    s = load_table("rotterdam_survival").dropna(subset=["ci95_lower_months"])
    lower = s["median_months"] - s["ci95_lower_months"]
    upper = s["ci95_upper_months"] - s["median_months"]
    asym = s[(lower - upper).abs() > 0.1 + 1e-9]  # each bound rounded to 0.1
    clipped = s[s["ci95_lower_months"] == 0]
    assert set(asym["row_id"]) == {"t5_os_retre_iprrt_hindgut"}
    # the bronchial OS row is clipped at zero: 26.2 - 26.3 = -0.1 was printed as 0.0
    assert list(clipped["row_id"]) == ["t5_os_retre_rprrt_bronchial"]
    b = s.set_index("row_id").loc["t5_os_retre_rprrt_bronchial"]
    assert b.median_months - (b.ci95_upper_months - b.median_months) < 0
    # the hindgut OS row is the one real asymmetry: 97.8 - 31.8 = 66.0 vs 163.4 - 97.8 = 65.6
    h = s.set_index("row_id").loc["t5_os_retre_iprrt_hindgut"]
    assert math.isclose(h.median_months - h.ci95_lower_months, 66.0, abs_tol=1e-9)
    assert math.isclose(h.ci95_upper_months - h.median_months, 65.6, abs_tol=1e-9)


def test_A14_survival_text_matches_table5():
    s = load_table("rotterdam_survival").set_index("row_id")
    assert s.loc["t5_pfs_retre_rprrt_all", "median_months"] == rtxt("txt_abs_pfs_r")
    assert s.loc["t5_pfs_retre_rrprrt_all", "median_months"] == rtxt("txt_abs_pfs_rr")
    assert s.loc["t5_os_retre_iprrt_all", "median_months"] == rtxt("txt_abs_os_combined")
    assert s.loc["t5_os_retre_iprrt_all", "median_months"] == rtxt("txt_res_os_combined")
    assert s.loc["t5_follow_up_retre_iprrt_all", "median_months"] == rtxt("txt_abs_followup")
    assert s.loc["t5_follow_up_retre_rprrt_all", "median_months"] == rtxt("txt_res_followup_r")
    assert s.loc["t5_follow_up_retre_rrprrt_all", "median_months"] == rtxt("txt_res_followup_rr")
    assert s.loc["t5_os_contr_iprrt_all", "median_months"] == rtxt("txt_res_os_control")
    assert s.loc["t5_os_retre_iprrt_midgut", "median_months"] == rtxt("txt_res_os_midgut")
    assert s.loc["t5_os_contr_iprrt_midgut", "median_months"] == rtxt("txt_res_os_midgut_control")
    assert s.loc["t5_os_retre_iprrt_pancreatic", "median_months"] == rtxt("txt_res_os_pancreatic")
    assert s.loc["t5_os_contr_iprrt_pancreatic", "median_months"] == rtxt(
        "txt_res_os_pancreatic_control"
    )
    assert s.loc["t5_pfs_retre_rprrt_midgut", "median_months"] == rtxt("txt_dis_pfs_midgut")
    assert s.loc["t5_pfs_retre_rprrt_pancreatic", "median_months"] == rtxt("txt_dis_pfs_pancreatic")
    # Discussion's OS gains: 80.8 - 51.4 = 29.4 ("almost 30"), 77.3 - 51.0 = 26.3 (> 21),
    # 93.9 - 61.5 = 32.4 ("approximately 32")
    assert 28 < 80.8 - 51.4 < rtxt("txt_dis_os_gain_all")
    assert 77.3 - 51.0 > rtxt("txt_dis_os_gain_midgut")
    assert round(93.9 - 61.5) == rtxt("txt_dis_os_gain_pancreatic")


def test_A15_known_control_os_upper_bound_text_vs_table():
    s = load_table("rotterdam_survival").set_index("row_id")
    assert s.loc["t5_os_contr_iprrt_all", "ci95_upper_months"] == 56.2
    assert rtxt("txt_res_os_control_hi") == 56.1


def test_A16_selection_rule_is_consistent_with_iprrt_medians():
    s = load_table("rotterdam_survival")
    sel = load_table("rotterdam_selection").set_index("eligible_for")
    threshold = sel.loc["R-PRRT", "min_months"]
    i_pfs = s[(s["endpoint"] == "pfs") & (s["group"] == "retreatment") & (s["line"] == "I-PRRT")]
    assert (i_pfs["median_months"] >= threshold).all()
    assert threshold == 18.0 and sel.loc["RR-PRRT", "min_months"] == 14.0


# ----------------------------------------------------------------------------------------------
# Rotterdam: Tables 6 and 7 (toxicity)
# ----------------------------------------------------------------------------------------------


def _tox() -> pd.DataFrame:
    return load_table("rotterdam_toxicity")


def test_A17_any_line_counts_against_per_line_counts():
    t = _tox()
    lines = ["haemoglobin", "leucocytes", "platelets"]
    for (grp, ph), g in t.groupby(["group", "phase"], observed=True):
        c = g.set_index(["cell_line", "grade"])["count"]
        for grade in (3, 4):
            per_line = [c[(cl, grade)] for cl in lines]
            # a patient with two lines at the same grade is one 'any' patient: any <= sum, >= max
            assert max(per_line) <= c[("any", grade)] <= sum(per_line), (grp, ph, grade)
        # grade IV: 'any' equals the per-line sum in every phase (no patient has two lines at IV)
        assert c[("any", 4)] == sum(c[(cl, 4)] for cl in lines), (grp, ph)


def test_A18_known_any_grade_columns_overlap():
    """'Any' grade III and IV columns can count the same patient (Table 6 footnote b; text)."""
    t = _tox().set_index("row_id")["count"]
    # control: 6 grade IV patients, 5 of whom also had a grade III line (footnote b)
    assert t["t6_contr_iprrt_any_g4"] == 6 and rtxt("txt_t6_foot_concurrent") == 5
    # R-PRRT: text says 12 patients (6.6%) had grade III/IV; Table 6 has 12 at III and 1 at IV,
    # so the grade IV patient is also one of the 12 grade III patients
    assert t["t6_retre_rprrt_any_g3"] + t["t6_retre_rprrt_any_g4"] == 13
    assert rtxt("txt_res_tox_r_n") == 12
    assert abs(pct(12, 181) - rtxt("txt_res_tox_r_pct")) < ROUND_TOL
    assert abs(pct(12, 181) - rtxt("txt_abs_tox_r_pct")) < ROUND_TOL
    assert abs(pct(1, 13) - rtxt("txt_abs_tox_rr_pct")) < ROUND_TOL


def test_A19_known_control_group_size_differs_between_tables():
    t = _tox()
    my = load_table("rotterdam_myeloid")
    assert set(t[t["group"] == "control"]["n"]) == {230}
    assert set(my[my["group"] == "control"]["n"]) == {230}
    assert rtxt("txt_met_control_n") == 99
    reasons = [r for r in load_table("rotterdam_text_values")["row_id"] if "txt_met_reason" in r]
    assert sum(rtxt(r) for r in reasons) == 99


def test_A20_myeloid_parts_and_text():
    my = load_table("rotterdam_myeloid").set_index(["group", "outcome"])["count"]
    for g in ("control", "retreatment"):
        assert my[(g, "AML")] + my[(g, "MDS")] == my[(g, "any")]
    assert abs(pct(my[("retreatment", "any")], 181) - rtxt("txt_res_myelo_r_pct")) < ROUND_TOL
    assert abs(pct(my[("retreatment", "any")], 181) - rtxt("txt_abs_aml_mds_pct")) < ROUND_TOL
    assert abs(pct(my[("control", "any")], 230) - rtxt("txt_res_myelo_c_pct")) < ROUND_TOL
    times = load_table("rotterdam_myeloid_time")
    half = (times["ci95_upper_months"] - times["ci95_lower_months"]) / 2
    assert ((times["median_months"] - times["ci95_lower_months"] - half).abs() <= 0.1).all()


KNOWN_PVALUE_MISMATCH: dict[str, tuple[float, float]] = {}


def _fisher(a: int, n1: int, b: int, n2: int) -> float:
    return float(stats.fisher_exact([[a, n1 - a], [b, n2 - b]]).pvalue)


def test_A21_fisher_p_values_recomputed():
    t = _tox().set_index("row_id")["count"]
    p = load_table("rotterdam_pvalues").set_index("row_id")["p_value"]
    my = load_table("rotterdam_myeloid").set_index(["group", "outcome"])["count"]
    recomputed = {
        "p_t6_any_g3_control_vs_i": _fisher(
            t["t6_contr_iprrt_any_g3"], 230, t["t6_retre_iprrt_any_g3"], 181
        ),
        "p_t6_any_g4_control_vs_i": _fisher(
            t["t6_contr_iprrt_any_g4"], 230, t["t6_retre_iprrt_any_g4"], 181
        ),
        "p_t7_any": _fisher(my[("control", "any")], 230, my[("retreatment", "any")], 181),
    }
    got = {k: (round(v, 2), p[k]) for k, v in recomputed.items() if abs(v - p[k]) > 0.005 + 1e-9}
    assert got == KNOWN_PVALUE_MISMATCH
    # the chi-squared p value in the text: chi2 = 3.47 on 6 df gives p = 0.75
    chi = stats.chi2.sf(rtxt("txt_res_chi2"), rtxt("txt_res_chi2_df"))
    assert abs(chi - rtxt("txt_res_chi2_p")) < 0.005


def test_A22_i_vs_r_toxicity_p_values():
    """I-PRRT vs R-PRRT: p = 0.26 is Fisher on 'any' grade III (19 vs 12 of 181), not III/IV.

    Grade III/IV patients (20 vs 12) would give p = 0.19. The haemoglobin p = 1.00 matches
    Fisher on haemoglobin grade III (2 vs 1 of 181).
    """
    t = _tox().set_index("row_id")["count"]
    p = load_table("rotterdam_pvalues").set_index("row_id")["p_value"]
    got = _fisher(int(t["t6_retre_iprrt_any_g3"]), 181, int(t["t6_retre_rprrt_any_g3"]), 181)
    assert abs(got - p["p_t6_any_i_vs_r"]) < 0.005 + 1e-9
    iii_iv = _fisher(20, 181, int(rtxt("txt_res_tox_r_n")), 181)
    assert abs(iii_iv - p["p_t6_any_i_vs_r"]) > 0.05
    hb = _fisher(
        int(t["t6_retre_iprrt_haemoglobin_g3"]), 181, int(t["t6_retre_rprrt_haemoglobin_g3"]), 181
    )
    assert abs(hb - p["p_t6_hb"]) < 0.005 + 1e-9


# ----------------------------------------------------------------------------------------------
# Rotterdam: doses, protocol, correlations, baseline text
# ----------------------------------------------------------------------------------------------


def test_A23_doses_and_protocol():
    d = load_table("rotterdam_doses").set_index("row_id")
    proto = load_table("rotterdam_protocol").set_index("parameter")["value"]
    per_cycle = proto["activity_per_cycle"]
    assert math.isclose(4 * per_cycle, proto["intended_cumulative_after_I-PRRT"])
    assert math.isclose(2 * per_cycle, proto["intended_additional_per_retreatment"])
    assert math.isclose(
        proto["intended_cumulative_after_I-PRRT"] + proto["intended_additional_per_retreatment"],
        proto["intended_cumulative_after_R-PRRT"],
    )
    assert math.isclose(
        proto["intended_cumulative_after_R-PRRT"] + proto["intended_additional_per_retreatment"],
        proto["intended_cumulative_after_RR-PRRT"],
    )
    i, r, rr = (d.loc[f"dose_retre_{p}_phase"] for p in ("iprrt", "rprrt", "rrprrt"))
    cum_r, cum_rr = d.loc["dose_retre_rprrt_cum"], d.loc["dose_retre_rrprrt_cum"]
    # medians are not additive, but these agree to the printed precision
    assert abs(i.median_gbq + r.median_gbq - cum_r.median_gbq) <= 0.1 + 1e-9
    assert abs(cum_r.median_gbq + rr.median_gbq - cum_rr.median_gbq) <= 1e-9
    # ranges must be attainable: min of a sum >= sum of mins, max <= sum of maxes
    assert cum_r.min_gbq >= i.min_gbq + r.min_gbq and cum_r.max_gbq <= i.max_gbq + r.max_gbq
    assert cum_rr.min_gbq >= cum_r.min_gbq + rr.min_gbq
    assert cum_rr.max_gbq <= cum_r.max_gbq + rr.max_gbq
    # abstract == body; safety-analysis range == observed cumulative range
    assert cum_r.median_gbq == rtxt("txt_abs_cum_r") and cum_rr.median_gbq == rtxt("txt_abs_cum_rr")
    assert proto["safety_analysis_min_cumulative"] == cum_r.min_gbq
    assert proto["safety_analysis_max_cumulative"] == cum_rr.max_gbq
    # control I-PRRT activities: same range in Methods and Results
    c = d.loc["dose_control_iprrt_phase"]
    assert (c.min_gbq, c.max_gbq) == (21.8, 30.6)


def test_A24_correlations():
    c = load_table("rotterdam_correlations").set_index("row_id")
    assert c.loc["rs_pfs_i_r", "n"] == 168 and c.loc["rs_pfs_i_r", "spearman_rs"] == 0.325
    assert c.loc["rs_response_i_r", "n"] == 167
    # p < 0.01 is consistent with rS = 0.325 on n = 168 (t approximation)
    r, n = 0.325, 168
    tstat = r * math.sqrt((n - 2) / (1 - r**2))
    assert 2 * stats.t.sf(tstat, n - 2) < 0.01


def test_A25_baseline_text_matches_table4():
    b = load_table("rotterdam_baseline_counts").set_index("row_id")["pct_printed"]
    pairs = {
        "txt_res_liver_control_pct": "t4_control_liver_lesions_yes",
        "txt_res_liver_retre_pct": "t4_retreatment_liver_lesions_yes",
        "txt_res_bone_control_pct": "t4_control_bone_lesions_yes",
        "txt_res_bone_retre_pct": "t4_retreatment_bone_lesions_yes",
        "txt_res_uptake3_control_pct": "t4_control_octreoscan_uptake_score_3",
        "txt_res_uptake3_retre_pct": "t4_retreatment_octreoscan_uptake_score_3",
        "txt_res_who2_control_pct": "t4_control_who_grade_II",
        "txt_res_who2_retre_pct": "t4_retreatment_who_grade_II",
    }
    for txt, row in pairs.items():
        assert rtxt(txt) == b[row], txt


def test_A26_known_safety_vs_efficacy_population():
    """181 in the safety analysis (Tables 6-7) vs 168 retreated (Tables 1, 3, 5): 181 = 168 + 13."""
    assert rtxt("txt_abs_n_safety") == 181 == rtxt("txt_res_safety_r_n")
    assert rtxt("txt_abs_n_efficacy") == 168
    assert 168 + rtxt("txt_res_safety_rr_n") == 181


# ----------------------------------------------------------------------------------------------
# 188Re-HEDP pilot
# ----------------------------------------------------------------------------------------------


def _patients() -> pd.DataFrame:
    return load_table("re188_patients")


def test_P01_cycles_per_patient_are_uniquely_determined():
    """11 cycles = 2x1 + 3x2 + 1x3 with 2.6-3.3 GBq per cycle admit exactly one assignment."""
    p = _patients()
    lo, hi = ptxt("rtxt_abs_min_per_cycle"), ptxt("rtxt_abs_max_per_cycle")
    counts = [1, 1, 2, 2, 2, 3]
    assert sum(counts) == ptxt("rtxt_abs_cycles")
    feasible = set()
    for perm in set(permutations(counts)):
        act = p["re188_cumulative_gbq"].to_numpy()
        if all(c * lo - 1e-9 <= a <= c * hi + 1e-9 for c, a in zip(perm, act, strict=True)):
            feasible.add(perm)
    assert feasible == {tuple(p["n_cycles"])}
    assert (p["n_cycles"].value_counts().sort_index().to_dict()) == {
        1: ptxt("rtxt_res_pts_1cycle"),
        2: ptxt("rtxt_res_pts_2cycles"),
        3: ptxt("rtxt_res_pts_3cycles"),
    }
    # 70-90 mCi is 2.6-3.3 GBq (1 mCi = 0.037 GBq)
    assert abs(ptxt("rtxt_met_min_per_cycle_mci") * 0.037 - lo) < 0.05
    assert abs(ptxt("rtxt_met_max_per_cycle_mci") * 0.037 - hi) < 0.05


def test_P02_known_mean_lu177_activity():
    p = _patients()
    mean = p["lu177_cumulative_gbq"].mean()
    assert abs(mean - ptxt("rtxt_met_mean_lu")) < ROUND_TOL  # 48.68 -> 48.7 (Methods)
    assert ptxt("rtxt_abs_mean_lu") == ptxt("rtxt_dis_mean_lu") == 46.7  # abstract, discussion
    assert p["lu177_cumulative_gbq"].min() == ptxt("rtxt_met_min_lu")
    assert p["lu177_cumulative_gbq"].max() == ptxt("rtxt_met_max_lu")


def test_P03_re188_activity_and_os_summaries():
    p = _patients()
    re = p["re188_cumulative_gbq"]
    assert re.median() == ptxt("rtxt_abs_median_re")
    assert (re.min(), re.max()) == (ptxt("rtxt_res_min_re"), ptxt("rtxt_res_max_re"))
    os_ = p["os_months"]
    assert os_.median() == ptxt("rtxt_abs_median_os")
    assert (os_.min(), os_.max()) == (ptxt("rtxt_abs_min_os"), ptxt("rtxt_abs_max_os"))
    # with every death observed, the KM median is the ceil(n/2)-th order statistic
    assert np.sort(os_.to_numpy())[math.ceil(len(os_) / 2) - 1] == ptxt("rtxt_abs_median_os")
    # the two SD patients survived 5 and 9 months (Discussion)
    sd = sorted(p[p["morphologic_response"] == "SD"]["os_months"])
    assert sd == [ptxt("rtxt_dis_sd_os_a"), ptxt("rtxt_dis_sd_os_b")]


def test_P04_known_mean_vas():
    v = _patients()["vas_baseline"]
    assert abs(v.mean() - 6.67) < 0.005  # 40/6
    assert ptxt("rtxt_abs_vas_before") == ptxt("rtxt_met_mean_vas") == 6.6  # truncated, not 6.7
    assert (v.min(), v.max()) == (ptxt("rtxt_abs_vas_before_min"), ptxt("rtxt_abs_vas_before_max"))


def test_P05_patient_table_matches_text_counts():
    p = _patients()
    assert (p["sex"] == "m").sum() == ptxt("rtxt_met_men")
    assert (p["sex"] == "f").sum() == ptxt("rtxt_met_women")
    assert (p["age_years"].min(), p["age_years"].max()) == (
        ptxt("rtxt_met_age_min"),
        ptxt("rtxt_met_age_max"),
    )
    assert (p["primary_site_printed"] == "P").sum() == ptxt("rtxt_met_pancreatic")
    assert (p["primary_site_printed"] == "GI").sum() == ptxt("rtxt_met_non_pancreatic")
    sites = p["metastatic_sites"].str.split(";")
    assert sum("liver" in s for s in sites) == ptxt("rtxt_met_liver")
    assert sum("lymph_nodes" in s for s in sites) == ptxt("rtxt_met_ln")
    other = {"lung", "peritoneal", "mesenterial"}
    assert sum(bool(other & set(s)) for s in sites) == ptxt("rtxt_met_other")
    tx = p["prior_therapies"].str.split(";")
    for code, key in (
        ("Surgery", "rtxt_met_surgery"),
        ("SSA", "rtxt_met_ssa"),
        ("CTx", "rtxt_met_ctx"),
        ("RE", "rtxt_met_re"),
        ("Radiation", "rtxt_met_radiation"),
    ):
        assert sum(code in s for s in tx) == ptxt(key), code
    assert (p["symptomatic_response"] == "partial").sum() == ptxt("rtxt_abs_partial_pain")
    assert (p["symptomatic_response"] == "no_change").sum() == ptxt("rtxt_abs_no_pain_change")
    assert (p["morphologic_response"] == "SD").sum() == ptxt("rtxt_abs_sd")
    assert (p["morphologic_response"] == "PD").sum() == ptxt("rtxt_abs_pd")


def test_P06_patient3_is_the_rectal_net_of_fig3():
    """Fig. 3: a rectal NET, >= 2 cycles, no symptomatic response, died 5 months later."""
    p = _patients()
    match = p[
        (p["symptomatic_response"] == "no_change")
        & (p["n_cycles"] >= 2)
        & (p["os_months"] == 5)
        & (p["primary_site_printed"] == "GI")
    ]
    assert list(match["patient"]) == [3]
    assert match["tumour_type"].iloc[0] == "hindgut"
    assert set(p.loc[p["primary_site_printed"] == "P", "tumour_type"]) == {"pancreatic"}


KNOWN_RE188_PCT = {"t2_patient_haemoglobin_g1": (83.33, 88.3)}  # 5/6 = 83.3, printed 88.3


def test_P07_toxicity_percentages():
    c = load_table("re188_toxicity_per_cycle")
    assert mismatches(c, "count", c["n_cycles"].astype(float)) == {}
    pp = load_table("re188_toxicity_per_patient")
    assert mismatches(pp, "count", pp["n_patients"].astype(float)) == KNOWN_RE188_PCT


def test_P08_per_cycle_grades_are_exclusive_per_patient_grades_are_not():
    c = load_table("re188_toxicity_per_cycle").groupby("cell_line", observed=True)["count"].sum()
    assert (c <= 11).all()
    pp = load_table("re188_toxicity_per_patient").groupby("cell_line", observed=True)["count"].sum()
    assert pp["haemoglobin"] == 8 > 6  # so per-patient counts cannot be mutually exclusive


def test_P09_known_case_counts_text_vs_table2():
    c = load_table("re188_toxicity_per_cycle").groupby("cell_line", observed=True)["count"].sum()
    assert c["platelets"] == ptxt("rtxt_res_thrombo_cases")
    assert c["leucocytes"] == ptxt("rtxt_res_leuko_cases")
    assert c["haemoglobin"] == 11 and ptxt("rtxt_res_anaemia_cases") == 10  # text says 10


def test_P10_grade3_events():
    c = load_table("re188_toxicity_per_cycle").set_index("row_id")["count"]
    # 2 administrations with grade >= III: platelets III after cycles 1 and 2, anaemia III with
    # the second (text), so 2 distinct cycles
    assert c["t2_cycle_platelets_g3"] == ptxt("rtxt_abs_g34_cycles") == 2
    assert c["t2_cycle_haemoglobin_g3"] == 1
    assert abs(pct(2, 11) - 18.18) < 0.01 and ptxt("rtxt_abs_g34_cycles_pct") == 18.1  # not 18.2
    assert abs(pct(1, 6) - ptxt("rtxt_abs_g34_patients_pct")) < ROUND_TOL
    # the patient had >= 2 cycles
    assert (_patients()["n_cycles"] >= 2).sum() >= 1


def test_P11_baseline_grades_match_text_totals():
    b = load_table("re188_baseline_grades").groupby("cell_line", observed=True)["count"].sum()
    assert b["haemoglobin"] == ptxt("rtxt_res_bl_anaemia")
    assert b["platelets"] == ptxt("rtxt_res_bl_thrombo")
    assert b["leucocytes"] == ptxt("rtxt_res_bl_leuko")


# ----------------------------------------------------------------------------------------------
# Published meta-analyses (issue 15: the priors of the between-study SDs, never a likelihood)
# ----------------------------------------------------------------------------------------------


def _meta(row_id: str) -> pd.Series:
    return load_table("meta_analyses").set_index("row_id").loc[row_id]


def _half_widths(row: pd.Series) -> tuple[float, float]:
    return float(row["estimate"] - row["ci_low"]), float(row["ci_high"] - row["estimate"])


def _sym_tol(digit: float) -> float:
    """(hi - est) - (est - lo) = hi + lo - 2 est with each value rounded to the last printed
    digit d: within 2 d of zero for an exactly symmetric interval."""
    return 2 * digit + 1e-9


def test_M01_strosberg_cis_are_symmetric_wald_intervals():
    """PFS 12.52 (9.82-15.22): half-widths 2.70 and 2.70; grade 3/4 AEs 5 (2-8): 3 and 3.

    Symmetric on the natural scale, so a Wald interval on the natural scale: SE = width / 3.92,
    SE(log median) = SE / median by the delta method (the derivation uses exactly this)."""
    pfs = _meta("strosberg2021_pfs")
    lo, hi = _half_widths(pfs)
    assert abs(hi - lo) <= _sym_tol(0.01) and lo == pytest.approx(2.70)
    se = (pfs["ci_high"] - pfs["ci_low"]) / (2 * 1.959964)
    assert se == pytest.approx(1.3776, abs=1e-4)
    assert se / pfs["estimate"] == pytest.approx(0.1100, abs=1e-4)
    tox = _meta("strosberg2021_grade34_ae")
    assert _half_widths(tox) == (3.0, 3.0)


def test_M02_kim_pfs_ci_is_symmetric_to_rounding():
    """14.1 (12.2-15.9): half-widths 1.9 and 1.8, a difference within the rounding of three
    one-decimal values (0.2): a Wald interval on the natural scale like Strosberg's."""
    lo, hi = _half_widths(_meta("kim_salvage_pfs"))
    assert abs(hi - lo) <= _sym_tol(0.1)
    assert (round(lo, 6), round(hi, 6)) == (1.9, 1.8)


def test_M03_known_kim_toxicity_ci_is_not_a_natural_scale_wald_interval():
    """10.8% (5.9-16.8): half-widths 4.9 and 6.0 differ by 1.1 > 0.2, so the interval was built
    on a transformed scale (the usual logit / arcsine / Freeman-Tukey pooling of proportions).
    On the arcsine-square-root scale (Freeman-Tukey's, to first order) it is symmetric to within
    2% (ratio of the shorter to the longer half-width 0.98; probit 0.84, natural 0.82, logit
    0.78): the derivation reads the SE on the arcsine scale and maps it to the probit scale."""
    row = _meta("kim_salvage_haem_grade34")
    lo, hi = _half_widths(row)
    assert hi - lo == pytest.approx(1.1) and abs(hi - lo) > _sym_tol(0.1)
    p, a, b = row["estimate"] / 100, row["ci_low"] / 100, row["ci_high"] / 100

    def ratio(f) -> float:
        low, high = f(p) - f(a), f(b) - f(p)
        return min(low, high) / max(low, high)

    scales = {
        "natural": lambda x: x,
        "logit": lambda x: math.log(x / (1 - x)),
        "probit": stats.norm.ppf,
        "arcsine": lambda x: math.asin(math.sqrt(x)),
    }
    r = {k: round(ratio(f), 2) for k, f in scales.items()}
    assert r == {"natural": 0.82, "logit": 0.78, "probit": 0.84, "arcsine": 0.98}


def test_M04_study_sizes_and_subsets():
    """Typical study sizes N/k: 414/7 = 59.1, 271/5 = 54.2, 426/9 = 47.3; Strosberg's toxicity
    figure pools a subset of its PFS studies (5 of 7, 271 of 414 patients); Kim prints neither k
    nor N for haematological toxicity (the derivation assumes 9 and 426 and says so)."""
    t = load_table("meta_analyses").set_index("row_id")
    n_over_k = (t["n_patients"] / t["k_studies"]).dropna().astype(float).round(1).to_dict()
    assert n_over_k == {
        "strosberg2021_pfs": 59.1,
        "strosberg2021_grade34_ae": 54.2,
        "kim_salvage_pfs": 47.3,
    }
    s_pfs, s_tox = t.loc["strosberg2021_pfs"], t.loc["strosberg2021_grade34_ae"]
    assert s_tox["k_studies"] < s_pfs["k_studies"] and s_tox["n_patients"] < s_pfs["n_patients"]
    assert t.loc["kim_salvage_haem_grade34", ["k_studies", "n_patients"]].isna().all()
    # I² is printed only for Strosberg's PFS
    assert t["i2_pct"].notna().sum() == 1 and t.loc["strosberg2021_pfs", "i2_pct"] == 50.5


def test_M05_i2_implies_cochran_q_and_the_two_meta_analyses_agree():
    """I² = (Q - (k-1))/Q gives Q = 6/0.495 = 12.12 on 6 df (p = 0.059): moderate heterogeneity,
    not significant at 5%. The two pooled PFS figures are compatible (Kim's 14.1 inside
    Strosberg's CI; the CIs overlap): both review largely the same retreatment series, so the
    derivation treats them as two readings of one body of evidence, not as independent."""
    s, kim = _meta("strosberg2021_pfs"), _meta("kim_salvage_pfs")
    i2, k = s["i2_pct"] / 100, int(s["k_studies"])
    q = (k - 1) / (1 - i2)
    assert q == pytest.approx(12.12, abs=0.005)
    assert stats.chi2.sf(q, k - 1) == pytest.approx(0.059, abs=0.001)
    assert s["ci_low"] <= kim["estimate"] <= s["ci_high"]
    assert kim["ci_low"] < s["ci_high"] and s["ci_low"] < kim["ci_high"]


# ----------------------------------------------------------------------------------------------
# Provenance: every data row has a source, and every number in a row appears in its print
# ----------------------------------------------------------------------------------------------

_NUM = re.compile(r"\d+(?:[.,]\d+)*")


def _printed_numbers(s: str) -> set[float]:
    return {float(x.replace(",", "")) for x in _NUM.findall(s)}


def test_S01_every_row_has_exactly_one_source_and_vice_versa():
    from netbayes.data import SCHEMAS

    src = load_table("sources")
    assert not src.duplicated(["file", "row_id"]).any()
    files = {f"{n}.csv" for n in SCHEMAS if n not in ("sources", "papers")}
    assert set(src["file"]) == files
    for name, schema in SCHEMAS.items():
        if name in ("sources", "papers"):
            continue
        keys = set(load_table(name)[schema.key].astype(str))
        assert keys == set(src[src["file"] == f"{name}.csv"]["row_id"]), name
    papers = load_table("papers")
    assert set(src["paper"]) == set(papers["paper"])
    shared = Path(__file__).resolve().parents[2] / "shared" / "papers"
    if shared.is_dir():  # the papers' text is beside the checkout, not shipped
        # the meta-analyses quoted in issue 15 have no text file (empty ``file``)
        for f in papers["file"].dropna():
            assert (shared / f).is_file(), f
    assert set(papers.loc[papers["file"].isna(), "paper"]) == {"strosberg2021", "kim_salvage"}


NUMERIC_SOURCE_COLUMNS = {
    "rotterdam_survival": ["median_months", "ci95_lower_months", "ci95_upper_months", "n"],
    "rotterdam_tumour_mix": ["n", "pct_printed"],
    "rotterdam_toxicity": ["count", "pct_printed"],
    "rotterdam_myeloid": ["count", "pct_printed"],
    "rotterdam_myeloid_time": ["median_months", "ci95_lower_months", "ci95_upper_months"],
    "rotterdam_doses": ["median_gbq", "min_gbq", "max_gbq"],
    "rotterdam_protocol": ["value"],
    "rotterdam_selection": ["min_months"],
    "rotterdam_correlations": ["spearman_rs", "n"],
    "rotterdam_response": ["count", "pct_printed"],
    "rotterdam_incomplete_dose": ["count"],
    "rotterdam_baseline_counts": ["count", "pct_printed"],
    "rotterdam_baseline_continuous": ["median", "low", "high"],
    "re188_patients": [
        "age_years",
        "lu177_cumulative_gbq",
        "re188_cumulative_gbq",
        "vas_baseline",
        "os_months",
    ],
    "meta_analyses": ["k_studies", "n_patients", "estimate", "ci_low", "ci_high", "i2_pct"],
    "re188_toxicity_per_cycle": ["count", "pct_printed"],
    "re188_toxicity_per_patient": ["count", "pct_printed"],
}


@pytest.mark.parametrize("name", sorted(NUMERIC_SOURCE_COLUMNS))
def test_S02_numbers_appear_in_their_printed_source(name):
    src = load_table("sources")
    key = "patient" if name == "re188_patients" else "row_id"
    mine = src[src["file"] == f"{name}.csv"]
    printed = dict(zip(mine["row_id"], mine["printed"], strict=True))
    t = load_table(name)
    for _, row in t.iterrows():
        found = _printed_numbers(str(printed[str(row[key])]))
        for col in NUMERIC_SOURCE_COLUMNS[name]:
            v = row[col]
            if pd.isna(v):
                continue
            assert float(v) in found, (name, row[key], col, v, printed[str(row[key])])


def test_S03_audit_md_lists_exactly_the_audit_tests():
    audit = (data_dir() / "AUDIT.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| ([APSM]\d\d) \|", audit, flags=re.MULTILINE))
    tested = {n.split("_")[1] for n in globals() if re.match(r"test_[APSM]\d\d_", n)}
    assert documented == tested
