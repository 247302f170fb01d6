"""The ``netbayes`` command line.

Commands
--------
``netbayes summary``
    Print a summary of the published calibration cohorts.
``netbayes data [TABLE]``
    List the calibration tables, or print one (``--csv`` for machine-readable output).
``netbayes predict --tumour-type T --line L --planned-gbq A [--prior-gbq P] [--prior-pfs X]``
    Predict one patient from the stored posteriors (default: the shipped ones): median PFS
    with its interval, P(PFS > t), P(grade >= III) per cell line and any line. A table by
    default; ``--json`` prints the JSON document described below.
``netbayes fit [--model M ...] [--draws N] [--seed S] [--out DIR [--force]] [--allow-unconverged]``
    Refit the default models on the packaged data and store their posteriors (regenerates
    ``models/``; runs MCMC, about a minute per model). Never writes into an installed package
    (``netbayes/_models``): there ``--out DIR`` is required. Arguments and destination are
    checked before compiling; a posterior already in ``--out`` is replaced only with
    ``--force``; a fit that misses the convergence targets is not saved (exit status 1) unless
    ``--allow-unconverged``.
``netbayes validate [--models-dir DIR] [--csv FILE [--force]] [--all] [--in-sample]``
    Cross-validated check (PSIS-LOO): every published calibration figure's PIT under the
    predictive of the model without its likelihood term, the PIT histogram against uniform per
    endpoint (PFS, OS, toxicity) with its uniformity tests and central-interval coverage; exit
    status 1 if an endpoint's Kolmogorov-Smirnov or chi-square p-value is below 0.005.
    ``--in-sample``: the weak in-sample table (each figure against the 95% predictive of the
    fit that saw it; exit status 1 if any figure falls outside).
``netbayes prior-sensitivity [--scale 2] [--parameters NAME ...] [PATIENT] [--out FILE [--force]]``
    Refit with prior SDs scaled and tabulate how each answer of a patient (default: the README
    patient) moves (:func:`netbayes.sensitivity.prior_sensitivity`; runs MCMC, minutes).
``netbayes report --out DIR [--force] [--models-dir DIR]``
    Write the calibration tables (Markdown, LaTeX, CSV) and plots to a folder (a folder with
    files in it needs ``--force``; the report appears whole or not at all).

Every file is written atomically (a temporary file in the same folder, then a rename), and
every command says what it wrote.

JSON output of ``netbayes predict --json``
-------------------------------------------
One object (schema ``"netbayes.predict/2"``; a JSON Schema file ships with the package,
:data:`JSON_SCHEMA`; the keys are the same for both endpoints)::

    {
      "schema": "netbayes.predict/2",
      "netbayes_version": "0.1.0",
      "endpoint": "pfs",                # or "os"
      "centre": {"choice": "new",       # --centre
                 "meaning": "a new centre (...)"},
      "interval": {"kind": "eti", "prob": 0.95,
                   "columns": ["eti95_lower", "eti95_upper"]},
      "posteriors": {"survival": CARD, "toxicity": CARD or null},
      "patients": [{
        "patient": 0,
        "input": {"tumour_type": "midgut", "line": "R-PRRT",
                  "prior_pfs_months": 30.0, "prior_gbq": 29.9,
                  "planned_gbq": 14.9},
        "extrapolation": ["..."],       # why it extrapolates; [] if not
        "median_months": EST,           # median PFS (or OS)
        "p_event_free": [{"t_months": 12.0, ...EST}, ...],
        "rmst_months": [                # only with --rmst
          {"tau_months": 24.0, ...EST, "prior_share": s}, ...],
        "p_grade3plus": {"leucocytes": EST, "platelets": EST,
                         "haemoglobin": EST, "any": EST},
                                        # null without a toxicity posterior
        "prior_share": {                # see docs/prior_share.md
          "median_months": SHARE,
          "p_event_free": [{"t_months": 12.0, ...SHARE}, ...],
          "p_grade3plus": {"leucocytes": SHARE, ..., "any": SHARE}
        }                               # (p_grade3plus: with toxicity)
      }],
      "prior_share": {
        "sd_ratio_threshold": 0.7, "warn_above": 0.5,
        "prior_source": {"survival": "...", "toxicity": "..."},
        "prior_dominated": [{"model": "survival",
                             "parameter": "beta_gbq",
                             "prior": "Normal(mean=0, sd=0.15)",
                             "kind": "sceptical", "sd_ratio": 0.93}, ...]},
      "warnings": ["not converged: ..."]  # only when a posterior's card
    }                                     # says converged: false

Every number is finite (JSON has no NaN: a non-finite one is an error, never printed).

``EST`` is ``{"median": m, "mean": m, "eti95_lower": lo, "eti95_upper": hi}`` (posterior
median and mean and the interval bounds, keyed by the interval's column names; probabilities
in [0, 1], times in months). ``p_event_free`` is P(PFS > t), or P(OS > t) with
``--endpoint os``. (Schema ``netbayes.predict/1``, before 0.2, named the keys by endpoint:
``median_pfs_months``, ``p_pfs_gt``.)
``SHARE`` is ``{"share": s, "scale": "log" or "logit", "parameters": {name: s, ...}}``: the
fraction of the answer's posterior variance (on that scale) that comes from the
prior-dominated parameters together, and from each alone (``netbayes.predict.share``); an
answer above ``warn_above`` also prints a warning on standard error.
``CARD`` is ``{"model_type", "created", "package_version", "data_sha256", "draws",
"diagnostics"}`` of the stored posterior used (``draws``: the number of posterior draws;
``diagnostics``: max R-hat, min bulk/tail ESS, divergences, seconds, converged).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netbayes._lazy import LazyModule
from netbayes._version import __version__

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path


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


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 else f"{100 * x:.2f}%"


def _rmst_rows(predictor, pred, args: argparse.Namespace, taus: Sequence[float]) -> list[dict]:
    """The patient's RMST at each horizon with its prior share: one row of
    ``Predictor.summaries`` (the numbers of ``Prediction.rmst``, and the share)."""
    rec = {
        "tumour_type": args.tumour_type,
        "line": args.line,
        "planned_gbq": args.planned_gbq,
        "prior_gbq": args.prior_gbq,
        "prior_pfs_months": args.prior_pfs,
    }
    s = predictor.summaries(
        pd.DataFrame([rec]),
        t_probs=pred.event_free_times(),
        rmst_tau=list(taus),
        interval=pred.interval,
        new_type=args.new_type,
        centre=args.centre,
    ).iloc[0]
    lo, hi = pred.interval.columns
    out = []
    for tau in sorted(set(float(t) for t in taus)):
        key = f"rmst_{pred.endpoint}_{tau:g}"
        out.append(
            {
                "tau_months": tau,
                **{c: float(s[f"{key}_{c}"]) for c in ("median", "mean", lo, hi)},
                "prior_share": float(s[f"{key}_prior_share"]),
            }
        )
    return out


def _print_prediction(
    pred,
    predictor,
    args: argparse.Namespace,
    unconverged: Sequence[str] = (),
    rmst: Sequence[dict] = (),
) -> None:
    E = pred.endpoint.upper()
    row = pred._input()  # the first patient's row of pred.patients, without the data frame
    card = predictor.cards.get("survival") or {}
    print(
        f"netbayes {__version__}: patient prediction ({E}; {predictor.n_draws} posterior draws "
        f"fitted {str(card.get('created', 'n/a'))[:10]}; {pred.interval.text})"
    )
    for m in unconverged:
        print(f"WARNING: NOT CONVERGED: {m}; do not report these numbers as they are")
    x = row["prior_pfs_months"]
    xs = "n/a" if x is None or math.isnan(x) else f"{x:g} months"
    print(
        f"Patient: {row['tumour_type']}, {row['line']}; prior PFS "
        f"{xs}; prior 177Lu {row['prior_gbq']:g} GBq, planned {row['planned_gbq']:g} GBq "
        f"(cumulative 177Lu after the line {row['cumulative_gbq']:g} GBq)"
    )
    print(f"Centre: {pred.centre_note}")
    rows = []
    med = pred.median()
    rows.append((f"Median {E}, months", f"{med.median:.1f}", f"{med.lower:.1f} - {med.upper:.1f}"))
    for t in pred.event_free_times():
        r = pred.p_event_free(t)
        rows.append(
            (f"P({E} > {t:g} months)", _pct(r.median), f"{_pct(r.lower)} - {_pct(r.upper)}")
        )
    lo, hi = pred.interval.columns
    for r in rmst:
        rows.append(
            (
                f"Restricted mean {E} over {r['tau_months']:g} months, months",
                f"{r['median']:.1f}",
                f"{r[lo]:.1f} - {r[hi]:.1f}",
            )
        )
    tox = pred.cell_lines()
    for cl in tox:
        r = pred.p_grade3plus(cl)
        rows.append(
            (f"P(grade >= III), {cl}", _pct(r.median), f"{_pct(r.lower)} - {_pct(r.upper)}")
        )
    head = ("quantity", "posterior median", pred.interval.text)
    w = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    print()
    for i, r in enumerate([head, *rows]):
        print(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}")
        if i == 0:
            print("  ".join("-" * x for x in w))
    print()
    print(pred.sentence() + ".")
    if not len(tox):
        print("(grade >= III risks: no toxicity posterior loaded)")
    _print_prior_share(pred)
    from netbayes.predict.share import MOSTLY_PRIOR

    for r in rmst:
        flag = "  MOSTLY PRIOR" if r["prior_share"] > MOSTLY_PRIOR else ""
        print(
            f"  Restricted mean {E} over {r['tau_months']:g} months: prior share "
            f"{100 * r['prior_share']:.0f}%{flag}"
        )


def _print_prior_share(pred) -> None:
    """The prior share of each answer (netbayes.predict.share), with its parameters."""
    from netbayes.predict.share import MOSTLY_PRIOR, PRIOR_DOMINATED_RATIO

    s = pred._share_records()  # the rows of pred.prior_share, without making the data frame
    if not s:
        return
    E = pred.endpoint.upper()
    print()
    print(
        "Prior share: the part of each answer's posterior variance (log months, logit "
        f"probabilities) that comes from parameters whose posterior SD is >= "
        f"{PRIOR_DOMINATED_RATIO:g} x their prior SD (docs/prior_share.md):"
    )
    rows = []
    for r in s:
        if r["quantity"].startswith("median_"):
            what = f"Median {E}"
        elif r["quantity"].endswith("_gt"):
            what = f"P({E} > {r['t_months']:g} months)"
        else:
            what = f"P(grade >= III), {r['cell_line']}"
        parts = sorted(r["parameters"].items(), key=lambda kv: -kv[1])
        named = ", ".join(f"{k} {100 * v:.0f}%" for k, v in parts if v >= 0.005) or "-"
        flag = "  MOSTLY PRIOR" if r["share"] > MOSTLY_PRIOR else ""
        rows.append((what, f"{100 * r['share']:.0f}%", named + flag))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for r in rows:
        print(f"  {r[0]:<{w0}}  {r[1]:>{w1}}  ({r[2]})")


def _predict(args: argparse.Namespace) -> int:
    import json
    import warnings

    from netbayes.intervals import Interval
    from netbayes.predict import (
        DEFAULT_T_PROBS,
        ExtrapolationWarning,
        Predictor,
        PriorDominatedWarning,
        _check_times,
    )

    said = (ExtrapolationWarning, PriorDominatedWarning)  # printed as "netbayes: warning: ..."

    times = list(DEFAULT_T_PROBS) if args.times is None else args.times  # every --times kept
    _check_times("--times", times)  # name the flag, not the keyword it becomes
    taus = [] if args.rmst is None else args.rmst
    if taus and min(_check_times("--rmst", taus)) <= 0:
        raise ValueError(f"--rmst={taus!r} is not allowed; expected horizons after 0 (months > 0)")
    with warnings.catch_warnings(record=True) as loading:
        warnings.simplefilter("always")
        predictor = Predictor.load(args.endpoint, args.models_dir, toxicity=not args.no_toxicity)
    # a posterior whose card says it did not converge: said in every output format
    unconverged = [str(w.message) for w in loading if _is_convergence_warning(w.category)]
    for w in loading:
        if not _is_convergence_warning(w.category):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExtrapolationWarning)
        warnings.simplefilter("always", PriorDominatedWarning)
        pred = predictor.patient(
            tumour_type=args.tumour_type,
            line=args.line,
            planned_gbq=args.planned_gbq,
            prior_gbq=args.prior_gbq,
            prior_pfs_months=args.prior_pfs,
            t_probs=times,
            interval=Interval(args.interval, args.interval_kind),
            new_type=args.new_type,
            centre=args.centre,
        )
    rmst = []
    if taus:  # its inputs' warnings were given by the patient call; its share is printed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            warnings.simplefilter("ignore", PriorDominatedWarning)
            rmst = _rmst_rows(predictor, pred, args, taus)
    for w in caught:
        if not issubclass(w.category, said):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if args.json:
        doc = {
            "schema": JSON_SCHEMA_ID,
            "netbayes_version": __version__,
            **pred.to_dict(),
            "posteriors": {
                "survival": _card_summary(predictor.cards["survival"], predictor.n_draws),
                "toxicity": _card_summary(
                    predictor.cards["toxicity"],
                    0 if predictor.toxicity is None else len(predictor.toxicity["sigma_u"]),
                ),
            },
        }
        doc["interval"]["columns"] = list(pred.interval.columns)
        if rmst:  # only then: the document without --rmst is unchanged
            doc["patients"][0]["rmst_months"] = rmst
        if unconverged:  # only then: a converged posterior's document is unchanged
            doc["warnings"] = [f"not converged: {m}" for m in unconverged]
        text = json.dumps(_finite_json(doc), indent=2, allow_nan=False)
        print(text)
    else:
        _print_prediction(pred, predictor, args, unconverged, rmst)
    for m in unconverged:
        print(f"netbayes: warning: {m}", file=sys.stderr)
    for w in caught:
        if issubclass(w.category, said):
            print(f"netbayes: warning: {w.message}", file=sys.stderr)
    return 0


def _is_convergence_warning(category: type) -> bool:
    """A :class:`netbayes.fitting.ConvergenceWarning` (compared by name: importing
    :mod:`netbayes.fitting` would load xarray on the prediction path)."""
    return category.__name__ == "ConvergenceWarning"


def _finite_json(obj: object, where: str = "") -> object:
    """``obj`` with every number checked finite (JSON has no NaN): a ValueError naming the
    entry otherwise, never a ``NaN`` printed."""
    if isinstance(obj, dict):
        return {k: _finite_json(v, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # a NumPy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(
            f"the prediction's {where}={obj!r} is not a finite number, and JSON has no NaN or "
            "infinity; the posterior or the inputs are not usable for this patient"
        )
    return obj


JSON_SCHEMA_ID = "netbayes.predict/2"
"""The schema id of ``netbayes predict --json``."""
JSON_SCHEMA = Path(__file__).with_name("schemas") / "predict-2.schema.json"
"""The JSON Schema (draft 2020-12) of ``netbayes predict --json``, shipped with the package."""


def _card_summary(card: dict | None, n_draws: int) -> dict | None:
    if card is None:
        return None
    keep = ("model_type", "created", "package_version", "data_sha256")
    out = {k: card.get(k) for k in keep}
    out["draws"] = int(n_draws)
    diag = card.get("diagnostics")
    out["diagnostics"] = (
        {k: v for k, v in diag.items() if k not in ("problems",)} if isinstance(diag, dict) else {}
    )
    return out


def _json_schema_doc() -> str:
    """The ``--json`` schema section of this module's docstring (one source of truth), for
    ``netbayes predict --help``: wrapped prose, the example document as it is."""
    import textwrap

    doc = __doc__ or ""
    i = doc.find("One object (schema")
    if i < 0:
        return ""
    head, sep, rest = doc[i:].partition("::")
    head = head.replace(":data:`JSON_SCHEMA`", "its path is below")
    intro = textwrap.fill(
        "JSON output (--json): " + " ".join(head.replace("``", "").split()) + ":", width=79
    )
    lines = rest.split("\n")
    n = 0
    while n < len(lines) and (not lines[n].strip() or lines[n].startswith("    ")):
        n += 1
    block = textwrap.dedent("\n".join(lines[:n])).strip("\n")
    prose = "\n".join(lines[n:]).replace("``", "")
    paras = [textwrap.fill(" ".join(p.split()), width=79) for p in prose.split("\n\n")
             if p.strip()]  # fmt: skip
    path = textwrap.fill(
        "JSON Schema file: schemas/predict-2.schema.json inside the installed netbayes "
        "package (its path: netbayes.cli.JSON_SCHEMA).",
        width=79,
    )
    return "\n\n".join([intro, block, *paras, path]) if sep else intro


def _add_predict(sub: argparse._SubParsersAction) -> None:
    import textwrap

    from netbayes.vocab import LINES, PATIENT_TUMOUR_TYPES

    p = sub.add_parser(
        "predict",
        help="predict one patient from the stored posteriors",
        description=textwrap.fill(
            "Predict one patient: median PFS with its credible interval, P(PFS > t), and "
            "P(grade >= III) per cell line and any line, from the stored posteriors (default: "
            "the shipped ones). Inputs outside the calibration data print a warning on "
            "standard error. --json prints the document described below.",
            width=79,
        ),
        epilog=_json_schema_doc(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--tumour-type",
        required=True,
        help=f"one of {', '.join(PATIENT_TUMOUR_TYPES)} (others need --new-type population)",
    )
    p.add_argument("--line", required=True, help=f"treatment line: {', '.join(LINES)}")
    p.add_argument(
        "--planned-gbq",
        type=float,
        required=True,
        help="activity planned in the line, GBq (188Re for 188Re-HEDP)",
    )
    p.add_argument(
        "--prior-gbq",
        type=float,
        default=0.0,
        help="cumulative 177Lu activity before the line, GBq (default 0)",
    )
    p.add_argument(
        "--prior-pfs",
        type=float,
        default=None,
        help="PFS after the previous line, months (required for R-PRRT and RR-PRRT)",
    )
    p.add_argument(
        "--times",
        type=float,
        nargs="+",
        action="extend",
        default=None,
        metavar="T",
        help="times t (months) of P(PFS > t) (default 12 24); several after one flag or the "
        "flag repeated, all kept: --times 12 --times 24 is --times 12 24",
    )
    p.add_argument(
        "--rmst",
        type=float,
        nargs="+",
        action="extend",
        default=None,
        metavar="TAU",
        help="also the restricted mean PFS (or OS) over the first TAU months, for each TAU",
    )
    p.add_argument("--endpoint", choices=["pfs", "os"], default="pfs", help="default pfs")
    p.add_argument(
        "--new-type",
        choices=["error", "population"],
        default="error",
        help="a tumour type outside the vocabulary: refuse (default) or draw its effect from "
        "the population distribution",
    )
    p.add_argument(
        "--centre",
        default="new",
        help="the centre the patient is treated in: new (default: a centre not in the data, "
        "with the between-centre spread), typical (study effect 0), or a study of the "
        "posterior (e.g. rotterdam2019: its fitted effect)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=0.95,
        help="probability inside the credible interval (default 0.95)",
    )
    p.add_argument(
        "--interval-kind",
        choices=["eti", "hdi"],
        default="eti",
        help="eti: equal-tailed (default); hdi: highest density, the shortest interval",
    )
    p.add_argument("--models-dir", default=None, help="folder of stored posteriors")
    p.add_argument("--no-toxicity", action="store_true", help="skip the grade >= III risks")
    p.add_argument("--json", action="store_true", help=f"print JSON (schema {JSON_SCHEMA_ID})")
    p.set_defaults(func=_predict)


def _fit(args: argparse.Namespace) -> int:
    import time

    from netbayes.models.registry import MODELS
    from netbayes.store import ENV_VAR, NotConvergedError, fit_default, is_package_dir, models_dir

    # every argument and the destination are checked before minutes of compiling and sampling
    for flag, least in (("draws", 1), ("tune", 0), ("chains", 1), ("seed", 0)):
        v = getattr(args, flag)
        if v < least:
            raise ValueError(f"--{flag} {v} is not allowed; expected an integer >= {least}")
    if args.seed > _SEED_MAX:
        raise ValueError(f"--seed {args.seed} is not allowed; expected an integer from 0 to "
                         f"{_SEED_MAX}")  # fmt: skip
    todo = list(MODELS) if "all" in args.model else list(dict.fromkeys(args.model))
    if args.out is not None and not str(args.out).strip():
        raise ValueError(f"--out {args.out!r} is not allowed; expected a folder path")
    out = Path(args.out) if args.out is not None else models_dir()
    if is_package_dir(out):
        raise ValueError(
            f"the models folder {out} is the installed package's own (netbayes/_models), "
            "which `netbayes fit` never writes to; pass --out DIR (then predict with "
            f"--models-dir DIR or {ENV_VAR}=DIR)"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is not allowed: it is a file; expected a folder")
    _writable_parent(out, "--out")
    if args.out is not None and not args.force:  # a folder of your own is never overwritten
        held = [mt for mt in todo if (out / f"{mt}.json").exists()]
        if held:
            raise FileExistsError(
                f"--out {str(out)!r} already holds a {', '.join(held)} posterior "
                f"({out / (held[0] + '.json')}); pass --force to replace it, or choose another "
                "folder"
            )
    print(
        f"netbayes {__version__}: fitting {', '.join(todo)} ({args.chains} chains x "
        f"{args.draws} draws after {args.tune} tuning, {args.sampler}, seed {args.seed}) "
        f"into {out}",
        flush=True,
    )
    refused = []
    for i, mt in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {mt}: compiling and sampling ...", flush=True)
        t0 = time.perf_counter()
        try:
            path, fit = fit_default(
                mt,
                draws=args.draws,
                tune=args.tune,
                chains=args.chains,
                seed=args.seed,
                sampler=args.sampler,
                progress=not args.no_progress,
                folder=out,
                family=args.family if mt.startswith("survival-") else None,
                allow_unconverged=args.allow_unconverged,
            )
        except NotConvergedError as err:
            print(f"netbayes: error: {err}", file=sys.stderr, flush=True)
            refused.append(mt)
            continue
        d = fit.diagnostics
        print(
            f"[{i}/{len(todo)}] {mt}: {time.perf_counter() - t0:.0f} s; max R-hat "
            f"{d['r_hat'].max():.3f}, min bulk ESS {d['ess_bulk'].min():.0f}, "
            f"{fit.n_divergences} divergences -> {path}",
            flush=True,
        )
        for prob in fit.problems:
            print(f"    warning: {prob}", flush=True)
        if not fit.converged:
            print("    warning: saved with converged: false (--allow-unconverged); every "
                  "prediction from it warns", flush=True)  # fmt: skip
    if refused:
        print(f"netbayes: not saved (did not converge): {', '.join(refused)}", file=sys.stderr)
        return 1
    return 0


_SEED_MAX = 2**63 - 1
"""Largest seed both samplers take (nutpie: an unsigned 64-bit integer; PyMC: any >= 0)."""


def _add_fit(sub: argparse._SubParsersAction) -> None:
    from netbayes.models.registry import MODELS
    from netbayes.store import DEFAULT_SEED

    p = sub.add_parser(
        "fit",
        help="refit the default models and store their posteriors (regenerates models/)",
        description="Fit the default models on the packaged calibration data with NUTS and "
        "store each posterior (NetCDF DataTree + fast-read draws + JSON model card) where "
        "`netbayes predict` finds it, replacing the one there (a posterior already in a --out "
        "folder is replaced only with --force). A fit that misses the convergence targets is "
        "not saved (exit status 1) unless --allow-unconverged. Reproducibility: the same seed, "
        "data and software versions on the same machine give the same draws, bit for bit, "
        "except the first fit that compiles a model into an empty PyTensor cache; "
        "another machine or other versions of nutpie/PyMC/NumPy give a statistically "
        "equivalent posterior (the same summaries within Monte Carlo error), not the same "
        "draws. Runs MCMC: about a minute per model. Never writes into the installed package: "
        "there, pass --out DIR.",
    )
    p.add_argument(
        "--model",
        nargs="+",
        choices=[*MODELS, "all"],
        default=["all"],
        metavar="MODEL",
        help=f"which posteriors to regenerate: {', '.join([*MODELS, 'all'])} (default all)",
    )
    p.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"random seed, 0 to 2**63-1 (default {DEFAULT_SEED}: the shipped posteriors)",
    )
    p.add_argument("--sampler", choices=["nutpie", "pymc"], default="nutpie")
    from netbayes.families import DEFAULT_FAMILY, FAMILIES

    p.add_argument(
        "--family",
        choices=list(FAMILIES),
        default=DEFAULT_FAMILY,
        help="survival family of the survival models (default weibull, the shipped one)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="destination folder (default: the models folder: $NETBAYES_MODELS_DIR or a source "
        "checkout's models/; required when netbayes is installed from a wheel)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a posterior of the same model type already in the --out folder",
    )
    p.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="save a fit that missed the convergence targets (divergences, R-hat > 1.01 or bulk "
        "ESS < 400); its card says converged: false and every prediction from it warns",
    )
    p.add_argument("--no-progress", action="store_true", help="no sampler progress bar")
    p.set_defaults(func=_fit)


def _loso(args: argparse.Namespace) -> int:
    from netbayes.loso import leave_one_study_out, loso_summary

    for flag in ("draws", "tune", "chains"):
        v = getattr(args, flag)
        if v < 1:
            raise ValueError(f"--{flag} {v} is not allowed; expected an integer >= 1")
    csv = None if args.csv is None else _output_path(args.csv, "--csv", force=args.force,
                                                     folder=False)  # fmt: skip
    if args.workers is not None and args.scheduler is not None:
        raise ValueError(
            f"--workers {args.workers} and --scheduler {args.scheduler} are not allowed "
            "together; expected one of them (a scheduler's cluster has its own workers)"
        )
    try:
        t = leave_one_study_out(
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            progress=lambda m: print(f"netbayes: {m}", file=sys.stderr, flush=True),
            workers=args.workers,
            scheduler=args.scheduler,
        )
    except ImportError as e:  # Dask asked for and missing: say which extra to install
        raise ValueError(str(e)) from None
    if csv is not None:
        _write_csv(t, csv)
    print(
        f"netbayes {__version__}: leave one study out (each study's published figures "
        "predicted for a new centre by a fit without it)"
    )
    for line in t.attrs.get("skipped", []):
        print(f"  skipped {line}")
    for name, d in t.attrs.get("fits", {}).items():
        if d:
            print(
                f"  fit {name}: {d['divergences']} divergences, max R-hat {d['max_r_hat']:.3f}, "
                f"min bulk ESS {d['min_ess_bulk']:.0f}, {d['seconds']:.0f} s"
            )
    s = loso_summary(t)
    print()
    print("  model          left out        figures  mean PIT  inside 50%  inside 90%  inside 95%")
    for r in s.itertuples(index=False):
        print(
            f"  {r.model_type:<13}  {r.held_out:<14}  {r.figures:>7}  {r.mean_pit:>8.2f}  "
            f"{r.inside_50:>10.0%}  {r.inside_90:>10.0%}  {r.inside_95:>10.0%}"
        )
    print(
        "\nA calibrated new-centre predictive puts about 50%, 90% and 95% of the figures inside "
        "(PITs uniform, mean 0.5); with one study left to learn from, intervals are wide."
    )
    return 0


def _writable_parent(p: Path, flag: str) -> None:
    """The nearest existing folder above (or at) ``p`` is a folder this process may write in."""
    anc = p.parent if p.is_file() else p  # an existing output file (--force): its folder
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise ValueError(
            f"{flag} {str(p)!r} is not allowed: {anc} is a file, not a folder; expected a path "
            "in a folder you can write to"
        )
    if not os.access(anc, os.W_OK | os.X_OK):
        raise ValueError(
            f"{flag} {str(p)!r} is not allowed: the folder {anc} is not writable; expected a "
            "path in a folder you can write to"
        )


def _output_path(value: str | None, flag: str, *, force: bool, folder: bool) -> Path:
    """Check an output location before any work: not empty, writable, and not an existing
    file (or non-empty folder) unless ``--force``; ValueError naming the flag otherwise."""
    if value is None or not str(value).strip():
        raise ValueError(
            f"{flag} {value!r} is not allowed; expected a {'folder' if folder else 'file'} "
            "path (an empty one would write into the current folder)"
        )
    p = Path(value)
    if folder:
        if p.exists() and not p.is_dir():
            raise ValueError(f"{flag} {value!r} is not allowed: it is a file; expected a folder")
        if p.is_dir() and any(p.iterdir()) and not force:
            raise FileExistsError(
                f"{flag} {value!r} is an existing folder with files in it; pass --force to "
                "replace the report files in it, or choose a new folder"
            )
    else:
        if p.is_dir():
            raise ValueError(f"{flag} {value!r} is not allowed: it is a folder; expected a file")
        if p.exists() and not force:
            raise FileExistsError(
                f"{flag} {value!r} exists; pass --force to replace it, or choose another file"
            )
    _writable_parent(p, flag)
    return p


def _write_csv(t: pd.DataFrame, path: Path) -> None:
    from netbayes.store import write_atomic

    write_atomic(path, t.to_csv(index=False).encode("utf-8"))
    print(f"netbayes: wrote {path}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    if args.leave_one_study_out:
        return _loso(args)
    for flag in ("workers", "scheduler"):
        if getattr(args, flag) is not None:
            raise ValueError(
                f"--{flag} {getattr(args, flag)} is not allowed here; expected it only with "
                "--leave-one-study-out (the refits it runs on Dask)"
            )
    csv = None if args.csv is None else _output_path(args.csv, "--csv", force=args.force,
                                                     folder=False)  # fmt: skip
    if args.in_sample:
        return _validate_in_sample(args, csv)
    from netbayes.checks.psis import KHAT_OK
    from netbayes.validation import loo_validation

    t, summ = loo_validation(args.models_dir)
    if csv is not None:
        _write_csv(t, csv)
    print(
        f"netbayes {__version__}: cross-validated check (PSIS-LOO): each published figure's PIT "
        "under the predictive of the model without its likelihood term"
    )
    print("  endpoint  figures  PIT bins (expected)       KS p   chi2 p   central 50/80/95%"
          "       max k-hat")  # fmt: skip
    failed = []
    for r in summ.itertuples(index=False):
        bins = " ".join(f"{c:>2}" for c in r.pit_bins)
        cov = "/".join(f"{getattr(r, f'inside_central_{q}'):.0%}" for q in (50, 80, 95))
        verdict = ""
        if r.endpoint != "all":
            verdict = "FAIL" if min(r.ks_p, r.chi2_p) < _LOO_ALPHA / 2 else "PASS"
            if verdict == "FAIL":
                failed.append(r.endpoint)
        print(
            f"  {r.endpoint:<9} {r.figures:>7}  {bins} ({r.expected_per_bin:4.1f})  "
            f"{r.ks_p:6.3f}  {r.chi2_p:6.3f}   {cov:<16}  {r.max_khat:5.2f} "
            f"({r.khat_high} > {KHAT_OK})  {verdict}"
        )
    print(
        "  An endpoint FAILs when the Kolmogorov-Smirnov or the chi-square test rejects "
        f"uniform PITs at p < {_LOO_ALPHA / 2} (a {_LOO_ALPHA} level split over the two "
        "tests). Nominal shares inside the central intervals: 50%/80%/95%. k-hat > 0.7: "
        "that figure's importance weights are unreliable (an exact refit without it is "
        "needed)."
    )
    print(
        '  "all tumours" medians are held out of the likelihood, not independent (the same '
        "patients as the tumour-type rows); their PIT is under the posterior predictive."
    )
    extreme = (t["pit"] - 0.5).abs() > 0.475
    show = t if args.all else t[extreme]
    if len(show):
        print()
        for r in show.itertuples(index=False):
            flag = "extreme" if abs(r.pit - 0.5) > 0.475 else "       "
            k = "held out" if math.isnan(r.khat) else f"k-hat {r.khat:.2f}"
            print(
                f"  {flag} {r.figure}: published {r.published:g}, LOO predictive "
                f"{r.loo_median:.1f} ({r.loo_lower:.1f}-{r.loo_upper:.1f}), PIT {r.pit:.3f}, "
                f"{k}  [{r.source}]"
            )
    verdict = "rejected for " + ", ".join(failed) if failed else "not rejected"
    print(
        f"\n{int((~extreme).sum())}/{len(t)} figures with a leave-one-out PIT inside the central "
        f"95% (0.025-0.975); uniformity {verdict} (in-sample table: --in-sample)."
    )
    return 1 if failed else 0


_LOO_ALPHA = 0.01
"""Significance level of the per-endpoint uniformity test of ``netbayes validate``."""


def _validate_in_sample(args: argparse.Namespace, csv: Path | None) -> int:
    from netbayes.validation import results_table, validation_results

    results = validation_results(args.models_dir)
    t = results_table(results)
    if csv is not None:
        _write_csv(t, csv)
    print(
        f"netbayes {__version__}: IN-SAMPLE check: published figures against the 95% posterior "
        "predictive intervals of the fit that saw them (weak: see netbayes validate without "
        "--in-sample for the cross-validated check)"
    )
    for res in results:
        print(f"  {res.sentence()}")
    print(
        '  "all tumours" medians: held out of the likelihood, not independent (the same '
        "patients as the tumour-type rows)."
    )
    show = t if args.all else t[~t["inside"]]
    if len(show):
        print()
        for r in show.itertuples(index=False):
            flag = "inside " if r.inside else "OUTSIDE"
            print(
                f"  {flag} {r.figure}: published {r.published:g}, predicted "
                f"{r.predicted_median:.1f} ({r.pi95_lower:.1f}-{r.pi95_upper:.1f})  [{r.source}]"
            )
    n_out = int((~t["inside"]).sum())
    print(f"\n{len(t) - n_out}/{len(t)} figures inside their 95% in-sample predictive interval.")
    return 1 if n_out else 0


def _report(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from netbayes.store import _umask, load_posterior

    out = _output_path(args.out, "--out", force=args.force, folder=True)
    posts = {m: load_posterior(m, args.models_dir) for m in ("survival-pfs", "survival-os",
                                                             "toxicity")}  # fmt: skip
    # everything is written into a staging folder next to --out, then moved in: an interrupted
    # report leaves no partial report (and an existing one, with --force, as it was)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        os.chmod(stage, 0o777 & ~_umask())
        names = [p.name for p in _write_report(stage, posts)]
        if not out.exists():
            os.replace(stage, out)  # one rename: the whole report appears at once
        else:  # --force (or an empty folder): replace file by file, each atomically
            for n in names:
                os.replace(stage / n, out / n)
            stage.rmdir()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    print(f"netbayes {__version__}: wrote {len(names)} files to {out}")
    for n in names:
        print(f"  {out / n}")
    return 0


def _write_report(out: Path, posts: dict) -> list[Path]:
    """Write the report's tables and plots into ``out``; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    from netbayes import vocab
    from netbayes.report import parameter_table, write_table
    from netbayes.validation import validation_table

    written = []
    val = validation_table(posts["survival-pfs"], posts["survival-os"], posts["toxicity"])
    for ext in (".md", ".tex", ".csv"):
        written.append(
            write_table(
                val,
                out / f"validation{ext}",
                digits=1,
                caption="Published figures against 95% predictive intervals",
            )
        )
    for m, post in posts.items():
        d = post.all_draws()
        dims = post.card["variables"]
        names = [v for v in dims if v in d and d[v].ndim <= 2]
        # element labels by dimension; the toxicity store calls its cell-line dimension "line"
        coords = {
            "tumour_type": vocab.TUMOUR_TYPES,
            "cell_line": vocab.CELL_LINES,
            "line": vocab.CELL_LINES,
        }
        studies = (post.card.get("model_config") or {}).get("studies")
        if isinstance(studies, list):
            coords["study"] = [str(s) for s in studies]
        lab = {
            v: coords[dd[-1]]
            for v, dd in dims.items()
            if dd and dd[-1] in coords and v in d and d[v].shape[-1] == len(coords[dd[-1]])
        }
        tab = parameter_table(d, names, labels=lab)
        card = post.card["diagnostics"]
        tab.attrs["note"] = (
            f"{m}: max R-hat {card['max_r_hat']:.3f}, min bulk ESS {card['min_ess_bulk']:.0f}, "
            f"divergences {card['divergences']}"
        )
        for ext in (".md", ".tex", ".csv"):
            written.append(
                write_table(
                    tab,
                    out / f"parameters_{m}{ext}",
                    digits=3,
                    caption=f"Posterior of the {m} model (95% ETI)",
                )
            )
    import importlib.util

    from netbayes.report import survival_table, toxicity_table

    exts = (".md", ".tex", ".csv")
    if importlib.util.find_spec("great_tables") is not None:
        exts += (".html",)
    natural = {
        "survival-pfs": (survival_table(posts["survival-pfs"], endpoint="pfs"), "PFS"),
        "survival-os": (survival_table(posts["survival-os"], endpoint="os"), "OS"),
        "toxicity": (toxicity_table(posts["toxicity"]), "grade >= III toxicity"),
    }
    for m, (tab, what) in natural.items():
        for ext in exts:
            view = tab  # CSV: every column; the rendered tables: what a paper prints
            if ext != ".csv":
                view = tab[["group", "quantity", "unit", "estimate", "r_hat", "ess_bulk",
                            "ess_tail"]].copy()  # fmt: skip
                view.attrs["note"] = tab.attrs["note"]
            written.append(
                write_table(
                    view,
                    out / f"summary_{m}{ext}",
                    digits=2,
                    caption=f"{what}: posterior summaries on the natural scale",
                )
            )
    from netbayes.plots import (
        plot_law,
        plot_survival_curve,
        plot_type_forest,
        plot_validation,
        plot_validation_check,
    )
    from netbayes.predict import Predictor
    from netbayes.sensitivity import README_PATIENT

    plot_validation(val, str(out / "validation.png"))
    written.append(out / "validation.png")
    for check in dict.fromkeys(val["check"]):  # one figure per check, sized to its rows
        slug = re.sub(r"[^a-z0-9]+", "_", str(check).lower()).strip("_")
        plot_validation_check(val, check, path=str(out / f"validation_{slug}.png"))
        written.append(out / f"validation_{slug}.png")
    pred = Predictor(posts["survival-pfs"], posts["toxicity"], endpoint="pfs")
    plot_type_forest(pred, str(out / "forest_median_pfs.png"))
    written.append(out / "forest_median_pfs.png")
    import warnings

    with warnings.catch_warnings():  # the reference patient's notes are in the README
        warnings.simplefilter("ignore")
        patient = pred.patient(**README_PATIENT)
    plot_survival_curve(patient, path=str(out / "survival_curve_pfs.png"))
    written.append(out / "survival_curve_pfs.png")
    for kind in ("hazard", "rmst"):
        plot_law(patient, kind, path=str(out / f"{kind}_pfs.png"))
        written.append(out / f"{kind}_pfs.png")
    from netbayes.models.toxicity import ToxicityModel

    ToxicityModel().plot_risk(posts["toxicity"], str(out / "toxicity_risk.png"))
    written.append(out / "toxicity_risk.png")
    return written


def _prior_sensitivity(args: argparse.Namespace) -> int:
    from netbayes.sensitivity import README_PATIENT, prior_sensitivity
    from netbayes.store import write_atomic

    for flag, least in (("draws", 1), ("tune", 0), ("chains", 1), ("seed", 0)):
        v = getattr(args, flag)
        if v < least:
            raise ValueError(f"--{flag} {v} is not allowed; expected an integer >= {least}")
    if not (0 < args.scale < math.inf):
        raise ValueError(f"--scale {args.scale} is not allowed; expected a finite number > 0")
    out = None if args.out is None else _output_path(args.out, "--out", force=args.force,
                                                     folder=False)  # fmt: skip
    given = {"tumour_type": args.tumour_type, "line": args.line, "planned_gbq": args.planned_gbq,
             "prior_gbq": args.prior_gbq, "prior_pfs_months": args.prior_pfs}  # fmt: skip
    if args.tumour_type is None:
        patient = dict(README_PATIENT)
    elif args.line is None or args.planned_gbq is None:
        raise ValueError("--tumour-type needs --line and --planned-gbq (and, as the line needs "
                         "them, --prior-gbq and --prior-pfs)")  # fmt: skip
    else:
        patient = {k: v for k, v in given.items() if v is not None}
    models = [f"survival-{args.endpoint}", *([] if args.no_toxicity else ["toxicity"])]
    t = prior_sensitivity(
        patient, scale=args.scale, parameters=args.parameters, models=models, draws=args.draws,
        tune=args.tune, chains=args.chains, seed=args.seed, centre=args.centre,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )  # fmt: skip
    if out is not None:
        write_atomic(out, t.to_csv(index=False).encode("utf-8"))
        print(f"netbayes: wrote {out}", file=sys.stderr)
    which = "every prior" if args.parameters is None else ", ".join(args.parameters)
    print(f"netbayes {__version__}: prior SDs x {args.scale:g} ({which}); patient {patient}; "
          f"centre {args.centre}")  # fmt: skip
    print("shift_sd: move of the posterior median in baseline posterior SDs (log months, logit "
          "probability); width_ratio: interval width scaled / baseline")  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(t.to_string(index=False, float_format=lambda x: f"{x:.3g}", na_rep=""))
    return 0


def _add_prior_sensitivity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prior-sensitivity",
        help="refit with prior SDs scaled and tabulate which answers move",
        description="Refit the default models twice with the same sampler settings, with the "
        "default priors and with every prior SD (or those of --parameters) times --scale, and "
        "tabulate how each answer of a patient (default: the README patient) moves: the shift "
        "of its posterior median in baseline posterior SDs and the ratio of interval widths, "
        "next to its prior share (docs/prior_share.md). Runs MCMC: minutes.",
    )
    p.add_argument("--scale", type=float, default=2.0, help="factor on prior SDs (default 2)")
    p.add_argument("--parameters", nargs="+", default=None, metavar="NAME",
                   help="scale only these priors (default all)")  # fmt: skip
    p.add_argument("--tumour-type", default=None, help="the patient (default: README patient)")
    p.add_argument("--line", default=None)
    p.add_argument("--planned-gbq", type=float, default=None)
    p.add_argument("--prior-gbq", type=float, default=None)
    p.add_argument("--prior-pfs", type=float, default=None)
    p.add_argument("--endpoint", choices=["pfs", "os"], default="pfs")
    p.add_argument("--centre", default="new", help="new (default), typical or a study")
    p.add_argument("--no-toxicity", action="store_true", help="refit the survival model only")
    p.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--tune", type=int, default=1000, help="tuning steps (default 1000)")
    p.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    p.add_argument("--seed", type=int, default=20261206, help="seed of every fit")
    p.add_argument(
        "--out",
        default=None,
        help="also write the table to this CSV file (an existing file needs --force)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_prior_sensitivity)


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
    _add_predict(sub)
    _add_fit(sub)
    p = sub.add_parser(
        "validate",
        help="cross-validated (PSIS-LOO) check of every published figure",
        description="Check the stored posteriors against every published calibration figure "
        "(Table 5 PFS and OS medians, 188Re-HEDP OS, Table 6 counts, 188Re per-cycle grades), "
        "each under the leave-one-out predictive of the model without its likelihood term "
        "(Pareto-smoothed importance sampling, no refit): PIT histogram against uniform per "
        "endpoint. Exit status 1 if an endpoint's Kolmogorov-Smirnov or chi-square p-value is "
        "below 0.005.",
    )
    p.add_argument("--models-dir", default=None, help="folder of stored posteriors")
    p.add_argument(
        "--csv",
        default=None,
        help="also write the full table to this CSV file (an existing file needs --force)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing --csv file")
    p.add_argument("--all", action="store_true", help="list every figure, not only failures")
    p.add_argument(
        "--in-sample",
        action="store_true",
        help="the in-sample table instead: each figure against the 95%% predictive interval of "
        "the fit that saw it (weak; exit status 1 if any figure falls outside)",
    )
    p.add_argument(
        "--leave-one-study-out",
        action="store_true",
        help="refit each model without each of its studies (PyMC; minutes) and report the PIT "
        "of the left-out study's figures under the new-centre predictive",
    )
    p.add_argument("--draws", type=int, default=1000, help="draws per chain of each refit")
    p.add_argument("--tune", type=int, default=1000, help="tuning steps of each refit")
    p.add_argument("--chains", type=int, default=4, help="chains of each refit")
    from netbayes.runner import add_runner_arguments  # stdlib only: cheap for the parser

    add_runner_arguments(p, "the refits", only_with="--leave-one-study-out")
    p.set_defaults(func=_validate)
    p = sub.add_parser(
        "report",
        help="write calibration tables (Markdown, LaTeX, CSV) and plots to a folder",
    )
    p.add_argument(
        "--out",
        required=True,
        help="destination folder (created; an existing folder with files in it needs --force)",
    )
    p.add_argument("--models-dir", default=None, help="folder of stored posteriors")
    p.add_argument(
        "--force", action="store_true", help="replace the report files in an existing --out"
    )
    p.set_defaults(func=_report)
    _add_prior_sensitivity(sub)
    return parser


_FLAG_OF: dict[str, str] = {
    "prior_pfs_months": "--prior-pfs",
    "prior_gbq": "--prior-gbq",
    "planned_gbq": "--planned-gbq",
    "tumour_type": "--tumour-type",
    "line": "--line",
    "prob": "--interval",
    "kind": "--interval-kind",
    "centre": "--centre",
    "new_type": "--new-type",
    "endpoint": "--endpoint",
    "scale": "--scale",
    "parameters": "--parameters",
}
"""The patient commands' flags by the keyword the library names in its errors."""


def flag_names(message: str) -> str:
    """A library error as a patient command's user sees it: ``keyword=value`` becomes
    ``--flag=value`` and ``keyword=None is not allowed`` (a flag not given) ``--flag is
    missing`` (:data:`_FLAG_OF`)."""
    for kw, flag in _FLAG_OF.items():
        message = re.sub(rf"(?<![\w.\-\[]){kw}=None is not allowed", f"{flag} is missing", message)
        message = re.sub(rf"(?<![\w.\-\[]){kw}=", f"{flag}=", message)
    return message


EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fit": ("fit", ("pymc", "nutpie", "arviz", "h5netcdf")),
    "prior-sensitivity": ("fit", ("pymc", "nutpie", "arviz", "h5netcdf")),
    "report": ("all", ("matplotlib", "arviz")),
}
"""Commands that need an optional part of the install: the extra and its modules
(``pip install .`` alone gives ``predict``, ``validate``, ``summary`` and ``data``)."""


def missing_extra(command: str) -> str | None:
    """Why ``command`` cannot run in this install (the extra to install), or None."""
    import importlib.util

    if command not in EXTRAS:
        return None
    extra, modules = EXTRAS[command]
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return (
        f"netbayes {command} needs the optional '{extra}' dependencies, and "
        f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed; install "
        f"them with: pip install 'netbayes[{extra}]' (from a checkout: pip install '.[{extra}]'"
        + ("; everything: '.[all]')" if extra != "all" else ")")
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``netbayes`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    why = missing_extra(getattr(args, "command", "") or "")
    if why is not None:
        print(f"netbayes: error: {why}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `netbayes summary | head`: stop quietly
        sys.stderr.close()
        return 0
    except (KeyError, ValueError, OSError) as err:
        # ValueError includes netbayes.store.StoreError (a missing or corrupt posterior);
        # OSError: a file or folder that cannot be read or written
        msg = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
        if args.func in (_predict, _prior_sensitivity):  # name the flags, not the keywords
            msg = flag_names(msg)
        print(f"netbayes: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
