"""Running a command's configurations as tasks: one after another here, or as Ray tasks.

Every configuration of `essop synth` and `essop sweep` is a ``CachedTask``: a module-level function, its
arguments, the configuration's own build folder, and a key (everything its result depends on, code included).
A task first looks for ``task_result.json`` in its build folder: if the key stored there is its key, the result is
read back, not recomputed. So a stopped sweep, run again, resumes where it stopped, and the build folders
(Yosys netlists, cocotb builds) are each task's own.

``run_tasks`` runs the tasks

- in this process, in order, when neither ``workers`` nor ``ray_address`` is given (Ray is not imported);
- on a local Ray instance with ``workers`` CPUs (``essop synth --workers N``);
- on a running Ray cluster (``--ray-address ADDR``, e.g. ``ray://head:10001`` or ``auto``). Its nodes need the
  essop package installed (``pip install -e .`` of the same commit) and the build folder on storage that every
  node and this machine share, so that results and caches are found again.

Ray is imported only on those two paths, and a missing Ray is one clear error.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["CachedTask", "run_cached", "run_tasks", "code_fingerprint", "add_task_arguments", "RESULT_FILE"]

#: The file in a task's build folder that holds its key and result.
RESULT_FILE = "task_result.json"


@dataclass(frozen=True)
class CachedTask:
    func: Callable[..., Any]
    """A module-level function (Ray sends it to the workers by reference)."""
    args: tuple
    build_dir: str
    """This task's own folder: its result file, and what ``func`` builds, live there."""
    key: dict
    """JSON-able: everything the result depends on. A result stored with another key is recomputed."""
    label: str = ""


def code_fingerprint(packages) -> str:
    """A hash of the Python sources of ``packages`` (package modules): a change to the code that computes a
    result makes its cached copy stale."""
    h = hashlib.sha256()
    for package in packages:
        folder = Path(package.__file__).parent
        for path in sorted(folder.glob("*.py")) + sorted(folder.glob("*/*.py")):
            h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _canonical(key: dict) -> str:
    return json.dumps(key, sort_keys=True)


def _plain(value):
    # NumPy scalars in a result (e.g. a statistic) are written as the Python numbers they hold.
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {value!r} ({type(value).__name__}) in {RESULT_FILE}")


def run_cached(task: CachedTask) -> tuple[Any, bool]:
    """(The task's result, whether it came from its build folder's cache)."""
    folder = Path(task.build_dir)
    stored = folder / RESULT_FILE
    if stored.exists():
        try:
            data = json.loads(stored.read_text())
            if _canonical(data["key"]) == _canonical(task.key):
                return data["result"], True
        except (ValueError, KeyError):
            pass   # a damaged or older file: compute again
    result = task.func(*task.args)
    folder.mkdir(parents=True, exist_ok=True)
    # Written whole, then renamed: a task stopped midway leaves no result file that looks complete.
    tmp = folder / (RESULT_FILE + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": task.key, "result": result}, indent=1, default=_plain))
    tmp.replace(stored)
    return result, False


def _ray():
    try:
        import ray
    except ImportError as e:   # pragma: no cover - depends on the environment
        raise RuntimeError("--workers and --ray-address run tasks on Ray, which is not installed "
                           "(pip install -r requirements.txt)") from e
    return ray


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def run_tasks(tasks: list[CachedTask], *, workers: int | None = None, ray_address: str | None = None,
              done: Callable[[CachedTask, Any, bool], None] | None = None) -> list[tuple[Any, bool]]:
    """Every task's (result, cached), in the order of ``tasks``; ``done(task, result, cached)`` is called as
    each one finishes (in completion order on Ray)."""
    if workers is None and ray_address is None:
        out = []
        for t in tasks:
            out.append(run_cached(t))
            if done:
                done(t, *out[-1])
        return out
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers!r}")
    ray = _ray()
    # No usage reports, no dashboard: a local instance here is a process pool with a scheduler.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        try:
            if ray_address is not None:
                ray.init(address=ray_address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                         object_store_memory=100 * 1024 * 1024)
        except Exception as exc:   # Ray raises a bare Exception when its node does not come up in time
            where = f"at {ray_address}" if ray_address is not None else "locally"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OSError(f"Ray did not start {where}: {first} (a heavily loaded machine can time it out; "
                          "without --workers and --ray-address the configurations run in this process)") from None
    # A sweep stopped with SIGTERM (kill PID) goes through `finally` like Ctrl-C, so that the local Ray
    # instance is shut down; finished tasks have their results in their build folders, and the next run
    # resumes from them.
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_cached)
        pending = {remote.remote(t): i for i, t in enumerate(tasks)}
        out: list[tuple[Any, bool] | None] = [None] * len(tasks)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            out[i] = ray.get(ready[0])
            if done:
                done(tasks[i], *out[i])
        return out
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if started:
            ray.shutdown()


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """--workers / --ray-address: run the configurations as Ray tasks (essop.app.tasks)."""
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="run the configurations as tasks on a local Ray instance with N CPUs (default: one "
                             "after another in this process, without Ray)")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="run the configurations on an existing Ray cluster (e.g. ray://head:10001); its "
                             "nodes need essop installed and the build folder shared")
