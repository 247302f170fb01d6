"""Tables for papers: posterior summaries, diagnostics, Markdown / LaTeX / HTML / CSV output.

Every interval column comes from :mod:`netbayes.intervals` (default 95% equal-tailed) and is
named after its kind and level (``eti95_lower``). The natural-scale paper tables (medians, time
ratios, risks, with per-row R-hat and ESS) are :func:`survival_table` and
:func:`toxicity_table`. :func:`format_table` renders Markdown (cells escaped), LaTeX
(``booktabs``; a ``longtable`` that breaks across pages for long tables; the note printed
under the table, not as a comment) and CSV itself, and HTML and LaTeX through great_tables
(``engine="great_tables"``, the ``tables`` extra) where it is installed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from netbayes.intervals import Interval, as_interval
from netbayes.report_tables import survival_table, toxicity_table

__all__ = [
    "diagnostics_table",
    "format_table",
    "great_table",
    "parameter_table",
    "survival_table",
    "toxicity_table",
    "write_table",
]

Format = Literal["markdown", "latex", "html", "csv"]
_SUFFIX: dict[str, Format] = {".md": "markdown", ".tex": "latex", ".html": "html", ".csv": "csv"}
LONG_ROWS = 30
"""LaTeX tables with more rows than this become a ``longtable`` (breaks across pages)."""


def parameter_table(
    draws: Mapping[str, np.ndarray],
    names: Sequence[str] | None = None,
    interval: Interval | float | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Posterior summary of parameters: mean, SD, median and the interval, one row per scalar.

    Parameters
    ----------
    draws : mapping of str to ndarray
        Posterior draws, draws on axis 0 (``FitResult.all_draws()``, a stored posterior's
        ``all_draws()``, or any dict of arrays). Vector parameters get one row per element,
        labelled ``name[i]``.
    names : sequence of str, optional
        Parameters to include (default: all, in the mapping's order).
    interval : Interval or float, optional
        Interval convention (default 95% ETI).
    labels : mapping of str to sequence of str, optional
        Element labels of vector parameters, e.g. ``{"z2": TUMOUR_TYPES}`` gives rows
        ``z2[midgut]`` instead of ``z2[1]``.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter``, ``mean``, ``sd``, ``median`` and the interval's two columns.
    """
    iv = as_interval(interval)
    names = list(draws) if names is None else list(names)
    rows = []
    for name in names:
        if name not in draws:
            raise ValueError(f"parameter {name!r} is not in the draws; available: {sorted(draws)}")
        x = np.asarray(draws[name], dtype=float)
        flat = x.reshape(x.shape[0], -1)
        elems = list((labels or {}).get(name, range(flat.shape[1])))
        if len(elems) != flat.shape[1]:
            raise ValueError(
                f"labels[{name!r}] has {len(elems)} labels for {flat.shape[1]} elements"
            )
        rows_of = [name] if x.ndim == 1 else [f"{name}[{e}]" for e in elems]
        lo, hi = iv.bounds(flat, axis=0)
        for j, lab in enumerate(rows_of):
            col = flat[:, j]
            rows.append(
                {
                    "parameter": lab,
                    "mean": col.mean(),
                    "sd": col.std(ddof=1),
                    "median": np.median(col),
                    iv.columns[0]: lo[j],
                    iv.columns[1]: hi[j],
                }
            )
    return pd.DataFrame(rows)


def diagnostics_table(fit: Any) -> pd.DataFrame:
    """Convergence diagnostics of a fit, one row per parameter, with pass/fail flags.

    Parameters
    ----------
    fit : netbayes.fitting.FitResult
        A fit (its ``diagnostics`` frame and ``n_divergences``).

    Returns
    -------
    pandas.DataFrame
        ``parameter``, ``r_hat``, ``ess_bulk``, ``ess_tail`` and ``ok`` (R-hat <= 1.01 and
        bulk ESS >= 400, the thresholds of :mod:`netbayes.fitting`). ``attrs`` holds
        ``divergences`` and the thresholds, which :func:`format_table` prints as a note.
    """
    from netbayes.fitting import ESS_MIN, RHAT_MAX

    d = fit.diagnostics.copy()
    if "parameter" not in d.columns:
        d = d.rename_axis("parameter").reset_index()
    keep = [c for c in ("parameter", "r_hat", "ess_bulk", "ess_tail") if c in d.columns]
    out = d[keep].copy()
    out["ok"] = (out["r_hat"] <= RHAT_MAX) & (out["ess_bulk"] >= ESS_MIN)
    out.attrs["divergences"] = int(fit.n_divergences)
    out.attrs["note"] = (
        f"divergences: {int(fit.n_divergences)}; thresholds: R-hat <= {RHAT_MAX}, "
        f"bulk ESS >= {ESS_MIN}"
    )
    return out


def _cell(v: Any, digits: int) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return ""
        return f"{v:.{digits}f}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "" if v is None else str(v)


_LATEX_ESC = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\u2013": "--",  # the en-dash of ranges
}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX_ESC.get(ch, ch) for ch in s)


def _md_escape(s: str) -> str:
    """A Markdown table cell: ``|`` escaped, line breaks as spaces."""
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _digits(col: str, digits: int) -> int:
    """Decimals of a column: R-hat 3, ESS 0, others ``digits``."""
    return {"r_hat": 3, "ess_bulk": 0, "ess_tail": 0}.get(col, digits)


def great_table(df: pd.DataFrame, digits: int = 2, caption: str | None = None) -> Any:
    """The table as a great_tables ``GT`` (rows grouped by a ``group`` column if there is
    one; numbers rounded as :func:`format_table` rounds them; the note as a source note).

    Raises
    ------
    ImportError
        great_tables is not installed (``pip install 'netbayes[tables]'``).
    """
    try:
        import great_tables as gt
    except ImportError:
        raise ImportError(
            "great_tables renders the HTML (and, with engine='great_tables', LaTeX) tables; "
            "install it with: pip install 'netbayes[tables]'"
        ) from None
    has_group = "group" in df.columns
    g = gt.GT(df, groupname_col="group" if has_group else None)
    for c in df.columns:
        if c != "group" and pd.api.types.is_float_dtype(df[c]):
            g = g.fmt_number(columns=c, decimals=_digits(str(c), digits))
    if caption:
        g = g.tab_header(title=caption)
    note = df.attrs.get("note")
    if note:
        g = g.tab_source_note(note)
    return g


def format_table(
    df: pd.DataFrame,
    fmt: Format = "markdown",
    digits: int = 2,
    caption: str | None = None,
    *,
    engine: Literal["netbayes", "great_tables"] = "netbayes",
    long: bool | None = None,
) -> str:
    """Render a table as Markdown (GitHub pipes), LaTeX (booktabs), HTML or CSV.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; numbers are rounded to ``digits`` decimals (R-hat to 3, ESS to 0; CSV
        keeps full precision). ``df.attrs["note"]`` is printed under the table.
    fmt : {"markdown", "latex", "html", "csv"}
        HTML needs great_tables.
    digits : int
        Decimals of floating-point cells.
    caption : str, optional
        A caption (Markdown: a line above; LaTeX: ``\\caption``).
    engine : {"netbayes", "great_tables"}
        Who renders LaTeX: this module (default) or great_tables (its ``as_latex``).
    long : bool, optional
        LaTeX: a ``longtable`` that breaks across pages (default: above :data:`LONG_ROWS`
        rows).

    Returns
    -------
    str
    """
    if fmt == "csv":
        return df.to_csv(index=False)
    if engine not in ("netbayes", "great_tables"):
        raise ValueError(f"engine={engine!r} is not allowed; expected 'netbayes' or 'great_tables'")
    long = len(df) > LONG_ROWS if long is None else bool(long)
    if fmt == "html":
        return great_table(df, digits, caption).as_raw_html() + "\n"
    if fmt == "latex" and engine == "great_tables":
        return great_table(df, digits, caption).as_latex(use_longtable=long) + "\n"
    groups: list[str] | None = None
    if "group" in df.columns:  # rendered as section rows, not a repeated column
        groups = [str(g) for g in df["group"]]
        note_ = df.attrs.get("note")
        df = df.drop(columns=["group"])
        df.attrs["note"] = note_
    cols = [str(c) for c in df.columns]
    body = [[_cell(v, _digits(str(c), digits)) for v, c in zip(row, df.columns, strict=True)]
            for row in df.itertuples(index=False)]  # fmt: skip
    starts = {i: g for i, g in enumerate(groups) if i == 0 or groups[i - 1] != g} if groups else {}
    numeric = [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        for c in df.columns
    ]
    note = df.attrs.get("note")
    if fmt == "markdown":
        lines = [f"**{_md_escape(caption)}**", ""] if caption else []
        lines.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
        lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
        for i, r in enumerate(body):
            if i in starts:
                lines.append(f"| **{_md_escape(starts[i])}** |" + " |" * (len(cols) - 1))
            lines.append("| " + " | ".join(_md_escape(c) for c in r) + " |")
        if note:
            lines += ["", f"*{_md_escape(note)}*"]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        spec = "".join("r" if n else "l" for n in numeric)
        head = " & ".join(_latex_escape(c) for c in cols) + r" \\"
        rows = []
        for i, r in enumerate(body):
            if i in starts:
                rows.append(f"\\multicolumn{{{len(cols)}}}{{l}}{{\\textit{{"
                            f"{_latex_escape(starts[i])}}}}} \\\\")  # fmt: skip
            rows.append(" & ".join(_latex_escape(c) for c in r) + r" \\")
        foot = [f"\\multicolumn{{{len(cols)}}}{{p{{0.95\\linewidth}}}}{{\\footnotesize "
                f"{_latex_escape(note)}}} \\\\"] if note else []  # fmt: skip
        if long:  # breaks across pages, header repeated
            cap = [f"\\caption{{{_latex_escape(caption)}}} \\\\"] if caption else []
            lines = [f"\\begin{{longtable}}{{{spec}}}", *cap, r"\toprule", head, r"\midrule",
                     r"\endfirsthead", r"\toprule", head, r"\midrule", r"\endhead",
                     r"\bottomrule", *foot, r"\endlastfoot", *rows, r"\end{longtable}"]  # fmt: skip
            return "\n".join(lines) + "\n"
        lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule", head, r"\midrule", *rows,
                 r"\bottomrule", *foot, r"\end{tabular}"]  # fmt: skip
        if caption:
            lines = [
                r"\begin{table}",
                r"\centering",
                f"\\caption{{{_latex_escape(caption)}}}",
                *lines,
                r"\end{table}",
            ]
        return "\n".join(lines) + "\n"
    raise ValueError(f"fmt={fmt!r} is not allowed; expected 'markdown', 'latex', 'html' or 'csv'")


def write_table(
    df: pd.DataFrame,
    path: str | Path,
    digits: int = 2,
    caption: str | None = None,
    **kwargs: Any,
) -> Path:
    """Write a table in the format its suffix names (``.md``, ``.tex``, ``.html`` or ``.csv``;
    ``kwargs``: ``engine`` and ``long`` of :func:`format_table`).

    The write is atomic (a temporary file in the same folder, then :func:`os.replace`): an
    interrupted write leaves the previous file, never a partial one. An existing file is
    replaced; the command line refuses that without ``--force``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    p = Path(path)
    fmt = _SUFFIX.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"path suffix {p.suffix!r} is not allowed; expected one of {sorted(_SUFFIX)}"
        )
    from netbayes.store import write_atomic

    p.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(p, format_table(df, fmt, digits, caption, **kwargs).encode("utf-8"))
