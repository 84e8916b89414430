"""`essop campaign` on tiny synthetic data: the plan, a row stopped early and continued, every row finished,
the table and plots, each finished row evaluated with recomputed BatchNorm statistics, a second run that
skips everything but a missing evaluation, the report regenerated without the run folders,
SIGTERM forwarded to the running row, the lock against a second campaign, --background, a failing row among
others (two at once), bad protocols."""
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from essop.training.evaluation import Evaluation, correct_images
from training_fixtures import write_batches

TINY = Path(__file__).with_name("tiny_protocol.json")
ROWS = ("fp32-s0", "fp32-s1", "essop-per_pair-bl8", "essop-block-bl8")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _essop(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "essop.app", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _campaign_args(tmp_path, protocol=TINY):
    data = tmp_path / "data"
    if not data.exists():
        write_batches(data, n_train=64, n_test=40)
    return ["campaign", protocol, "--runs-dir", tmp_path / "runs", "--report-dir", tmp_path / "report",
            "--data", data, "--cache-dir", tmp_path / "cache", "--threads", "1"]


def _plan(tmp_path, protocol=TINY) -> dict[str, tuple[str, str]]:
    """row -> (status, progress and where it was read: "runs" or "report", `essop train` arguments) from
    --dry-run."""
    res = _essop(*_campaign_args(tmp_path, protocol), "--dry-run")
    assert res.returncode == 0, res.stderr
    plan = {}
    for line in res.stdout.splitlines():
        head, command = line.split("essop train ")
        name, status, progress, _, where = head.split()
        plan[name] = (f"{status} {progress} {where}", command)
    return plan


def _table_rows(md: str, table: int = 0) -> list[list[str]]:
    """The cells of the rows of the report's `table`-th markdown table, without its header."""
    tables, inside = [], False
    for ln in md.splitlines():
        if ln.startswith("| "):
            if not inside:
                tables.append([])
            tables[-1].append(ln)
        inside = ln.startswith("|")
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in tables[table][1:]]


def test_campaign_end_to_end(tmp_path):
    runs, report = tmp_path / "runs" / "tiny", tmp_path / "report" / "tiny"

    # The plan: every row pending with its exact command; nothing is run or written.
    plan = _plan(tmp_path)
    assert list(plan) == list(ROWS)
    assert all(status == "pending 0/2 runs" for status, _ in plan.values())
    assert "--mode essop --scaling block --bl 8" in plan["essop-block-bl8"][1]
    assert f"--out {runs / 'essop-per_pair-bl8'} --resume auto --no-progress" in plan["essop-per_pair-bl8"][1]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "report").exists()
    only = _essop(*_campaign_args(tmp_path), "--dry-run", "--rows", "fp32-s1")
    assert only.returncode == 0 and [ln.split()[0] for ln in only.stdout.splitlines()] == ["fp32-s1"]
    # --rows also sets the order the rows run in (a name given twice runs once).
    some = _essop(*_campaign_args(tmp_path), "--dry-run", "--rows", "essop-block-bl8", "fp32-s0", "essop-block-bl8")
    assert some.returncode == 0 and [ln.split()[0] for ln in some.stdout.splitlines()] == ["essop-block-bl8",
                                                                                           "fp32-s0"]

    # One row stopped early by hand with the plan's own command: one epoch of two done, then mid-epoch.
    cut = _essop("train", *shlex.split(plan["essop-per_pair-bl8"][1]), "--stop-after-steps", "3")
    assert cut.returncode == 0, cut.stderr
    first_epoch = json.loads((runs / "essop-per_pair-bl8" / "log.json").read_text())
    assert len(first_epoch) == 1
    assert _plan(tmp_path)["essop-per_pair-bl8"][0] == "partial 1/2 runs"

    res = _essop(*_campaign_args(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[3/4] essop-per_pair-bl8: continue at 1/2 epochs" in res.stdout
    for i, name in enumerate(ROWS, 1):
        assert re.search(rf"^\[{i}/4\] {name}: epoch 2/2, test [0-9.]+ %, [0-9.]+ min$", res.stdout, re.M), res.stdout
        assert f"[{i}/4] {name}: done, final test" in res.stdout
        assert re.search(rf"^\[{i}/4\] {name}: BatchNorm statistics recomputed: test [0-9.]+ % \(with its own "
                         rf"[0-9.]+ %\)$", res.stdout, re.M), res.stdout
        summary = json.loads((runs / name / "summary.json").read_text())
        assert summary["stopped"] is None and summary["epochs_done"] == summary["epochs"] == 2
    # Continued, not started again: its first epoch (wall time included) is the one written before.
    continued = json.loads((runs / "essop-per_pair-bl8" / "log.json").read_text())
    assert len(continued) == 2 and continued[0] == first_epoch[0]

    # The table: four rows with numbers, gaps against the fp32 mean, the fp32 spread line.
    md = (report / "table.md").read_text()
    rows = _table_rows(md)
    assert [r[0] for r in rows] == list(ROWS)
    for r in rows:
        assert r[6] == "2/2" and r[-1] == "done" and r[-2] == "cpu"
        final, best, gap, ci, bn, loss, wall = map(float, r[7:14])
        assert 0 <= final <= best <= 100 and 0 <= bn <= 100 and wall >= 0 and abs(gap) <= 100 and ci >= 0
        assert 0 < loss < 10
    assert rows[0][1:6] == ["fp32", "-", "-", "-", "-"]
    assert rows[3][1:6] == ["essop", "block", "shared", "lfsr", "8"]
    table = json.loads((report / "table.json").read_text())
    finals = {r["row"]: r["final_test_acc"] for r in table["rows"]}
    for r in table["rows"]:
        log = json.loads((runs / r["row"] / "log.json").read_text())
        assert r["final_test_acc"] == pytest.approx(100 * log[-1]["test_acc"])
        assert r["final_train_loss"] == log[-1]["train_loss"]
        evaluation = json.loads((runs / r["row"] / "eval.json").read_text())
        assert (evaluation["weights"], evaluation["epoch"], evaluation["step"]) == ("model.pt", 2, 0)
        assert evaluation["test_acc"] == log[-1]["test_acc"]       # the same weights and statistics as the log's
        assert r["bn_test_acc"] == pytest.approx(100 * evaluation["bn_test_acc"])
    # compare_to: every other finished row against essop-per_pair-bl8, test image by test image.
    ref = correct_images(Evaluation(**json.loads((runs / "essop-per_pair-bl8" / "eval.json").read_text())))
    compared = table["compared"]
    assert compared["reference"] == "essop-per_pair-bl8"
    assert [c["row"] for c in compared["rows"]] == [r for r in ROWS if r != "essop-per_pair-bl8"]
    losses = {r["row"]: r["final_train_loss"] for r in table["rows"]}
    # Each against the reference configuration's row of its own seed; this protocol has only seed 0's.
    assert [(c["against"], c["same_seed"]) for c in compared["rows"]] == [
        ("essop-per_pair-bl8", True), ("essop-per_pair-bl8", False), ("essop-per_pair-bl8", True)]
    for c in compared["rows"]:
        mine = correct_images(Evaluation(**json.loads((runs / c["row"] / "eval.json").read_text())))
        d = mine.astype(float) - ref
        assert c["diff_pp"] == pytest.approx(finals[c["row"]] - finals["essop-per_pair-bl8"])
        assert c["diff_pp"] == pytest.approx(100 * d.mean())
        assert c["ci_pp"] == pytest.approx(1.96 * 100 * d.std(ddof=1) / np.sqrt(len(d)))
        assert c["train_loss_diff"] == pytest.approx(losses[c["row"]] - losses["essop-per_pair-bl8"])
    assert f"| fp32-s0 | essop-per_pair-bl8 | {compared['rows'][0]['diff_pp']:+.2f} |" in md
    assert f"| fp32-s1 | essop-per_pair-bl8 (other seed) | {compared['rows'][1]['diff_pp']:+.2f} |" in md
    # The gap's interval pairs each test image's result with the fp32 rows' on it.
    correct = {r["row"]: correct_images(Evaluation(**json.loads((runs / r["row"] / "eval.json").read_text())))
               for r in table["rows"]}
    reference = (correct["fp32-s0"].astype(float) + correct["fp32-s1"]) / 2
    for r in table["rows"]:
        d = correct[r["row"]] - reference
        assert 100 * d.mean() == pytest.approx(r["gap_pp"])
        assert r["gap_ci_pp"] == pytest.approx(1.96 * 100 * d.std(ddof=1) / len(d) ** 0.5)
    mean = (finals["fp32-s0"] + finals["fp32-s1"]) / 2
    spread = abs(finals["fp32-s0"] - finals["fp32-s1"])
    assert table["fp32"]["mean_test_acc"] == pytest.approx(mean)
    assert table["fp32"]["spread_pp"] == pytest.approx(spread)
    assert all(r["gap_pp"] == pytest.approx(r["final_test_acc"] - mean) for r in table["rows"])
    assert f"spread (max - min) {spread:.2f} pp" in md and f"mean final test accuracy {mean:.2f} %" in md
    # Seeds of one configuration (the rows' options but the seed) are grouped; a configuration of one row is not.
    assert table["seeds"] == [{
        "configuration": "--mode fp32", "rows": ["fp32-s0", "fp32-s1"], "done_rows": ["fp32-s0", "fp32-s1"],
        "final_test_acc": [finals["fp32-s0"], finals["fp32-s1"]], "mean_test_acc": pytest.approx(mean),
        "spread_pp": pytest.approx(spread), "gap_pp": pytest.approx(0.0)}]
    assert _table_rows(md, 1) == [["`--mode fp32`", "fp32-s0, fp32-s1", "2/2",
                                   f"{finals['fp32-s0']:.2f}, {finals['fp32-s1']:.2f}", f"{mean:.2f}", f"{spread:.2f}",
                                   "+0.00"]]

    # Plots, the rows' small files, and never a checkpoint or weights.
    for png in ("accuracy_vs_epoch.png", "gap_vs_bl.png"):
        assert (report / png).read_bytes().startswith(PNG_MAGIC)
    for name in ROWS:
        assert sorted(p.name for p in (report / name).iterdir()) == ["config.json", "eval.json", "log.csv",
                                                                     "log.json", "summary.json"]
        assert (report / name / "log.json").read_text() == (runs / name / "log.json").read_text()
    assert not [p for p in report.rglob("*") if p.suffix == ".pt"]

    # A second campaign runs nothing: every row says it is done and skipped, and no run file changes.
    # ... except evaluating a finished row whose eval.json is missing (a run from before `essop evaluate`).
    (runs / "fp32-s1" / "eval.json").unlink()
    kept = [name for name in ROWS if name != "fp32-s1"]
    before = {name: [(runs / name / f).stat().st_mtime_ns for f in ("summary.json", "eval.json")] for name in kept}
    again = _essop(*_campaign_args(tmp_path))
    assert again.returncode == 0, again.stderr
    for i, name in enumerate(ROWS, 1):
        assert f"[{i}/4] {name}: done (2/2 epochs), skipped" in again.stdout
    assert " epoch " not in again.stdout and ": start" not in again.stdout
    assert [ln.split(":")[0] for ln in again.stdout.splitlines() if "recomputed" in ln] == ["[2/4] fp32-s1"]
    assert before == {name: [(runs / name / f).stat().st_mtime_ns for f in ("summary.json", "eval.json")]
                      for name in kept}
    assert json.loads((runs / "fp32-s1" / "eval.json").read_text())["epoch"] == 2
    md = (report / "table.md").read_text()

    # The report regenerates from its own copies where the run folders are not (another machine).
    (tmp_path / "runs").rename(tmp_path / "elsewhere")
    (report / "table.md").unlink()
    regen = _essop(*_campaign_args(tmp_path), "--report-only")
    assert regen.returncode == 0, regen.stderr
    assert (report / "table.md").read_text() == md

    # There (a fresh clone of the committed report), the rows the report holds as finished are not run again.
    assert {name: status for name, (status, _) in _plan(tmp_path).items()} == {name: "done 2/2 report"
                                                                               for name in ROWS}
    clone = _essop(*_campaign_args(tmp_path))
    assert clone.returncode == 0, clone.stdout + clone.stderr
    for i, name in enumerate(ROWS, 1):
        assert f"[{i}/4] {name}: done (2/2 epochs, in the report {report / name}), skipped" in clone.stdout
    assert ": start" not in clone.stdout and " recomputed" not in clone.stdout
    assert (report / "table.md").read_text() == md

    # ... unless the protocol has changed a row's options since: that row runs again, and until it has, the
    # report marks its old copy "outdated" (out of the fp32 reference and the gaps).
    edited = json.loads(TINY.read_text())
    edited["rows"][3]["bl"] = 16
    changed = tmp_path / "edited.json"
    changed.write_text(json.dumps(edited))
    plan = _plan(tmp_path, changed)
    assert plan["essop-block-bl8"][0] == "pending 0/2 runs"
    assert all(plan[name][0] == "done 2/2 report" for name in ROWS[:3])
    assert _essop(*_campaign_args(tmp_path, changed), "--report-only").returncode == 0
    rows = {r["row"]: r for r in json.loads((report / "table.json").read_text())["rows"]}
    assert rows["essop-block-bl8"]["status"] == "outdated" and rows["essop-block-bl8"]["bl"] == 8
    assert rows["essop-block-bl8"]["gap_pp"] is None and rows["essop-per_pair-bl8"]["gap_pp"] is not None
    assert [rows[name]["status"] for name in ROWS[:3]] == ["done"] * 3


def test_sigterm_stops_the_running_row_with_a_checkpoint(tmp_path):
    protocol = tmp_path / "long.json"
    protocol.write_text(json.dumps({"name": "long", "train": {"model": "resnet8", "epochs": 500, "batch-size": 32,
                                                                "subset": 64, "test-subset": 40},
                                    "rows": [{"name": "fp32", "mode": "fp32"}]}))
    args = [sys.executable, "-m", "essop.app", *map(str, _campaign_args(tmp_path, protocol))]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            if "epoch 1/500" in line:
                break
        # While it runs, a second campaign of the same protocol is refused.
        second = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "another `essop campaign`" in second.stderr
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:         # an assertion failed first: let the row checkpoint and stop
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "[1/1] fp32: stopped at" in out and "FAILED" not in out
    run = tmp_path / "runs" / "long" / "fp32"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == "SIGTERM" and 1 <= summary["epochs_done"] < 500
    assert (run / "checkpoint.pt").exists()
    assert "partial" in _essop(*_campaign_args(tmp_path, protocol), "--dry-run").stdout


def test_background_returns_at_once_and_finishes_in_its_log(tmp_path):
    protocol = tmp_path / "one.json"
    protocol.write_text(json.dumps({"name": "one", "train": {"model": "resnet8", "epochs": 1, "batch-size": 32,
                                                               "subset": 32, "test-subset": 20},
                                    "rows": [{"name": "fp32", "mode": "fp32"}]}))
    res = _essop(*_campaign_args(tmp_path, protocol), "--background", timeout=30)
    assert res.returncode == 0, res.stderr
    log = tmp_path / "runs" / "one" / "campaign.log"
    assert re.search(rf"pid \d+, log {re.escape(str(log))}", res.stdout), res.stdout
    deadline = time.monotonic() + 120
    while "finished now" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.5)
    text = log.read_text()
    assert "[1/1] fp32: done, final test" in text and "campaign one: 1 row(s) finished now" in text, text
    assert (tmp_path / "report" / "one" / "table.md").exists()


def test_a_failing_row_is_shown_and_the_others_still_run(tmp_path):
    protocol = tmp_path / "two.json"
    protocol.write_text(json.dumps({"name": "two", "train": {"epochs": 1, "batch-size": 32, "subset": 32,
                                                               "test-subset": 20},
                                    "rows": [{"name": "bad", "mode": "fp32", "model": "resnet8"},
                                             {"name": "good", "mode": "fp32", "model": "resnet8"}]}))
    # A row that fails when it runs (every option is checked before): its run folder's path is taken by a file.
    (tmp_path / "runs" / "two").mkdir(parents=True)
    (tmp_path / "runs" / "two" / "bad").write_text("not a run folder")
    res = _essop(*_campaign_args(tmp_path, protocol), "--parallel", "2")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "[1/2] bad: FAILED (exit status 2) at 0/1 epochs; its last output:" in res.stdout
    assert re.search(r"^    essop train: error: .*File exists", res.stdout, re.M), res.stdout  # the row's own error
    assert "[2/2] good: done, final test" in res.stdout and "(failed: bad)" in res.stdout
    rows = _table_rows((tmp_path / "report" / "two" / "table.md").read_text())
    assert [(r[0], r[-1]) for r in rows] == [("bad", "pending"), ("good", "done")]


@pytest.mark.parametrize("protocol, message", [
    ("{not json", "not valid JSON"),
    ({"name": "p", "rows": [{"name": "a", "mode": "fp32"}], "extra": 1}, "unknown key(s) 'extra'"),
    ({"name": "p"}, "no 'rows'"),
    ({"rows": [{"name": "a", "mode": "fp32"}]}, "no 'name'"),
    ({"name": "p", "rows": [{"name": "a", "mode": "fp32"}, {"name": "a", "mode": "essop"}]}, "duplicate row name 'a'"),
    ({"name": "p", "rows": [{"name": "a", "mode": "fp32", "model": "resnet9"}]},
     "row 'a': model must be one of resnet8, resnet20, resnet32, resnet44, resnet56, not 'resnet9'"),
    ({"name": "p", "rows": [{"name": "../a", "mode": "fp32"}]}, "unsafe row name (row 1) '../a'"),
    ({"name": "p", "rows": [{"name": "a", "seed": 1}]}, "row 'a' has no \"mode\""),
    ({"name": "p", "train": {"epochs": 2}, "rows": [{"name": "a", "mode": "fp32", "bogus": 1}]},
     "row 'a': unrecognized arguments: --bogus 1"),
    ({"name": "p", "train": {"epochs": 2, "out": "x"}, "rows": [{"name": "a", "mode": "fp32"}]},
     "option 'out' is set by the campaign"),
    ({"name": "p", "compare_to": "b", "rows": [{"name": "a", "mode": "fp32"}]},
     "\"compare_to\" must name a row of the protocol, not 'b'"),
])
def test_bad_protocol_is_one_line_and_exit_2(tmp_path, protocol, message):
    path = tmp_path / "bad.json"
    path.write_text(protocol if isinstance(protocol, str) else json.dumps(protocol))
    res = _essop("campaign", path, "--runs-dir", tmp_path / "runs", "--report-dir", tmp_path / "report")
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("essop campaign: error: "), res.stderr
    assert message in res.stderr, res.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "report").exists()


def test_a_row_names_its_random_number_source(tmp_path):
    # Rows that differ only in the source (LFSR, Sobol, Sobol with the per-pair shift, LFSR element words) stay
    # apart in the table: read from the protocol before a row runs, and from the run's own configuration after.
    protocol = tmp_path / "sources.json"
    protocol.write_text(json.dumps({"name": "sources", "train": {"model": "resnet8", "epochs": 1, "batch-size": 32,
                                                                  "subset": 32, "test-subset": 20},
                                    "rows": [{"name": "lfsr", "mode": "essop"},
                                             {"name": "sobol", "mode": "essop", "rng": "sobol"},
                                             {"name": "shifted", "mode": "essop", "rng": "sobol", "rng-shift": True},
                                             {"name": "words", "mode": "essop", "sharing": "per_element",
                                              "element-words": True},
                                             {"name": "expected", "mode": "expected", "rng": "sobol"}]}))
    expected = [("lfsr", "lfsr"), ("sobol", "sobol"), ("shifted", "sobol+shift"), ("words", "lfsr+words"),
                ("expected", "-")]     # no bitstreams, no source
    res = _essop(*_campaign_args(tmp_path, protocol), "--report-only")
    assert res.returncode == 0, res.stdout + res.stderr
    rows = _table_rows((tmp_path / "report" / "sources" / "table.md").read_text())
    assert [(r[0], r[4]) for r in rows] == expected
    res = _essop(*_campaign_args(tmp_path, protocol), "--rows", "words", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads((tmp_path / "runs" / "sources" / "words" / "config.json").read_text()
                      )["options"]["essop"]["element_words"] is True
    rows = _table_rows((tmp_path / "report" / "sources" / "table.md").read_text())
    assert [(r[0], r[4]) for r in rows] == expected and rows[3][-1] == "done"


def test_the_committed_protocols_plan(tmp_path):
    """Every protocol under protocols/ passes the campaign's checks and plans each of its rows (a typo in a
    committed protocol would otherwise surface hours into a campaign)."""
    protocols = sorted((Path(__file__).parents[2] / "protocols").glob("*.json"))
    assert protocols
    for protocol in protocols:
        rows = [r["name"] for r in json.loads(protocol.read_text())["rows"]]
        res = _essop("campaign", protocol, "--dry-run", "--runs-dir", tmp_path / "runs",
                     "--report-dir", tmp_path / "report")
        assert res.returncode == 0, res.stderr
        assert [ln.split()[0] for ln in res.stdout.splitlines()] == rows
        assert all(" pending " in ln for ln in res.stdout.splitlines())


def test_the_committed_reports_rows_are_not_run_again(tmp_path):
    """On a fresh clone every row that the committed report holds as finished reads as done from the report
    (its recorded options are the protocol's), so `make accuracy` there runs only the missing rows."""
    root = Path(__file__).parents[2]
    checked = 0
    for protocol in sorted((root / "protocols").glob("*.json")):
        name = json.loads(protocol.read_text())["name"]
        report = root / "docs" / "accuracy" / name
        if not (report / "table.json").exists():
            continue
        finished = {r["row"] for r in json.loads((report / "table.json").read_text())["rows"] if r["status"] == "done"}
        res = _essop("campaign", protocol, "--dry-run", "--runs-dir", tmp_path / "runs",
                     "--report-dir", root / "docs" / "accuracy")
        assert res.returncode == 0, res.stderr
        status = {ln.split()[0]: ln.split()[1] + " " + ln.split()[4] for ln in res.stdout.splitlines()}
        assert {row for row, s in status.items() if s == "done report"} == finished
        checked += len(finished)
    assert checked > 0


def test_seeds_of_one_configuration_are_grouped(tmp_path):
    # A row's configuration is its options but the seed; repeating a common option does not make another one,
    # and any other option does. A group with no finished row has no accuracy yet.
    protocol = tmp_path / "seeds.json"
    protocol.write_text(json.dumps({"name": "seeds", "train": {"epochs": 1, "seed": 0},
                                    "rows": [{"name": "a", "mode": "essop", "bl": 8},
                                             {"name": "b", "mode": "essop", "bl": 8, "seed": 3, "epochs": 1},
                                             {"name": "c", "mode": "essop", "bl": 8, "q": 6},
                                             {"name": "d", "mode": "fp32"}]}))
    res = _essop(*_campaign_args(tmp_path, protocol), "--report-only")
    assert res.returncode == 0, res.stdout + res.stderr
    report = tmp_path / "report" / "seeds"
    seeds = json.loads((report / "table.json").read_text())["seeds"]
    assert seeds == [{"configuration": "--mode essop --bl 8", "rows": ["a", "b"], "done_rows": [],
                      "final_test_acc": [], "mean_test_acc": None, "spread_pp": None, "gap_pp": None}]
    assert _table_rows((report / "table.md").read_text(), 1) == [
        ["`--mode essop --bl 8`", "a, b", "0/2", "-", "-", "-", "-"]]


def _done_row(name: str, configuration: str, seed: int, correct: list[bool], loss: float):
    from essop.training.campaign import TableRow
    return TableRow(row=name, mode="essop", scaling="per_pair", sharing="shared", source="lfsr", bl=16,
                    epochs_done=1, epochs=1, final_test_acc=100 * float(np.mean(correct)), best_test_acc=None,
                    gap_pp=None, gap_ci_pp=None, bn_test_acc=None, final_train_loss=loss, wall_min=None, device="cpu",
                    status="done", history=[], configuration=configuration, seed=seed,
                    correct=np.array(correct, dtype=bool))


def test_compare_to_pairs_each_row_with_the_reference_configurations_row_of_its_seed():
    from essop.training.campaign import _comparisons
    rows = [_done_row("ref", "--bl 16", 0, [1, 1, 0, 0], 0.5), _done_row("ref-s1", "--bl 16", 1, [1, 0, 0, 0], 0.6),
            _done_row("x", "--rng sobol", 0, [1, 1, 1, 0], 0.4), _done_row("x-s1", "--rng sobol", 1, [1, 1, 0, 0], 0.45),
            _done_row("y-s2", "--rng sobol", 2, [0, 0, 0, 0], 0.7)]
    got = {c["row"]: c for c in _comparisons(rows, "ref")["rows"]}
    assert {name: (c["against"], c["same_seed"]) for name, c in got.items()} == {
        "ref-s1": ("ref", False),       # a seed of the reference configuration faces the reference itself
        "x": ("ref", True), "x-s1": ("ref-s1", True),
        "y-s2": ("ref", False)}         # no reference row of seed 2: the reference, marked as another seed
    assert got["x-s1"]["diff_pp"] == 25.0 and got["x-s1"]["train_loss_diff"] == pytest.approx(0.45 - 0.6)
    assert got["y-s2"]["diff_pp"] == -50.0 and got["x"]["diff_pp"] == 25.0
    # An unfinished reference row of a seed is not used: that seed's rows face the reference.
    rows[1] = replace(rows[1], status="partial")
    got = {c["row"]: c for c in _comparisons(rows, "ref")["rows"]}
    assert (got["x-s1"]["against"], got["x-s1"]["same_seed"]) == ("ref", False) and "ref-s1" not in got
