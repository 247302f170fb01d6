"""Where the test suite's time goes (issue 19, item 6), from a pytest run with every duration.

Run the suite as CI does, with every duration reported, then read the log::

    .venv/bin/python -m pytest -n 2 --dist worksteal --durations=0 -q > durations.log
    .venv/bin/python -m pytest --collect-only -m slow -q > slow.log
    python benchmarks/suite_accounting.py durations.log slow.log

It sums the durations (the work of both workers: the wall time is about half of it plus the
start-up) into: the notebooks (each in a kernel of its own, fast settings), the other tests
marked ``slow`` (real MCMC fits with small draws and the first compiles of never-seen models),
the other tests of two seconds or more (nearly all build and compile a model's PyTensor graph:
log densities, gradients, the validate and report fixtures, the property tests) and the rest.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

LINE = re.compile(r"([\d.]+)s (call|setup|teardown)\s+(\S+)")


def account(durations: str, slow_ids: set[str]) -> dict[str, tuple[int, float]]:
    """``{category: (number of test phases, seconds)}`` from a ``--durations=0`` log."""
    n: Counter[str] = Counter()
    t: Counter[str] = Counter()
    for line in durations.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        s, test = float(m.group(1)), m.group(3)
        if "test_notebooks.py" in test:
            cat = "notebooks"
        elif test in slow_ids:
            cat = "other slow tests (MCMC fits, first compiles)"
        elif s >= 2.0:
            cat = "other tests of >= 2 s (model graphs compiled, validate/report, properties)"
        else:
            cat = "the rest (< 2 s each)"
        n[cat] += 1
        t[cat] += s
    return {k: (n[k], t[k]) for k in n}


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: suite_accounting.py DURATIONS_LOG SLOW_COLLECT_LOG")
    with open(argv[0]) as f:
        durations = f.read()
    with open(argv[1]) as f:
        slow = {x.strip() for x in f if "::" in x}
    acc = account(durations, slow)
    total = sum(s for _, s in acc.values())
    m = re.search(r"(\d+) passed.* in ([\d.]+)s", durations)
    print(
        f"sum of durations: {total:.0f} s"
        + (f"; wall {m.group(2)} s, {m.group(1)} passed" if m else "")
    )
    for k, (c, s) in sorted(acc.items(), key=lambda kv: -kv[1][1]):
        print(f"  {s:6.0f} s  {100 * s / total:4.1f}%  {c:5d} phases  {k}")


if __name__ == "__main__":
    main(sys.argv[1:])
