"""Calibration data from the two source papers: discovery, schema and validated loading.

Every table lives in ``data/`` as a tidy CSV (one concept per table) and is shipped inside the
package, so it loads after a non-editable ``pip install .`` from any working directory. Each
table is described once, in :data:`SCHEMAS`: its columns, their types and allowed values, and
the row-level rules it must satisfy. :func:`load_table` reads a table, converts every column to
its declared type and raises :class:`DataFormatError` naming the file, the row and the column of
the first problem it finds.

Units are in column names (``_months``, ``_gbq``) or stated in the table's description.
``pct_printed`` columns hold the percentage *as printed* in the paper; they are kept only so the
audit (``data/AUDIT.md``) can compare them with recomputed values, never used by a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from netbayes import vocab
from netbayes._lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = [
    "SCHEMAS",
    "DataFormatError",
    "data_dir",
    "list_tables",
    "load_table",
]


class DataFormatError(ValueError):
    """A calibration data file does not match its schema.

    Attributes
    ----------
    file : str
        File name (e.g. ``rotterdam_survival.csv``).
    row : int or None
        Line number in the file (the header is line 1), when the problem is in one row.
    column : str or None
        Column name, when the problem is in one column.
    """

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None):
        self.file, self.row, self.column = file, row, column
        where = file
        if row is not None:
            where += f", line {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


Kind = Literal["str", "int", "float", "category"]


@dataclass(frozen=True)
class Column:
    """One column of a table: its type, whether it may be empty, and its allowed values."""

    kind: Kind
    levels: tuple[str, ...] | None = None
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    doc: str = ""


@dataclass(frozen=True)
class Schema:
    """A table's description, its columns and its row rules.

    ``checks`` are ``(message, predicate)`` pairs evaluated on the typed DataFrame; the predicate
    returns a boolean Series that is True for valid rows (NaN comparisons count as valid).
    """

    description: str
    columns: dict[str, Column]
    key: str = "row_id"
    checks: tuple[tuple[str, Callable[[pd.DataFrame], pd.Series]], ...] = field(default=())


def _cat(levels: tuple[str, ...], **kw: object) -> Column:
    return Column("category", levels=levels, **kw)  # type: ignore[arg-type]


_ID = Column("str", doc="stable row identifier, the key into sources.csv")
_COUNT = Column("int", min=0)
_N = Column("int", min=1)
_PCT = Column("float", nullable=True, min=0, max=100, doc="percentage as printed")
_MONTHS = Column("float", min=0)
_MONTHS_NA = Column("float", nullable=True, min=0)
_GBQ = Column("float", min=0)
_TEXT = Column("str")


def _le(a: str, b: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda d: ~(d[a] > d[b])


def _count_le_n(count: str = "count", n: str = "n") -> tuple[str, Callable]:
    return (f"{count} must not exceed {n}", _le(count, n))


def _ci_ordered(prefix: str = "") -> tuple[tuple[str, Callable], ...]:
    lo, med, hi = (f"ci95_lower_{prefix}", f"median_{prefix}", f"ci95_upper_{prefix}")
    return (
        (f"{lo} must not exceed {med}", _le(lo, med)),
        (f"{med} must not exceed {hi}", _le(med, hi)),
        (
            f"{lo} and {hi} must be both present or both missing",
            lambda d: d[lo].isna() == d[hi].isna(),
        ),
    )


_GROUP = _cat(vocab.GROUPS)
_LINE = _cat(vocab.PRRT_LINES)

SCHEMAS: dict[str, Schema] = {
    "rotterdam_survival": Schema(
        "Rotterdam Table 5: Kaplan-Meier median PFS, OS and follow-up (months) with symmetric "
        "95% CI, by group, treatment line (time measured from that line's first cycle) and "
        "tumour type. A missing CI was printed 'N/A'.",
        {
            "row_id": _ID,
            "endpoint": _cat(vocab.ENDPOINTS),
            "group": _GROUP,
            "line": _LINE,
            "tumour_type": _cat(vocab.SUMMARY_TUMOUR_TYPES),
            "n": _N,
            "median_months": _MONTHS,
            "ci95_lower_months": _MONTHS_NA,
            "ci95_upper_months": _MONTHS_NA,
        },
        checks=_ci_ordered("months"),
    ),
    "rotterdam_tumour_mix": Schema(
        "Tumour-type composition of the Rotterdam groups as reported in Table 5 (PFS and OS "
        "blocks) and Table 1.",
        {
            "row_id": _ID,
            "reported_in": _cat(("table5_pfs", "table5_os", "table1")),
            "group": _GROUP,
            "line": _cat(("I-PRRT/R-PRRT", "RR-PRRT", "I-PRRT")),
            "tumour_type": _cat(vocab.SUMMARY_TUMOUR_TYPES),
            "n": _N,
            "pct_printed": _PCT,
        },
    ),
    "rotterdam_toxicity": Schema(
        "Rotterdam Table 6: patients with grade III and grade IV subacute haematological (and "
        "renal) toxicity, CTCAE 3.0, per group, phase and cell line, out of n; 'any' = any line.",
        {
            "row_id": _ID,
            "group": _GROUP,
            "phase": _LINE,
            "n": _N,
            "cell_line": _cat(vocab.TOXICITY_ROWS),
            "grade": Column("int", min=3, max=4),
            "count": _COUNT,
            "pct_printed": _PCT,
        },
        checks=(_count_le_n(),),
    ),
    "rotterdam_myeloid": Schema(
        "Rotterdam Table 7: myeloproliferative disorders (AML, MDS, any) per group, out of n.",
        {
            "row_id": _ID,
            "group": _GROUP,
            "n": _N,
            "outcome": _cat(("any", "AML", "MDS")),
            "count": _COUNT,
            "pct_printed": _PCT,
        },
        checks=(_count_le_n(),),
    ),
    "rotterdam_myeloid_time": Schema(
        "Rotterdam Table 7: median time to AML/MDS diagnosis (months) with 95% CI.",
        {
            "row_id": _ID,
            "group": _GROUP,
            "time_origin": _LINE,
            "median_months": _MONTHS,
            "ci95_lower_months": _MONTHS_NA,
            "ci95_upper_months": _MONTHS_NA,
        },
        checks=_ci_ordered("months"),
    ),
    "rotterdam_doses": Schema(
        "Rotterdam administered activity (GBq): median and range of the activity given in a "
        "phase, and of the cumulative activity after it (Results, Abstract).",
        {
            "row_id": _ID,
            "group": _GROUP,
            "phase": _LINE,
            "quantity": _cat(("activity_in_phase", "cumulative_after_phase")),
            "n": _N,
            "median_gbq": _GBQ,
            "min_gbq": _GBQ,
            "max_gbq": _GBQ,
        },
        checks=(
            ("min_gbq must not exceed median_gbq", _le("min_gbq", "median_gbq")),
            ("median_gbq must not exceed max_gbq", _le("median_gbq", "max_gbq")),
        ),
    ),
    "rotterdam_protocol": Schema(
        "Rotterdam treatment protocol constants (intended activities, cycles, intervals).",
        {"row_id": _ID, "parameter": _TEXT, "value": Column("float", min=0), "unit": _TEXT},
    ),
    "rotterdam_selection": Schema(
        "Rotterdam selection rules: minimum PFS (months) after a line to be eligible for the next.",
        {
            "row_id": _ID,
            "eligible_for": _LINE,
            "criterion_endpoint": _cat(("pfs",)),
            "measured_from_line": _LINE,
            "min_months": _MONTHS,
        },
    ),
    "rotterdam_correlations": Schema(
        "Rotterdam Spearman rank correlations between outcomes of consecutive lines.",
        {
            "row_id": _ID,
            "x": _TEXT,
            "y": _TEXT,
            "spearman_rs": Column("float", min=-1, max=1),
            "n": Column("int", min=4),
            "p_below": Column("float", nullable=True, min=0, max=1),
        },
    ),
    "rotterdam_response": Schema(
        "Rotterdam Table 3: radiological response (RECIST 1.1) counts, best response and at 3 "
        "months, per group and line.",
        {
            "row_id": _ID,
            "group": _GROUP,
            "after_line": _LINE,
            "assessment": _cat(("best", "3_months")),
            "n": _N,
            "category": _cat(
                ("CR", "PR", "SD", "PD", "NE", "clinical_PD", "died_before_follow_up")
            ),
            "count": _COUNT,
            "pct_printed": _PCT,
        },
        checks=(_count_le_n(),),
    ),
    "rotterdam_incomplete_dose": Schema(
        "Rotterdam Table 2: reasons for not reaching the intended 14.8 GBq during R-PRRT.",
        {"row_id": _ID, "reason": _TEXT, "count": _COUNT},
    ),
    "rotterdam_pvalues": Schema(
        "Rotterdam p values printed in Tables 5-7 (p_value, or p_below for '<x').",
        {
            "row_id": _ID,
            "table": _TEXT,
            "comparison": _TEXT,
            "quantity": _TEXT,
            "p_value": Column("float", nullable=True, min=0, max=1),
            "p_below": Column("float", nullable=True, min=0, max=1),
        },
        checks=(
            (
                "exactly one of p_value and p_below must be given",
                lambda d: d["p_value"].isna() != d["p_below"].isna(),
            ),
        ),
    ),
    "rotterdam_baseline_counts": Schema(
        "Rotterdam Tables 1 and 4: baseline characteristics, counts with printed percentages.",
        {
            "row_id": _ID,
            "table": _cat(("table1", "table4")),
            "column": _cat(
                ("before_I-PRRT", "before_R-PRRT", "before_RR-PRRT", "control", "retreatment")
            ),
            "column_n": _N,
            "characteristic": _TEXT,
            "category": _TEXT,
            "count": _COUNT,
            "pct_printed": _PCT,
        },
        checks=(_count_le_n("count", "column_n"),),
    ),
    "rotterdam_baseline_continuous": Schema(
        "Rotterdam Tables 1 and 4: baseline medians with range or interquartile range.",
        {
            "row_id": _ID,
            "table": _cat(("table1", "table4")),
            "column": _cat(
                ("before_I-PRRT", "before_R-PRRT", "before_RR-PRRT", "control", "retreatment")
            ),
            "column_n": _N,
            "characteristic": _TEXT,
            "unit": _TEXT,
            "median": Column("float", min=0),
            "low": Column("float", min=0),
            "high": Column("float", min=0),
            "spread": _cat(("range", "iqr")),
        },
        checks=(
            ("low must not exceed median", _le("low", "median")),
            ("median must not exceed high", _le("median", "high")),
        ),
    ),
    "rotterdam_text_values": Schema(
        "Rotterdam numbers quoted in the abstract and text (for the text-vs-table audit).",
        {"row_id": _ID, "quantity": _TEXT, "value": Column("float", min=0), "unit": _TEXT},
    ),
    "re188_patients": Schema(
        "188Re-HEDP pilot Table 1: one row per patient. Activities in GBq, OS in months from the "
        "first 188Re-HEDP cycle; n_cycles derived (see AUDIT.md); os_event 1 = death.",
        {
            "patient": Column("int", min=1),
            "age_years": Column("int", min=18, max=110),
            "sex": _cat(("m", "f")),
            "primary_site_printed": _cat(("GI", "P")),
            "tumour_type": _cat(vocab.PATIENT_TUMOUR_TYPES),
            "tumour_type_evidence": _TEXT,
            "metastatic_sites": _TEXT,
            "prior_therapies": _TEXT,
            "lu177_cumulative_gbq": _GBQ,
            "re188_cumulative_gbq": _GBQ,
            "n_cycles": Column("int", min=1),
            "vas_baseline": Column("int", min=0, max=10),
            "symptomatic_response": _cat(("partial", "no_change", "complete", "progression")),
            "morphologic_response": _cat(("CR", "PR", "SD", "PD")),
            "os_months": Column("float", min=0, doc="overall survival after 188Re-HEDP, months"),
            "os_event": Column("int", min=0, max=1),
            "os_event_evidence": _TEXT,
        },
        key="patient",
    ),
    "re188_toxicity_per_cycle": Schema(
        "188Re-HEDP Table 2, per-cycle column: cycles with CTCAE grade 1-4 per cell line, out of "
        "11 cycles (mutually exclusive grades; grade 0 = the rest).",
        {
            "row_id": _ID,
            "cell_line": _cat(vocab.CELL_LINES),
            "grade": Column("int", min=1, max=4),
            "count": _COUNT,
            "n_cycles": _N,
            "pct_printed": _PCT,
        },
        checks=(_count_le_n("count", "n_cycles"),),
    ),
    "re188_toxicity_per_patient": Schema(
        "188Re-HEDP Table 2, per-patient column: patients with CTCAE grade g at any cycle, per "
        "cell line, out of 6 (NOT mutually exclusive across grades; see AUDIT.md).",
        {
            "row_id": _ID,
            "cell_line": _cat(vocab.CELL_LINES),
            "grade": Column("int", min=1, max=4),
            "count": _COUNT,
            "n_patients": _N,
            "pct_printed": _PCT,
        },
        checks=(_count_le_n("count", "n_patients"),),
    ),
    "re188_baseline_grades": Schema(
        "188Re-HEDP baseline (pre-treatment) CTCAE grades per cell line, patients out of 6.",
        {
            "row_id": _ID,
            "cell_line": _cat(vocab.CELL_LINES),
            "grade": Column("int", min=1, max=4),
            "count": _COUNT,
            "n_patients": _N,
        },
        checks=(_count_le_n("count", "n_patients"),),
    ),
    "re188_text_values": Schema(
        "188Re-HEDP numbers quoted in the abstract and text (for the text-vs-table audit).",
        {"row_id": _ID, "quantity": _TEXT, "value": Column("float", min=0), "unit": _TEXT},
    ),
    "meta_analyses": Schema(
        "Published random-effects meta-analyses of salvage PRRT (one row per pooled figure): k "
        "studies, patients, pooled estimate with 95% CI and I² where printed. NOT calibration "
        "data: no likelihood uses them; they only set the between-study SD priors "
        "(netbayes.calibration.heterogeneity, docs/tau_priors.md).",
        {
            "row_id": _ID,
            "meta_analysis": _cat(("strosberg2021", "kim_salvage")),
            "outcome": _cat(("pfs_median", "grade34_toxicity")),
            "k_studies": Column("int", nullable=True, min=1, doc="studies pooled, if printed"),
            "n_patients": Column("int", nullable=True, min=1, doc="patients pooled, if printed"),
            "estimate": Column("float", min=0, doc="pooled value (months or percent)"),
            "ci_low": Column("float", min=0),
            "ci_high": Column("float", min=0),
            "i2_pct": Column("float", nullable=True, min=0, max=100, doc="I², if printed"),
            "unit": _cat(("months", "percent")),
        },
        checks=(
            ("ci_low must not exceed estimate", _le("ci_low", "estimate")),
            ("estimate must not exceed ci_high", _le("estimate", "ci_high")),
        ),
    ),
    "sources": Schema(
        "Provenance of every data row: paper, location (table/section, row, column) and the "
        "value as printed.",
        {
            "file": _TEXT,
            "row_id": _TEXT,
            "paper": _cat(("rotterdam2019", "re188pilot", "strosberg2021", "kim_salvage")),
            "location": _TEXT,
            "printed": _TEXT,
        },
        key="",
    ),
    "papers": Schema(
        "The source papers: id, text file in shared/papers (empty when the full text is not "
        "there: the meta-analyses quoted in issue 15), citation.",
        {"paper": _TEXT, "file": Column("str", nullable=True), "citation": _TEXT},
        key="paper",
    ),
}


def data_dir() -> Path:
    """Return the directory holding the calibration CSV files.

    An installed wheel ships them as ``netbayes/_data``; a source checkout (editable install)
    reads the repository's ``data/`` folder.

    Returns
    -------
    pathlib.Path
    """
    packaged = Path(str(resources.files("netbayes"))) / "_data"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "data"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        "netbayes calibration data not found: expected the packaged folder "
        f"{packaged} or a source checkout's {checkout}. Reinstall netbayes with "
        "'pip install .' from the repository root."
    )


def list_tables() -> pd.DataFrame:
    """List the calibration tables with their descriptions.

    Returns
    -------
    pandas.DataFrame
        Columns ``table``, ``file``, ``description``.
    """
    return pd.DataFrame(
        [(name, f"{name}.csv", s.description) for name, s in SCHEMAS.items()],
        columns=["table", "file", "description"],
    )


def _convert(raw: pd.Series, col: Column, file: str, name: str) -> pd.Series:
    """Convert one column of strings to its declared type, or raise naming the bad cell."""
    stripped = raw.str.strip()
    missing = stripped.eq("")
    lines = raw.index + 2  # header is line 1

    def fail(mask: pd.Series, allowed: str) -> None:
        i = int(np.flatnonzero(mask.to_numpy())[0])
        raise DataFormatError(
            file, f"value {raw.iloc[i]!r} is not allowed; expected {allowed}", int(lines[i]), name
        )

    if missing.any() and not col.nullable:
        fail(missing, "a value (this column may not be empty)")
    if col.kind == "str":
        return stripped.astype(object).where(~missing, None).astype("string")
    if col.kind == "category":
        assert col.levels is not None
        bad = ~missing & ~stripped.isin(col.levels)
        if bad.any():
            fail(bad, f"one of {', '.join(col.levels)}")
        return pd.Series(
            pd.Categorical(stripped.where(~missing), categories=list(col.levels)), index=raw.index
        )
    values = pd.to_numeric(stripped.where(~missing), errors="coerce")
    bad = ~missing & values.isna()
    if bad.any():
        fail(bad, "an integer" if col.kind == "int" else "a number")
    if col.kind == "int":
        frac = values.notna() & (values != values.round())
        if frac.any():
            fail(frac, "an integer")
    if col.min is not None and (values < col.min).any():
        fail(values < col.min, f"a value >= {col.min:g}")
    if col.max is not None and (values > col.max).any():
        fail(values > col.max, f"a value <= {col.max:g}")
    if col.kind == "int":
        return values.astype("Int64" if col.nullable else "int64")
    return values.astype("float64")


@cache
def _load_cached(name: str, directory: str) -> pd.DataFrame:
    schema = SCHEMAS[name]
    file = f"{name}.csv"
    path = Path(directory) / file
    if not path.is_file():
        raise DataFormatError(file, f"file not found in {directory}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataFormatError(file, f"cannot be parsed as CSV ({err})") from err
    expected = list(schema.columns)
    if list(raw.columns) != expected:
        missing = [c for c in expected if c not in raw.columns]
        extra = [c for c in raw.columns if c not in expected]
        raise DataFormatError(
            file,
            f"columns do not match the schema: missing {missing}, unexpected {extra}; "
            f"expected exactly {expected}",
        )
    if raw.empty:
        raise DataFormatError(file, "has no data rows")
    out = pd.DataFrame(
        {c: _convert(raw[c], spec, file, c) for c, spec in schema.columns.items()},
        index=raw.index,
    )
    if schema.key:
        dup = out[schema.key].duplicated()
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise DataFormatError(
                file, f"duplicate key {out[schema.key].iloc[i]!r}", i + 2, schema.key
            )
    for message, predicate in schema.checks:
        ok = predicate(out).fillna(True).astype(bool)
        if not ok.all():
            i = int(np.flatnonzero(~ok.to_numpy())[0])
            raise DataFormatError(file, f"row rule violated: {message}", i + 2)
    return out


def load_table(name: str, directory: str | Path | None = None) -> pd.DataFrame:
    """Load one calibration table as a validated, typed DataFrame.

    Parameters
    ----------
    name : str
        Table name, e.g. ``"rotterdam_survival"`` (see :func:`list_tables`).
    directory : str or pathlib.Path, optional
        Folder to read from instead of the packaged data (e.g. an edited copy).

    Returns
    -------
    pandas.DataFrame
        A fresh copy: numbers as ``int64``/``float64`` (missing values as NaN), vocabularies as
        categoricals with the levels of :mod:`netbayes.vocab`, text as ``string``.

    Raises
    ------
    KeyError
        If ``name`` is not a known table.
    DataFormatError
        If the file is missing, malformed, or violates its schema; the message names the file,
        the line and the column.
    """
    if name not in SCHEMAS:
        raise KeyError(f"unknown table {name!r}; known tables: {', '.join(SCHEMAS)}")
    d = Path(directory) if directory is not None else data_dir()
    return _load_cached(name, str(d.resolve())).copy()
