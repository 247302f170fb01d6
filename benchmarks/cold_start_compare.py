"""Cold start of the README prediction command: this tree against an earlier commit, same run.

    python benchmarks/cold_start_compare.py --base-ref 05c8412 [--runs 12]

Checks out ``--base-ref`` into a temporary git worktree and times, interleaved,
``python -m netbayes.cli predict ...`` (the README main command) with ``PYTHONPATH`` pointing at
the base tree's ``src`` and at this tree's ``src``, plus ``python -c "import pymc"``. Each tree
reads its own models folder (the base tree's ``models/`` in its own store format). Prints the
medians and the ratio new/base and writes ``results/cold_start_compare.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CMD = [
    "-m", "netbayes.cli", "predict", "--tumour-type", "midgut", "--line", "R-PRRT",
    "--prior-pfs", "30", "--prior-gbq", "29.9", "--planned-gbq", "14.9",
]  # fmt: skip


def _time(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-ref", required=True, help="git commit to compare against")
    p.add_argument("--runs", type=int, default=12)
    args = p.parse_args()
    import os

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base), args.base_ref],
            check=True,
        )
        try:
            times: dict[str, list[float]] = {"base": [], "new": [], "import pymc": []}
            for _ in range(args.runs):
                for name, src in (("base", base / "src"), ("new", ROOT / "src")):
                    env = dict(os.environ, PYTHONPATH=str(src))
                    env.pop("NETBAYES_MODELS_DIR", None)
                    times[name].append(_time(CMD, env))
                times["import pymc"].append(_time(["-c", "import pymc"], dict(os.environ)))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True
            )
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        f"# Cold start of `netbayes predict` (README command), {args.runs} interleaved runs",
        "",
        "| what | median s | min s |",
        "|---|---|---|",
        *(f"| {k} | {med[k]:.3f} | {min(v):.3f} |" for k, v in times.items()),
        "",
        f"new / base ({args.base_ref}): {med['new'] / med['base']:.2f}; "
        f"new / import pymc: {med['new'] / med['import pymc']:.2f}",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results" / "cold_start_compare.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
