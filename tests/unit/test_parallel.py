"""tbrewrite.parallel: results in order, progress as tasks finish, failures and signals.

The worker-side task functions live in :mod:`support.parallel_tasks` (spawned workers import
them by name). Tests about what reaches stderr run a tiny script in a subprocess, as only
there can the workers' stderr be captured.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.parallel_tasks import Task, child_processes, run
from tbrewrite.errors import InputError, TbRewriteError
from tbrewrite.parallel import map_ordered

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"
REPETITIONS = 20


@pytest.fixture
def no_leftover_workers() -> Iterator[None]:
    """Fail if the test leaves a child process (worker, or zombie of one) behind."""
    before = child_processes(os.getpid())
    yield
    assert child_processes(os.getpid()) - before == set()


def ignore(index: int, result: Any) -> None:
    """A ``done`` callback that does nothing."""


def raises_within(seconds: float, error: type[BaseException], call: Callable[[], Any]) -> BaseException:
    start = time.monotonic()
    with pytest.raises(error) as caught:
        call()
    assert time.monotonic() - start < seconds
    return caught.value


# --- results and progress -------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftover_workers")
def test_results_in_task_order_and_done_fires_as_each_task_finishes() -> None:
    tasks = [Task(value="slow", delay=3.0)] + [Task(value=i, delay=0.01 * (i % 3)) for i in range(1, 10)]
    calls: list[tuple[int, Any, float, int]] = []

    def done(index: int, result: Any) -> None:
        calls.append((index, result, time.monotonic(), os.getpid()))

    results = map_ordered(run, tasks, 3, done)

    assert results == ["slow", *range(1, 10)]
    assert sorted(index for index, *_ in calls) == list(range(10))
    assert all(result == results[index] for index, result, *_ in calls)
    assert {pid for *_, pid in calls} == {os.getpid()}  # in the parent
    finished = {index: at for index, _, at, _ in calls}
    # The fast tasks were reported while the slow one was still sleeping, not all at the end.
    assert max(at for index, at in finished.items() if index != 0) < finished[0] - 2.0
    assert calls[-1][0] == 0


def test_one_job_or_one_task_runs_in_this_process() -> None:
    here = os.getpid()
    assert map_ordered(run, [Task(special="pid")] * 3, 1, ignore) == [here] * 3
    assert map_ordered(run, [Task(special="pid")], 4, ignore) == [here]
    assert map_ordered(run, [], 4, ignore) == []


@pytest.mark.usefixtures("no_leftover_workers")
def test_tasks_run_in_jobs_worker_processes() -> None:
    pids = map_ordered(run, [Task(special="pid", delay=0.2)] * 6, 2, ignore)
    assert os.getpid() not in pids
    assert len(set(pids)) == 2


# --- a failing task -------------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftover_workers")
def test_failing_task_raises_its_error_and_stops_the_others(tmp_path: Path) -> None:
    for attempt in range(3):
        partial = tmp_path / f"partial{attempt}"
        tasks = [Task(value=i, delay=0.02) for i in range(12)]
        started = str(tmp_path / f"started{attempt}")
        tasks[1] = Task(partial=str(partial), started=started, delay=60)
        tasks[7] = Task(delay=0.05, wait_for=started, error=InputError(f"run{attempt}: not a Keras log_dir"))
        error = raises_within(35, InputError, lambda: map_ordered(run, tasks, 3, ignore))
        assert type(error) is InputError and str(error) == f"run{attempt}: not a Keras log_dir"
        assert "parallel_tasks.py" in str(error.__cause__)  # the worker's traceback
        # The long task was stopped (SIGTERM) and removed its partial output on the way out.
        assert (tmp_path / f"started{attempt}").exists() and not partial.exists()


@pytest.mark.usefixtures("no_leftover_workers")
def test_os_error_arrives_whole() -> None:
    tasks = [Task(value=i) for i in range(4)]
    tasks[3] = Task(error=FileNotFoundError(2, "No such file or directory", "/nowhere/run3"))
    error = raises_within(5, FileNotFoundError, lambda: map_ordered(run, tasks, 2, ignore))
    assert isinstance(error, FileNotFoundError)
    assert (error.errno, error.strerror, error.filename) == (2, "No such file or directory", "/nowhere/run3")


@pytest.mark.usefixtures("no_leftover_workers")
def test_unpicklable_error_or_result_becomes_tbrewrite_error() -> None:
    tasks = [Task(value=0), Task(special="unpicklable-error")]
    error = raises_within(5, TbRewriteError, lambda: map_ordered(run, tasks, 2, ignore))
    assert type(error) is TbRewriteError and str(error) == "this error holds a lambda"
    tasks = [Task(value=0), Task(special="unpicklable-result")]
    error = raises_within(5, TbRewriteError, lambda: map_ordered(run, tasks, 2, ignore))
    assert str(error).startswith("the task's result cannot be pickled")


@pytest.mark.usefixtures("no_leftover_workers")
def test_error_in_done_stops_the_workers(tmp_path: Path) -> None:
    tasks = [Task(value=0), Task(value=1, delay=0.5), Task(partial=str(tmp_path / "partial"), delay=60)]

    def done(index: int, result: Any) -> None:
        raise ValueError("progress display failed")

    raises_within(5, ValueError, lambda: map_ordered(run, tasks, 3, done))
    assert not (tmp_path / "partial").exists()


QUIET_FAILURES = """
import json, os, sys, time
from support.parallel_tasks import Task, child_processes, run
from tbrewrite.errors import InputError
from tbrewrite.parallel import map_ordered

times = []
for rep in range(int(sys.argv[1])):
    bad = rep % 12
    # Results of 64 KiB: workers are often writing one when they are stopped.
    tasks = [Task(value=b"x" * 65536, delay=0.01 * (i % 4)) for i in range(12)]
    if rep % 2:
        tasks[bad] = Task(delay=0.02, error=InputError(f"run{bad}: bad input"))
    else:
        tasks[bad] = Task(delay=0.02, error=FileNotFoundError(2, "No such file or directory", f"run{bad}"))
    start = time.monotonic()
    try:
        map_ordered(run, tasks, 3, lambda i, r: None)
    except (InputError, FileNotFoundError) as e:
        expected = f"run{bad}: bad input" if rep % 2 else f"[Errno 2] No such file or directory: 'run{bad}'"
        assert str(e) == expected, (str(e), expected)
    else:
        raise AssertionError("no error raised")
    times.append(time.monotonic() - start)
    left = child_processes(os.getpid())
    assert not left, left
print(json.dumps(times))
"""


def run_script(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter that imports ``support`` and ``tbrewrite``; a
    hang is killed (with its process group) and fails the test."""
    proc = start_script(script, *args)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the script hung (killed after {timeout} s)")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def start_script(script: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(SRC)]))
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def test_failing_worker_raises_fast_and_prints_nothing_over_many_runs() -> None:
    result = run_script(QUIET_FAILURES, str(REPETITIONS), timeout=120)
    assert result.stderr == ""
    assert result.returncode == 0
    times = json.loads(result.stdout)
    assert len(times) == REPETITIONS
    assert max(times) < 5.0, times


# --- a worker that dies ---------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftover_workers")
def test_worker_killed_by_sigkill_is_an_error_naming_its_task(tmp_path: Path) -> None:
    tasks = [Task(value=i, delay=0.05) for i in range(8)]
    tasks[2] = Task(delay=0.1, kill=signal.SIGKILL)
    tasks[4] = Task(partial=str(tmp_path / "partial"), delay=60)
    error = raises_within(5, TbRewriteError, lambda: map_ordered(run, tasks, 3, ignore))
    assert type(error) is TbRewriteError
    message = str(error)
    assert message.startswith("worker process ") and message.endswith(" died (signal 9, SIGKILL) while running task 2")
    assert not (tmp_path / "partial").exists()


@pytest.mark.usefixtures("no_leftover_workers")
def test_worker_stopped_by_sigterm_unwinds_and_is_an_error(tmp_path: Path) -> None:
    tasks = [Task(value=i, delay=0.05) for i in range(4)]
    tasks[1] = Task(partial=str(tmp_path / "partial"), delay=0.1, kill=signal.SIGTERM)
    error = raises_within(5, TbRewriteError, lambda: map_ordered(run, tasks, 2, ignore))
    assert str(error).endswith(" died (exit code 143) while running task 1")
    assert not (tmp_path / "partial").exists()


@pytest.mark.usefixtures("no_leftover_workers")
def test_sigterm_landing_in_a_finalizer_still_stops_the_worker_quietly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Python swallows (and prints) an exception raised in a __del__; the worker raises it again.
    tasks = [Task(value=0, delay=0.05), Task(partial=str(tmp_path / "partial"), special="sigterm-in-finalizer")]
    error = raises_within(5, TbRewriteError, lambda: map_ordered(run, tasks, 2, ignore))
    assert str(error).endswith(" died (exit code 143) while running task 1")
    assert not (tmp_path / "partial").exists()
    assert capfd.readouterr().err == ""  # the workers write to this process's fd 2


# --- signals to the parent ------------------------------------------------------------------


STOPPED_FROM_OUTSIDE = """
import signal, sys
from pathlib import Path
from support.parallel_tasks import Task, run
from tbrewrite.errors import Terminated
from tbrewrite.parallel import map_ordered

def terminate(signum, frame):
    raise Terminated()

signal.signal(signal.SIGTERM, terminate)  # as the CLI does
signal.signal(signal.SIGINT, signal.default_int_handler)  # not inherited ignored
work = Path(sys.argv[1])
tasks = [Task(started=str(work / f"started{i}"), partial=str(work / f"partial{i}"), delay=60) for i in range(3)]
try:
    map_ordered(run, tasks, 3, lambda i, r: None)
except Terminated:
    print("terminated")
    sys.exit(143)
except KeyboardInterrupt:
    print("interrupted")
    sys.exit(130)
"""


Sender = Callable[[subprocess.Popen[str]], None]


def stop_from_outside(tmp_path: Path, send: Sender) -> tuple[subprocess.CompletedProcess[str], list[int], float]:
    """Start :data:`STOPPED_FROM_OUTSIDE`, wait until its 3 workers run their tasks, ``send``
    it a signal; return its result, the workers' pids and how long it took to exit."""
    proc = start_script(STOPPED_FROM_OUTSIDE, str(tmp_path))
    started = [tmp_path / f"started{i}" for i in range(3)]
    deadline = time.monotonic() + 60
    while not all(p.exists() and p.read_text() for p in started):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    workers = [int(p.read_text()) for p in started]
    sent = time.monotonic()
    send(proc)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the script hung after the signal")
    took = time.monotonic() - sent
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), workers, took


def assert_gone(pids: list[int], tmp_path: Path) -> None:
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} still exists"
    assert sorted(p.name for p in tmp_path.glob("partial*")) == []


def test_sigterm_to_the_parent_raises_terminated_and_stops_the_workers(tmp_path: Path) -> None:
    result, workers, took = stop_from_outside(tmp_path, lambda proc: proc.send_signal(signal.SIGTERM))
    assert (result.returncode, result.stdout, result.stderr) == (143, "terminated\n", "")
    assert took < 10
    assert_gone(workers, tmp_path)


def test_ctrl_c_to_the_process_group_raises_keyboard_interrupt_in_the_parent_only(tmp_path: Path) -> None:
    result, workers, took = stop_from_outside(tmp_path, lambda proc: os.killpg(proc.pid, signal.SIGINT))
    assert (result.returncode, result.stdout, result.stderr) == (130, "interrupted\n", "")
    assert took < 10
    assert_gone(workers, tmp_path)


def test_worker_count_starts_only_workers_that_pay_off() -> None:
    from tbrewrite.parallel import WORKER_MIN_BYTES, worker_count

    mb = 1 << 20
    assert worker_count([400 * mb], 8) == 1  # one task
    assert worker_count([29 * mb, 60_000], 2) == 1  # one run holds nearly everything
    assert worker_count([10 * mb, 10 * mb], 2) == 1  # too little to repay a start
    assert worker_count([100 * mb] * 4, 2) == 2
    assert worker_count([100 * mb] * 4, 1) == 1
    assert worker_count([15_000] * 1000, 2) == 2  # many small runs: their overhead is the work
    assert worker_count([WORKER_MIN_BYTES] * 3, 8) == 3
