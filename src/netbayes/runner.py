"""Replicates of a simulation study as tasks: in this process, or on ``dask.distributed``.

A simulation study (simulation-based calibration, coverage, leave-one-study-out refits) is a
set of replicates, each a function of its own index and of nothing else: replicate ``r`` draws
its randomness from ``numpy.random.default_rng([seed, r])`` and seeds its sampler from
``(seed, r)``. :func:`run_replicates` runs such a function over the replicates that are not
done yet:

* one worker and no scheduler (the default): in this process, in order, without Dask;
* ``workers=N``: on an embedded :class:`dask.distributed.LocalCluster` of ``N`` single-thread
  worker processes, shut down on return, on error and on ``KeyboardInterrupt``;
* ``scheduler="tcp://host:8786"``: on a running Dask cluster (its own workers).

Each result is handed to ``on_result`` as soon as it arrives (the caller appends it to its
results file, :func:`write_sorted_csv`), so an interrupted study keeps every finished
replicate and a rerun that passes them as ``done`` computes only the missing ones. Because a
replicate depends only on its index, the results do not depend on the number of workers or on
the order in which replicates finish.

The function is sent to the workers by pickling (``cloudpickle``), so it must carry a *recipe*
(model name, settings, seed), not a compiled model: a compiled nutpie model cannot be pickled.
Expensive set-up is done once per worker process with :func:`worker_cache`.

Dask is optional (``pip install "netbayes[sim]"``) and imported only when a cluster is used.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Hashable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "DASK_MISSING",
    "add_runner_arguments",
    "check_scheduler",
    "check_workers",
    "clear_worker_cache",
    "cores_per_task",
    "run_replicates",
    "worker_cache",
    "write_sorted_csv",
]

DASK_MISSING = (
    "running replicates on Dask (workers > 1 or a scheduler address) needs dask.distributed, "
    "which is not installed: pip install 'netbayes[sim]' (or 'dask[distributed]'), or run "
    "with workers=1 and no scheduler"
)
"""The message of the :class:`ImportError` raised when a cluster is asked for without Dask."""

_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
_CACHE: dict[Hashable, Any] = {}
_CACHE_LOCK = threading.Lock()


def check_workers(workers: Any) -> int | None:
    """``workers`` as an ``int >= 1`` (or ``None``); a clear :class:`ValueError` otherwise.

    Parameters
    ----------
    workers : int or None
        Worker processes of an embedded ``LocalCluster`` (1: in this process).

    Returns
    -------
    int or None
    """
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(
            f"workers={workers!r} is not allowed; expected an integer >= 1 (1: run in this "
            "process, N: a local Dask cluster of N worker processes)"
        )
    return int(workers)


def check_scheduler(scheduler: Any) -> Any:
    """``scheduler`` if it is ``None``, a scheduler address (``"tcp://host:8786"``) or a
    ``dask.distributed.Client``; a clear :class:`ValueError` otherwise.

    Parameters
    ----------
    scheduler : str, distributed.Client or None

    Returns
    -------
    str, distributed.Client or None
    """
    if scheduler is None:
        return None
    if isinstance(scheduler, str):
        if not _ADDRESS.match(scheduler.strip()):
            raise ValueError(
                f"scheduler={scheduler!r} is not a Dask scheduler address; expected one like "
                "'tcp://host:8786' (protocol://host:port)"
            )
        return scheduler.strip()
    if type(scheduler).__name__ == "Client" and hasattr(scheduler, "submit"):
        return scheduler
    raise ValueError(
        f"scheduler={scheduler!r} is not allowed; expected None, an address such as "
        "'tcp://host:8786' or a dask.distributed.Client"
    )


def cores_per_task(cores: int, workers: int | None = None, scheduler: Any = None) -> int:
    """Cores one replicate's fit may use so that the workers do not oversubscribe the machine.

    Parameters
    ----------
    cores : int
        What a sequential run gives each fit (returned unchanged when the replicates run in
        this process).
    workers : int, optional
        Worker processes of the local cluster.
    scheduler : str or Client, optional
        With a remote scheduler each worker is taken to own one core (scale the cluster, not
        the fit): 1.

    Returns
    -------
    int
        ``cores`` in-process; 1 on a remote scheduler; otherwise
        ``max(1, min(cores, cpu_count // workers))``. nutpie seeds each chain from the fit's
        seed, so the draws do not depend on this number (``tests/test_runner.py``).
    """
    workers = check_workers(workers) or 1
    if scheduler is not None:
        return 1
    if workers == 1:
        return cores
    return max(1, min(cores, (os.cpu_count() or 1) // workers))


def worker_cache(key: Hashable, build: Callable[[], Any]) -> Any:
    """``build()`` the first time ``key`` is asked for in this process, the same object after.

    A Dask worker process keeps this module (it is imported, not pickled), so a replicate
    function that asks for its compiled model here compiles it once per worker, however many
    replicates the worker runs. The key must name everything the object is built from.

    Parameters
    ----------
    key : hashable
        E.g. ``("benchmarks/sbc.py", "survival")``.
    build : callable
        Called with no argument to build the object.

    Returns
    -------
    object
    """
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = build()
        return _CACHE[key]


def clear_worker_cache() -> None:
    """Forget every object of :func:`worker_cache` in this process."""
    with _CACHE_LOCK:
        _CACHE.clear()


class _Progress:
    """One line per finished replicate: count, elapsed time, time left at the current rate."""

    def __init__(self, total: int, resumed: int, label: str, out: Callable[[str], None] | None):
        self.total, self.resumed, self.label, self.out = total, resumed, label, out
        self.n = 0
        self.t0 = time.perf_counter()

    def say(self, text: str) -> None:
        if self.out is not None:
            self.out(text)

    def update(self, key: Hashable, detail: str) -> None:
        self.n += 1
        if self.out is None:
            return
        el = time.perf_counter() - self.t0
        todo = self.total - self.resumed
        left = el / self.n * (todo - self.n)
        eta = f", ~{left:.0f} s left" if self.n < todo else ""
        extra = f": {detail}" if detail else ""
        self.out(
            f"{self.label} {key}{extra} [{self.resumed + self.n}/{self.total}, "
            f"{el:.0f} s elapsed{eta}]"
        )


def _printer(progress: bool | Callable[[str], None]) -> Callable[[str], None] | None:
    if progress is True:
        return lambda s: print(s, flush=True)
    if progress is False or progress is None:
        return None
    if callable(progress):
        return progress
    raise ValueError(f"progress={progress!r} is not allowed; expected a bool or a callable")


def _keys(reps: int | Iterable[Hashable]) -> list[Hashable]:
    if isinstance(reps, bool):
        raise ValueError(f"reps={reps!r} is not allowed; expected an integer >= 0 or the keys")
    if isinstance(reps, int):
        if reps < 0:
            raise ValueError(f"reps={reps!r} is not allowed; expected an integer >= 0")
        return list(range(reps))
    try:
        keys = list(reps)
    except TypeError:
        raise ValueError(
            f"reps={reps!r} is not allowed; expected an integer >= 0 or an iterable of keys"
        ) from None
    if len(set(keys)) != len(keys):
        raise ValueError("reps holds a replicate key twice; every replicate runs once")
    return keys


def _connect(scheduler: Any, workers: int | None) -> tuple[Any, Any, bool, str]:
    """(client, cluster or None, whether this call owns the client, a description)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise ImportError(DASK_MISSING) from e
    if scheduler is not None and not isinstance(scheduler, str):
        return scheduler, None, False, "the given Dask client"
    if scheduler is not None:
        return Client(scheduler), None, True, f"the Dask scheduler at {scheduler}"
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        # no dashboard; the scheduler's small HTTP server on a free local port (no clash)
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    )
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return client, cluster, True, f"a local Dask cluster of {workers} worker processes"


def run_replicates(
    fn: Callable[[Hashable], Any],
    reps: int | Iterable[Hashable],
    *,
    scheduler: Any = None,
    workers: int | None = None,
    done: Collection[Hashable] = (),
    on_result: Callable[[Hashable, Any], None] | None = None,
    progress: bool | Callable[[str], None] = True,
    describe: Callable[[Hashable, Any], str] | None = None,
    label: str = "replicate",
) -> dict[Hashable, Any]:
    """Run ``fn(key)`` for every replicate key not in ``done``; in-process or on Dask.

    Parameters
    ----------
    fn : callable
        ``fn(key) -> result``. Its randomness must come from the key alone (e.g.
        ``default_rng([seed, key])``), so the results do not depend on the workers. On Dask it
        is pickled (``cloudpickle``): a recipe, with its set-up in :func:`worker_cache`.
    reps : int or iterable of hashable
        ``n`` for the keys ``0..n-1``, or the keys themselves (e.g. ``(K, r)`` pairs).
    scheduler : str or distributed.Client, optional
        A running Dask scheduler's address (``"tcp://host:8786"``) or client; its workers run
        the replicates. Not with ``workers``.
    workers : int, optional
        Worker processes (one thread each) of an embedded ``LocalCluster``; ``None`` or 1
        without a scheduler: in this process, in key order, without Dask.
    done : collection of hashable
        Keys already finished (e.g. read back from the results file): skipped.
    on_result : callable, optional
        ``on_result(key, result)``, called in this process as each replicate finishes (in the
        order they finish on a cluster), before the next one is awaited.
    progress : bool or callable
        ``True``: print one line per finished replicate (count, elapsed, time left); a
        callable gets the lines instead; ``False``: silent.
    describe : callable, optional
        ``describe(key, result) -> str`` adds a replicate's own summary to its line.
    label : str
        The word before each key in the progress lines.

    Returns
    -------
    dict
        ``{key: result}`` of the replicates run by this call, in the order of ``reps``.

    Raises
    ------
    ValueError
        A bad ``reps``, ``workers``, ``scheduler`` or ``progress``, or ``workers`` with a
        ``scheduler``.
    ImportError
        A cluster is asked for and ``dask.distributed`` is not installed (:data:`DASK_MISSING`).
    """
    if not callable(fn):
        raise ValueError(f"fn={fn!r} is not callable; expected fn(key) -> result")
    keys = _keys(reps)
    workers = check_workers(workers)
    scheduler = check_scheduler(scheduler)
    if scheduler is not None and workers is not None:
        raise ValueError(
            f"workers={workers!r} cannot be combined with scheduler={scheduler!r}: the "
            "scheduler's cluster has its own workers (give one or the other)"
        )
    out = _printer(progress)
    done_set = set(done)
    todo = [k for k in keys if k not in done_set]
    results: dict[Hashable, Any] = {}
    if not todo:
        return results
    prog = _Progress(len(keys), len(keys) - len(todo), label, out)

    def finish(key: Hashable, res: Any) -> None:
        results[key] = res
        if on_result is not None:
            on_result(key, res)
        prog.update(key, describe(key, res) if describe is not None else "")

    if scheduler is None and (workers or 1) == 1:
        for key in todo:
            finish(key, fn(key))
        return {k: results[k] for k in todo}

    client, cluster, own, where = _connect(scheduler, workers)
    futures: dict[Any, Hashable] = {}
    try:
        from distributed import as_completed

        prog.say(f"{len(todo)} {label}s to run on {where}")
        futures = {client.submit(fn, key, pure=False): key for key in todo}
        for fut in as_completed(futures):
            key = futures[fut]
            res = fut.result()  # a replicate's error is raised here, with its traceback
            fut.release()
            finish(key, res)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return {k: results[k] for k in todo}


def write_sorted_csv(path: str | Path, rows: Any, *, by: str | list[str] = "rep") -> Path:
    """Add ``rows`` to the CSV at ``path``, sorted by ``by``, written atomically.

    The whole file is rewritten (columns stay aligned if a new one appears; an interruption
    leaves the old file or the new one, never a partial one), so the final file does not
    depend on the order in which replicates finished.

    Parameters
    ----------
    path : str or pathlib.Path
    rows : pandas.DataFrame, dict or list of dict
    by : str or list of str
        Sort columns (a stable sort: rows of one replicate keep their order).

    Returns
    -------
    pathlib.Path
    """
    import pandas as pd

    from netbayes.store import write_atomic

    p = Path(path)
    new = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(
        [rows] if isinstance(rows, dict) else list(rows)
    )  # fmt: skip
    table = pd.concat([pd.read_csv(p), new], ignore_index=True) if p.exists() else new
    table = table.sort_values(by, kind="stable")
    return write_atomic(p, table.to_csv(index=False).encode())


def add_runner_arguments(
    parser: argparse.ArgumentParser, subject: str = "replicates", only_with: str = ""
) -> argparse.ArgumentParser:
    """Add ``--workers N`` and ``--scheduler ADDRESS`` to a study's command line.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    subject : str
        What runs on Dask, for the help (e.g. ``"the refits"``).
    only_with : str
        A flag the two need, named in their help (e.g. ``"--leave-one-study-out"``).

    Returns
    -------
    argparse.ArgumentParser
        ``parser``.
    """
    lead = f"with {only_with}: " if only_with else ""

    def workers(text: str) -> int:
        try:
            return check_workers(int(text))  # type: ignore[return-value]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed; expected an integer >= 1"
            ) from None

    def scheduler(text: str) -> str:
        try:
            return check_scheduler(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parser.add_argument(
        "--workers", type=workers, default=None, metavar="N",
        help=f"{lead}{subject} on a local Dask cluster of N worker processes (default 1: in "
        "this process, one after the other; the same results either way)",
    )  # fmt: skip
    parser.add_argument(
        "--scheduler", type=scheduler, default=None, metavar="ADDRESS",
        help=f"{lead}{subject} on a running Dask scheduler, e.g. tcp://host:8786 (not with "
        "--workers)",
    )  # fmt: skip
    return parser
