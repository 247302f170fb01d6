"""Tables for papers: posterior summaries, diagnostics, Markdown / LaTeX / CSV output.

Every interval column comes from :mod:`netbayes.intervals` (default 95% equal-tailed) and is
named after its kind and level (``eti95_lower``). Markdown and LaTeX are rendered here (no
``tabulate`` or ``jinja2`` dependency); LaTeX uses ``booktabs`` rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from netbayes.intervals import Interval, as_interval

__all__ = [
    "diagnostics_table",
    "format_table",
    "parameter_table",
    "write_table",
]

Format = Literal["markdown", "latex", "csv"]
_SUFFIX: dict[str, Format] = {".md": "markdown", ".tex": "latex", ".csv": "csv"}


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
}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX_ESC.get(ch, ch) for ch in s)


def format_table(
    df: pd.DataFrame, fmt: Format = "markdown", digits: int = 2, caption: str | None = None
) -> str:
    """Render a table as Markdown (GitHub pipes), LaTeX (booktabs ``tabular``) or CSV.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; numbers are rounded to ``digits`` decimals (CSV keeps full precision).
    fmt : {"markdown", "latex", "csv"}
    digits : int
        Decimals of floating-point cells.
    caption : str, optional
        A caption (Markdown: a line above; LaTeX: a ``table`` environment with ``\\caption``).

    Returns
    -------
    str
    """
    if fmt == "csv":
        return df.to_csv(index=False)
    cols = [str(c) for c in df.columns]
    body = [[_cell(v, digits) for v in row] for row in df.itertuples(index=False)]
    numeric = [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        for c in df.columns
    ]
    note = df.attrs.get("note")
    if fmt == "markdown":
        lines = [f"**{caption}**", ""] if caption else []
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in body]
        if note:
            lines += ["", f"*{note}*"]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        spec = "".join("r" if n else "l" for n in numeric)
        lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
        lines.append(" & ".join(_latex_escape(c) for c in cols) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(_latex_escape(c) for c in r) + r" \\" for r in body]
        lines.append(r"\bottomrule")
        lines.append(r"\end{tabular}")
        if note:
            lines.append(f"% {note}")
        if caption:
            lines = [
                r"\begin{table}",
                r"\centering",
                f"\\caption{{{_latex_escape(caption)}}}",
                *lines,
                r"\end{table}",
            ]
        return "\n".join(lines) + "\n"
    raise ValueError(f"fmt={fmt!r} is not allowed; expected 'markdown', 'latex' or 'csv'")


def write_table(
    df: pd.DataFrame, path: str | Path, digits: int = 2, caption: str | None = None
) -> Path:
    """Write a table in the format its suffix names (``.md``, ``.tex`` or ``.csv``).

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
    return write_atomic(p, format_table(df, fmt, digits, caption).encode("utf-8"))
