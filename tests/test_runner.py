"""Replicates as tasks (netbayes.runner): the same results in-process, on a one-worker and on a
two-worker Dask cluster; resume after an interruption; clear errors; clusters shut down.

The replicate function here is cheap (three normals from ``default_rng([seed, r])``), so the
file runs in seconds. The real studies' replicates on two workers against one (SBC ranks
identical, nutpie given 1 core per fit instead of 2) are checked by
``benchmarks/runner_scaling.py``: a compiled model per worker costs about a minute on two
cores, too long for a unit test.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from netbayes import runner
from netbayes.runner import (
    add_runner_arguments,
    cores_per_task,
    run_replicates,
    worker_cache,
    write_sorted_csv,
)

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
# the workers need not import this test module: its objects travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

VALUES = ["a", "b", "c"]


class Draws:
    """Replicate r: three normals from ``default_rng([seed, r])``, where it ran, and when this
    process built its (pretend-expensive) set-up."""

    def __init__(self, seed: int, *, fail_at: int | None = None, sleep: float = 0.0):
        self.seed, self.fail_at, self.sleep = seed, fail_at, sleep

    def __call__(self, r: int) -> dict:
        built = worker_cache(("tests/test_runner.py", self.seed), time.perf_counter_ns)
        if r == self.fail_at:
            raise RuntimeError(f"replicate {r} failed on purpose")
        time.sleep(self.sleep)
        x = np.random.default_rng([self.seed, r]).normal(size=3)
        return {"rep": r, **dict(zip(VALUES, x.tolist(), strict=True)), "pid": os.getpid(),
                "built": built}  # fmt: skip


def _table(results: dict) -> pd.DataFrame:
    return pd.DataFrame(list(results.values()))[["rep", *VALUES]]


@pytest.fixture(scope="module")
def one_worker():
    """A running one-worker cluster, reached by its address (the ``--scheduler`` path)."""
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    ) as cluster:
        yield cluster.scheduler_address


class RecordingCluster(distributed.LocalCluster):
    """A LocalCluster that records its settings and whether it was closed."""

    made: ClassVar[list] = []

    def __init__(self, **kw):
        super().__init__(**kw)
        self.kw, self.closed = kw, False
        RecordingCluster.made.append(self)

    def close(self, *a, **kw):
        self.closed = True
        return super().close(*a, **kw)


@pytest.fixture
def recording(monkeypatch):
    RecordingCluster.made = []
    monkeypatch.setattr(distributed, "LocalCluster", RecordingCluster)
    return RecordingCluster.made


def test_one_worker_in_process_one_worker_cluster_and_two_workers_agree(
    one_worker, recording, tmp_path
):
    lines = []
    seq = run_replicates(Draws(7), 6, progress=lines.append)
    assert {r["pid"] for r in seq.values()} == {os.getpid()}  # in this process, without Dask
    assert list(seq) == list(range(6)) and len(lines) == 6 and "[6/6," in lines[-1]
    one = run_replicates(Draws(7), 6, scheduler=one_worker, progress=False)
    assert {r["pid"] for r in one.values()} != {os.getpid()}
    csv = tmp_path / "two.csv"
    got = []

    def save(key, res):
        got.append(key)
        write_sorted_csv(csv, {k: res[k] for k in ("rep", *VALUES)})

    two = run_replicates(Draws(7, sleep=0.3), 6, workers=2, on_result=save, progress=False)
    # two worker processes ran them, each building its set-up once for all its replicates
    pids = {r["pid"] for r in two.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    for pid in pids:
        assert len({r["built"] for r in two.values() if r["pid"] == pid}) == 1
    assert list(two) == list(range(6)) and sorted(got) == list(range(6))
    pd.testing.assert_frame_equal(_table(one), _table(seq))
    pd.testing.assert_frame_equal(_table(two), _table(seq))
    # the file written as results arrived is sorted: whatever the order they finished in
    pd.testing.assert_frame_equal(pd.read_csv(csv), _table(seq))
    # another seed gives other numbers (the comparison above could fail)
    assert not _table(run_replicates(Draws(8), 6, progress=False)).equals(_table(seq))
    # the embedded cluster: single-thread worker processes, shut down on return
    (c,) = recording
    assert c.kw["n_workers"] == 2 and c.kw["threads_per_worker"] == 1 and c.kw["processes"]
    assert c.closed


def test_an_interrupted_study_resumes_with_only_the_missing_replicates(one_worker, tmp_path):
    full_csv, csv = tmp_path / "full.csv", tmp_path / "run.csv"

    def saver(path):
        return lambda k, r: write_sorted_csv(path, {c: r[c] for c in ("rep", *VALUES)})

    run_replicates(Draws(3), 8, progress=False, on_result=saver(full_csv))
    # the first run stops at replicate 3 (an error here; Ctrl-C alike): 0-2 are saved
    with pytest.raises(RuntimeError, match="replicate 3 failed"):
        run_replicates(Draws(3, fail_at=3), 8, progress=False, on_result=saver(csv))
    assert list(pd.read_csv(csv)["rep"]) == [0, 1, 2]
    done = set(pd.read_csv(csv)["rep"])
    lines = []
    res = run_replicates(
        Draws(3), 8, done=done, scheduler=one_worker, progress=lines.append, on_result=saver(csv)
    )
    assert list(res) == [3, 4, 5, 6, 7]  # only the missing ones were computed
    assert "5 replicates to run on the Dask scheduler" in lines[0]
    assert "[4/8," in lines[1] and "[8/8," in lines[-1] and len(lines) == 6
    assert csv.read_bytes() == full_csv.read_bytes()
    # nothing left to do: nothing runs, no cluster starts
    assert run_replicates(Draws(3, fail_at=0), 8, done=range(8), workers=2) == {}


def test_a_replicate_error_on_a_cluster_is_raised_and_earlier_results_are_kept(one_worker):
    kept = []
    with pytest.raises(RuntimeError, match="replicate 2 failed"):
        run_replicates(Draws(1, fail_at=2), [0, 1, 2], scheduler=one_worker, progress=False,
                       on_result=lambda k, r: kept.append(k))  # fmt: skip
    assert 2 not in kept


def test_ctrl_c_shuts_the_local_cluster_down(recording):
    def stop(key, res):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_replicates(Draws(5, sleep=0.2), 4, workers=2, on_result=stop, progress=False)
    (c,) = recording
    assert c.closed


def test_keys_other_than_integers_and_results_in_key_order():
    keys = [(8, 1), (1, 0), (3, 2)]
    res = run_replicates(lambda k: k[0] * 10 + k[1], keys, progress=False)
    assert list(res.items()) == [((8, 1), 81), ((1, 0), 10), ((3, 2), 32)]


def test_write_sorted_csv_is_independent_of_the_completion_order(tmp_path):
    rows = [{"rep": r, "target": t, "x": r + i / 10} for r in range(5) for i, t in enumerate("pq")]
    files = []
    for order in ([0, 1, 2, 3, 4], [3, 0, 4, 2, 1]):
        p = tmp_path / f"{order[0]}.csv"
        for r in order:
            write_sorted_csv(p, [x for x in rows if x["rep"] == r])
        files.append(p.read_bytes())
    assert files[0] == files[1]
    assert list(pd.read_csv(tmp_path / "3.csv")["target"]) == list("pq") * 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"workers": 0}, r"workers=0 is not allowed"),
        ({"workers": -2}, r"workers=-2 is not allowed"),
        ({"workers": True}, r"workers=True is not allowed"),
        ({"workers": 2.0}, r"workers=2.0 is not allowed"),
        ({"workers": "2"}, r"workers='2' is not allowed"),
        ({"scheduler": "localhost:8786"}, r"scheduler='localhost:8786' is not a Dask"),
        ({"scheduler": 8786}, r"scheduler=8786 is not allowed"),
        ({"scheduler": "tcp://h:8786", "workers": 2}, r"workers=2 cannot be combined"),
        ({"progress": "yes"}, r"progress='yes' is not allowed"),
        ({"reps": -1}, r"reps=-1 is not allowed"),
        ({"reps": [1, 2, 1]}, r"reps holds a replicate key twice"),
        ({"reps": 3.5}, r"reps=3.5 is not allowed"),
        ({"fn": 3}, r"fn=3 is not callable"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = {"fn": Draws(1), "reps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_replicates(args.pop("fn"), args.pop("reps"), **args)


def test_without_dask_one_worker_runs_and_a_cluster_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    assert run_replicates(lambda r: r * r, 3, progress=False) == {0: 0, 1: 1, 2: 4}
    with pytest.raises(ImportError, match=r"netbayes\[sim\]"):
        run_replicates(lambda r: r, 3, workers=2, progress=False)
    with pytest.raises(ImportError, match=r"netbayes\[sim\]"):
        run_replicates(lambda r: r, 3, scheduler="tcp://127.0.0.1:1", progress=False)


def test_command_line_flags():
    ap = add_runner_arguments(argparse.ArgumentParser())
    a = ap.parse_args(["--workers", "3", "--scheduler", "tcp://10.0.0.1:8786"])
    assert (a.workers, a.scheduler) == (3, "tcp://10.0.0.1:8786")
    assert (ap.parse_args([]).workers, ap.parse_args([]).scheduler) == (None, None)
    for bad in (["--workers", "0"], ["--workers", "two"], ["--scheduler", "host:8786"]):
        with pytest.raises(SystemExit):
            ap.parse_args(bad)


def test_cores_per_task(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert cores_per_task(4) == 4 and cores_per_task(4, 1) == 4  # in-process: unchanged
    assert cores_per_task(4, 2) == 4 and cores_per_task(4, 4) == 2 and cores_per_task(4, 16) == 1
    assert cores_per_task(4, scheduler="tcp://h:1") == 1


def test_worker_cache_builds_once_per_key():
    runner.clear_worker_cache()
    calls = []
    make = lambda: calls.append(1) or random.random()  # noqa: E731
    a, b = worker_cache("k", make), worker_cache("k", make)
    assert a == b and len(calls) == 1
    worker_cache("other", make)
    assert len(calls) == 2
    runner.clear_worker_cache()
    worker_cache("k", make)
    assert len(calls) == 3


@pytest.mark.slow
def test_nutpie_draws_do_not_depend_on_the_cores():
    """Each fit of a study on several workers gets fewer cores (``cores_per_task``): nutpie
    seeds every chain from the fit's seed, so the draws are the same on 1 core as on 2, and a
    compiled model reused with other data first gives what a fresh one gives."""
    pm = pytest.importorskip("pymc")
    nutpie = pytest.importorskip("nutpie")

    with pm.Model() as m:
        y = pm.Data("y", np.array([0.3, 1.2, -0.5]))
        mu = pm.Normal("mu", 0, 1)
        pm.Normal("obs", mu, 1, observed=y)
    compiled = nutpie.compile_pymc_model(m, freeze_model=False)

    def draws(c, cores, seed=5):
        t = nutpie.sample(c, draws=30, tune=30, chains=2, cores=cores, seed=seed,
                          progress_bar=False)  # fmt: skip
        return t["posterior"].dataset["mu"].to_numpy()

    two = draws(compiled, 2)
    np.testing.assert_array_equal(draws(compiled, 1), two)
    assert not np.array_equal(draws(compiled, 2, seed=6), two)  # the seed does matter
    other = compiled.with_data(y=np.array([3.0, 2.0, 4.0]))
    assert draws(other, 1).mean() > two.mean() + 1  # the new data were used
    np.testing.assert_array_equal(draws(compiled, 1), two)  # and left no state behind
