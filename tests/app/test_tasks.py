"""essop.app.tasks: configurations as tasks with cached results — in this process (no Ray), or on a local Ray
instance: a 2-task sweep of 2 x 2 arrays, then the same sweep again served from the cache (a stopped sweep
resumes), and a stopped sweep that finishes only the missing task."""
import json
import subprocess
import sys

import pytest

from essop.app.synth_commands import synth_tasks
from essop.app import tasks as tasks_module
from essop.app.tasks import RESULT_FILE, CachedTask, run_cached, run_tasks
from essop.config import EssopConfig
from essop.synth.libraries import library

CALLS = []


def _square(x):
    CALLS.append(x)
    return {"x": x, "square": x * x}


def test_cached_task_resumes(tmp_path):
    CALLS.clear()
    tasks = [CachedTask(_square, (i,), str(tmp_path / f"p{i}"), {"i": i}) for i in range(3)]
    # A sweep stopped after its first point: only that point has a result.
    assert run_cached(tasks[0]) == ({"x": 0, "square": 0}, False)
    assert run_tasks(tasks) == [({"x": 0, "square": 0}, True), ({"x": 1, "square": 1}, False),
                                ({"x": 2, "square": 4}, False)]
    assert CALLS == [0, 1, 2]
    # A stored result under another key (another configuration, other code) is recomputed, not reused.
    moved = CachedTask(_square, (5,), str(tmp_path / "p1"), {"i": 5})
    assert run_cached(moved) == ({"x": 5, "square": 25}, False)
    assert json.loads((tmp_path / "p1" / RESULT_FILE).read_text())["key"] == {"i": 5}
    # A damaged result file is computed again.
    (tmp_path / "p2" / RESULT_FILE).write_text("{trunc")
    assert run_cached(tasks[2]) == ({"x": 2, "square": 4}, False)
    assert CALLS == [0, 1, 2, 5, 2]


def test_plain_path_needs_no_ray(tmp_path):
    # With Ray unimportable the single-process path runs, and --workers says what is missing.
    code = ("import sys; sys.modules['ray'] = None\n"
            "from essop.app.tasks import CachedTask, run_tasks\n"
            "t = [CachedTask(divmod, (7, 2), sys.argv[1], {'k': 1})]\n"
            "assert run_tasks(t) == [((3, 1), False)]\n"
            "try:\n    run_tasks(t, workers=2)\nexcept RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t")], capture_output=True, text=True,
                         check=True).stdout
    assert "--workers and --ray-address run tasks on Ray, which is not installed" in out


def test_ray_that_does_not_start_is_a_one_line_error(tmp_path, monkeypatch):
    # Ray raises a bare Exception with a paragraph when its node times out (seen on a loaded 2-core machine);
    # the CLI turns OSError into one line and exit status 2.
    class NoStartRay:
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kwargs):
            raise Exception("The current node timed out during startup. This could happen because ...\nmore")

    monkeypatch.setattr(tasks_module, "_ray", lambda: NoStartRay)
    t = [CachedTask(divmod, (7, 2), str(tmp_path / "t"), {"k": 1})]
    with pytest.raises(OSError) as info:
        run_tasks(t, workers=1)
    message = str(info.value)
    assert message.startswith("Ray did not start locally: The current node timed out during startup.")
    assert "\n" not in message
    with pytest.raises(OSError, match="Ray did not start at ray://nowhere:1: "):
        run_tasks(t, ray_address="ray://nowhere:1")
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_ray_two_task_sweep_and_resume(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is pinned in requirements.txt")
    cfgs = [EssopConfig(rows=2, cols=2, bl=4, sharing=s) for s in ("shared", "per_element")]
    tasks = synth_tasks([library("nangate15")], cfgs, [], 0, tmp_path)
    assert [t.label for t in tasks] == [f"essop {c.name}" for c in cfgs]
    assert len({t.build_dir for t in tasks}) == 2          # each configuration its own build folder
    finished = []
    first = run_tasks(tasks, workers=2, done=lambda t, row, cached: finished.append((t.label, cached)))
    assert not ray.is_initialized()                      # the local instance is shut down after the sweep
    assert sorted(finished) == sorted((t.label, False) for t in tasks)
    for (row, cached), cfg in zip(first, cfgs):
        assert not cached
        assert (row["design"], row["rows"], row["cols"], row["bl"], row["sharing"]) == \
            ("essop", 2, 2, 4, cfg.sharing)
        assert row["area_um2"] > 0 and row["flop_check"] == 1.0 and type(row["n_cells"]) is int
    # Per-element generators cost area: the two tasks really ran their own configurations.
    assert first[1][0]["periphery_area_um2"] > first[0][0]["periphery_area_um2"]
    # The same sweep again: every result comes from the cache, identical, nothing recomputed.
    again = run_tasks(tasks, workers=2)
    assert [cached for _, cached in again] == [True, True]
    assert [row for row, _ in again] == [row for row, _ in first]
    # The plain path reads the same cache.
    assert run_tasks(tasks) == again
