"""The ``netbayes`` command line.

Commands
--------
``netbayes summary``
    Print a summary of the published calibration cohorts.
``netbayes data [TABLE]``
    List the calibration tables, or print one (``--csv`` for machine-readable output).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

from netbayes import __version__


def _print_frame(title: str, df: pd.DataFrame) -> None:
    print(f"\n{title}")
    print("-" * len(title))
    print(df.to_string(index=False, na_rep="N/A"))


def _summary(_: argparse.Namespace) -> int:
    from netbayes.cohorts import calibration_summary

    s = calibration_summary()
    print(f"netbayes {__version__}: calibration cohorts (published data; see data/AUDIT.md)")
    _print_frame("Cohorts", s["cohorts"])
    _print_frame(
        "Median PFS after retreatment, months (Rotterdam Table 5; Kaplan-Meier median "
        "with 95% CI as printed)",
        s["pfs_after_retreatment"],
    )
    _print_frame(
        "Grade III/IV haematological toxicity, patients (Rotterdam Table 6)",
        s["toxicity_grade3plus"],
    )
    _print_frame("188Re-HEDP pilot patients (Table 1; os_event 1 = death)", s["re188_patients"])
    return 0


def _data(args: argparse.Namespace) -> int:
    from netbayes.data import list_tables, load_table

    if args.table is None:
        with pd.option_context("display.max_colwidth", 90, "display.width", 200):
            print(list_tables().to_string(index=False))
        return 0
    df = load_table(args.table)
    if args.csv:
        df.to_csv(sys.stdout, index=False)
    else:
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(df.to_string(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``netbayes`` command."""
    parser = argparse.ArgumentParser(
        prog="netbayes",
        description="Bayesian outcome prediction for NET radionuclide therapy.",
    )
    parser.add_argument("--version", action="version", version=f"netbayes {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="summarise the published calibration cohorts")
    p.set_defaults(func=_summary)
    p = sub.add_parser("data", help="list the calibration tables, or print one")
    p.add_argument("table", nargs="?", help="table name (omit to list the tables)")
    p.add_argument("--csv", action="store_true", help="write CSV to standard output")
    p.set_defaults(func=_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``netbayes`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `netbayes summary | head`: stop quietly
        sys.stderr.close()
        return 0
    except (KeyError, ValueError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"netbayes: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
