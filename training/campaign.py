"""`essop campaign`: run every row of an accuracy protocol, stop at any moment, continue later, and regenerate
the accuracy table and plots.

A protocol is a committed JSON file (tests/training/tiny_protocol.json is a small one): a name, a
description, the `essop train` options every row shares ("train") and the rows, each a name plus the options
that make it different (mode, scaling, BL, seed, ...), and optionally "compare_to", a row every other finished
row is also compared with image by image in the report. Option keys are spelled like the flags without their
dashes; `true` is a bare flag and `false` leaves it out (every flag of `essop train` is off by default). The
whole file is checked before anything runs, with `essop train`'s own parser, so a typo fails at once rather
than hours into a campaign.

The run folders are the campaign's state. Each row trains in RUNS_DIR/NAME/ROW as an `essop train
--resume auto` subprocess, so a finished row (its summary.json says so) is skipped, a stopped or killed one
continues from its last checkpoint, and one that never started starts; that holds on another machine too,
given the run folders. A row with no run folder here whose report copy (below) is a finished run of the row's
own options is skipped too: a fresh clone runs only the rows the committed report lacks. SIGINT/SIGTERM reach
the running rows as SIGTERM (each saves a checkpoint mid-epoch and exits) and no further row starts. Every finished row is also evaluated once (`essop evaluate`: its final weights
with BatchNorm statistics recomputed, eval.json), a column of the table.

The report in REPORT_DIR/NAME (table.md, table.json, accuracy_vs_epoch.png, gap_vs_bl.png and each row's small
log files) is meant to be committed and never holds checkpoints or weights. It is read from the run folders,
or from its own copies for rows whose run folder is not on this machine, so `--report-only` regenerates it
wherever the report is.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from queue import SimpleQueue
from typing import Callable

import numpy as np

from essop.config import EssopConfig
from essop.plotting import pyplot, save_figure
from essop.training.evaluation import EVAL_FILE, correct_images, read_evaluation
from essop.training.train import run_identity

#: The top-level keys of a protocol file.
PROTOCOL_KEYS = ("name", "description", "train", "rows", "compare_to")
#: `essop train` options the campaign sets for every row itself (where its run folder is, that it continues,
#: no progress bars in a pipe); a protocol that set them would fight the campaign.
CAMPAIGN_SET = ("out", "resume", "overwrite", "no-progress", "help")
#: Options that say where a row runs rather than what it is: the campaign's own options of these names
#: override the protocol's.
ENVIRONMENT = ("device", "threads", "data", "cache-dir")
#: Protocol and row names become folder names: no path separators, nothing hidden or flag-like.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
OPTION_KEY = re.compile(r"[a-z][a-z0-9-]*")
#: The line `essop train` prints on stderr after every epoch (training/train.py).
EPOCH_LINE = re.compile(r"\[\w+\] epoch (\d+)/(\d+) .* test ([0-9.]+) \(")
#: What the report copies from a run folder: small text files, never checkpoint.pt or model.pt.
REPORT_FILES = ("log.csv", "log.json", "config.json", "summary.json", EVAL_FILE)
#: How many of a failed row's last stderr lines the campaign shows.
FAILED_TAIL = 15
#: The columns of table.md, in order.
TABLE_COLUMNS = ("row", "mode", "scaling", "sharing", "source", "BL", "epochs (done/total)", "final test acc (%)",
                 "best test acc (%)", "gap to fp32 (pp)", "+- 95 % (pp)", "final, BN recomputed (%)",
                 "final train loss", "wall (min)",
                 "device", "status")
SEED_COLUMNS = ("configuration (options but the seed)", "rows", "done", "final test acc (%)", "mean (%)",
                "spread (pp)", "gap of the mean to fp32 (pp)")


# ---------------------------------------------------------------------------------------------------------
# The protocol file

@dataclass(frozen=True)
class Row:
    name: str
    options: dict


@dataclass(frozen=True)
class Protocol:
    path: Path
    name: str
    description: str
    train: dict
    rows: list[Row]
    compare_to: str | None = None
    """A row every other finished row is also compared with, image by image (the report's last table)."""


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def _safe_name(value, what: str) -> str:
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise ValueError(f"unsafe {what} {value!r}: a folder name of letters, digits, '.', '_' and '-' "
                         f"that starts with a letter or digit")
    return value


def _options(options, where: str) -> dict:
    """`options` checked for its form: keys spelled like flags, none the campaign sets, scalar values."""
    if not isinstance(options, dict):
        raise ValueError(f"{where} must be a JSON object of `essop train` options, not {options!r}")
    for key, value in options.items():
        if not OPTION_KEY.fullmatch(key):
            raise ValueError(f"{where}: option {key!r} is not an `essop train` flag without its dashes "
                             f"(such as \"batch-size\")")
        if key in CAMPAIGN_SET:
            raise ValueError(f"{where}: option {key!r} is set by the campaign itself")
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"{where}: option {key!r} must be a string, a number or true/false, not {value!r}")
    return dict(options)


def _row(entry, number: int, path: Path) -> Row:
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: row {number} must be a JSON object, not {entry!r}")
    if "name" not in entry:
        raise ValueError(f"{path}: row {number} has no \"name\"")
    name = _safe_name(entry["name"], f"row name (row {number})")
    options = _options({k: v for k, v in entry.items() if k != "name"}, f"{path}: row {name!r}")
    if "mode" not in options:
        raise ValueError(f"{path}: row {name!r} has no \"mode\"")
    return Row(name, options)


def load_protocol(path: Path) -> Protocol:
    """The protocol in `path`, its structure checked (ValueError naming the first problem); plan_rows checks
    the options themselves."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a protocol is a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(PROTOCOL_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))} "
                         f"(a protocol has {', '.join(PROTOCOL_KEYS)})")
    for key in ("name", "rows"):
        if key not in data:
            raise ValueError(f"{path}: no {key!r}")
    name = _safe_name(data["name"], "protocol name")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{path}: \"description\" must be a string")
    if not isinstance(data["rows"], list) or not data["rows"]:
        raise ValueError(f"{path}: \"rows\" must be a non-empty list")
    rows = [_row(entry, i, path) for i, entry in enumerate(data["rows"], 1)]
    seen = set()
    for row in rows:
        # Case-insensitively, as the folders may end up on a case-insensitive file system.
        if row.name.lower() in seen:
            raise ValueError(f"{path}: duplicate row name {row.name!r}")
        seen.add(row.name.lower())
    compare_to = data.get("compare_to")
    if compare_to is not None and compare_to not in {row.name for row in rows}:
        raise ValueError(f"{path}: \"compare_to\" must name a row of the protocol, not {compare_to!r}")
    return Protocol(path, name, description, _options(data.get("train", {}), f"{path}: \"train\""), rows,
                    compare_to)


# ---------------------------------------------------------------------------------------------------------
# Rows made concrete: run folder, `essop train` arguments, what they define

@dataclass(frozen=True)
class Plan:
    name: str
    folder: Path
    argv: list[str]
    """The arguments after `essop train`."""
    mode: str
    scaling: str
    sharing: str
    source: str
    """The random-number source: 'lfsr' or 'sobol', '+shift' with the per-pair shift."""
    bl: int
    epochs: int
    copy: Path
    """The report's copy of the run's small files (REPORT_DIR/NAME/ROW)."""
    identity: dict
    """The options that define the run (train.run_identity): a run recorded with others is not this row's."""
    environment: list[str]
    """The row's flags that say where it runs (ENVIRONMENT), for the `essop evaluate` of its weights."""
    configuration: str
    """The row's training options but its seed, as flags: rows that agree on it are seeds of one configuration."""
    essop: EssopConfig
    """The row's array (the layer fields left at their defaults), as `essop train` reads it."""
    model: str
    """The network the row trains."""
    seed: int
    """The row's --seed: rows of one seed share initial weights, data order and augmentation."""


def _flags(options: dict) -> list[str]:
    argv = []
    for key, value in options.items():
        if value is False:
            continue
        argv.append("--" + key)
        if value is not True:
            argv.append(str(value))
    return argv


#: `essop train`'s parser as the campaign uses it: argv (the arguments after `essop train`) -> (namespace,
#: TrainOptions), ValueError for a bad option or value. The command line (essop.app.training_commands) owns that
#: parser and passes this function in.
ParseTrain = Callable[[list[str]], tuple]


def plan_rows(protocol: Protocol, runs_dir: Path, report_dir: Path, environment: dict,
              parse_train: ParseTrain) -> list[Plan]:
    """Every row's run folder, report copy and `essop train` arguments (the protocol's common options, the
    row's, then the campaign's environment options), each checked by `essop train`'s parser, `parse_train`."""
    plans = []
    for row in protocol.rows:
        folder = runs_dir / protocol.name / row.name
        options = {**protocol.train, **row.options, **environment}
        argv = _flags(options)
        argv += ["--out", str(folder), "--resume", "auto", "--no-progress"]
        where = f"{protocol.path}: row {row.name!r}"
        try:
            args, opts = parse_train(argv)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        if args.epochs is None:
            raise ValueError(f"{where}: no \"epochs\" (in \"train\" or the row): every row needs its length")
        # Only the options that differ from the protocol's common ones name the configuration; every row has those.
        own = {k: v for k, v in options.items()
               if k != "seed" and k not in ENVIRONMENT and (k not in protocol.train or protocol.train[k] != v)}
        cfg = opts.essop
        plans.append(Plan(row.name, folder, argv, args.mode, args.scaling, cfg.sharing,
                          cfg.rng_label, cfg.bl, args.epochs, report_dir / protocol.name / row.name,
                          run_identity(asdict(opts)),
                          _flags({k: v for k, v in options.items() if k in ENVIRONMENT}), shlex.join(_flags(own)),
                          cfg, args.model, opts.seed))
    return plans


def select_rows(plans: list[Plan], names: list[str] | None, path: Path) -> list[Plan]:
    """The plans of the rows named in `names`, in that order (all, in the protocol's order, when none);
    ValueError for a name the protocol lacks."""
    if not names:
        return plans
    by_name = {p.name: p for p in plans}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"{path} has no row {', '.join(map(repr, unknown))} "
                         f"(its rows: {', '.join(p.name for p in plans)})")
    return [by_name[n] for n in dict.fromkeys(names)]


# ---------------------------------------------------------------------------------------------------------
# What a run folder says

@dataclass(frozen=True)
class RunState:
    status: str
    """"done" (summary.json: every epoch, not stopped), "partial" (finished epochs or a checkpoint) or
    "pending"."""
    history: list[dict]
    """log.json: one dict per finished epoch."""
    epochs: int
    """The run's length: summary.json's (--time-budget-s may have sized it), else the protocol's."""
    config: dict | None
    summary: dict | None
    in_report: bool = False
    """Read from the report's copy: the row finished elsewhere (a clone of the committed report)."""


def read_state(folder: Path, epochs: int) -> RunState:
    def read(name):
        return _load_json(folder / name) if (folder / name).exists() else None

    history, summary, config = read("log.json") or [], read("summary.json"), read("config.json")
    if summary is not None:
        epochs = summary.get("epochs", epochs)
    if summary is not None and summary.get("stopped") is None and summary.get("epochs_done", 0) >= epochs:
        status = "done"
    elif history or (folder / "checkpoint.pt").exists():
        status = "partial"
    else:
        status = "pending"
    return RunState(status, history, epochs, config, summary)


def row_state(plan: Plan) -> RunState:
    """What is left of a row to run: its run folder's state, unless that folder holds nothing of it and the
    report's copy is a finished run of the row's own options. A clone of the committed report then reruns only
    what the report lacks (a partial copy cannot continue: its checkpoint is not in the report)."""
    state = read_state(plan.folder, plan.epochs)
    if state.status == "pending" and _copy_is_this_row(plan):
        copy = read_state(plan.copy, plan.epochs)
        if copy.status == "done":
            return replace(copy, in_report=True)
    return state


def _copy_is_this_row(plan: Plan) -> bool:
    """Whether the report's copy records a run of the row's defining options (not one of an earlier protocol)."""
    config = _load_json(plan.copy / "config.json") if (plan.copy / "config.json").exists() else None
    return config is not None and run_identity(config.get("options", {})) == plan.identity


def _progress(state: RunState) -> str:
    return f"{len(state.history)}/{state.epochs} epochs"


def print_plan(plans: list[Plan]) -> None:
    width = max(len(p.name) for p in plans)
    for p in plans:
        state = row_state(p)
        where = "report" if state.in_report else "runs"
        print(f"{p.name:<{width}}  {state.status:<7}  {_progress(state):>12}  {where:<6}  "
              f"essop train {shlex.join(p.argv)}")


# ---------------------------------------------------------------------------------------------------------
# Running rows

@dataclass
class _Job:
    plan: Plan
    tag: str
    proc: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    tail: deque = field(default_factory=lambda: deque(maxlen=FAILED_TAIL))

    def minutes(self) -> str:
        return f"{(time.monotonic() - self.started) / 60:.1f} min"


def _pump(stream, name: str, events: SimpleQueue) -> None:
    """Pass a row's stderr lines to the main loop, then None when the row closes it (it is exiting)."""
    for line in stream:
        events.put((name, line.rstrip("\n")))
    events.put((name, None))


class _Runner:
    """Runs rows as `essop train` subprocesses, at most `parallel` at once, and turns their epoch lines into
    progress lines. Everything happens in the main thread, woken by one queue of events: a stderr line of a
    row, the end of a row, or a stop request."""

    def __init__(self, todo: list[Plan], tags: dict[str, str], parallel: int, after_row):
        self.todo, self.tags, self.parallel, self.after_row = list(todo), tags, parallel, after_row
        self.events: SimpleQueue = SimpleQueue()
        self.running: dict[str, _Job] = {}
        self.stop_signal: int | None = None
        self.done: list[str] = []
        self.failed: list[str] = []

    def _on_signal(self, signum, frame) -> None:
        # Only record it and wake the main loop: SimpleQueue.put is safe inside a signal handler, print is not.
        self.stop_signal = signum
        self.events.put((None, signum))

    def run(self) -> None:
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self.running or (self.todo and self.stop_signal is None):
                while self.todo and self.stop_signal is None and len(self.running) < self.parallel:
                    self._start(self.todo.pop(0))
                name, item = self.events.get()
                if name is None:
                    self._forward_stop(item)
                elif item is None:
                    self._finish(self.running.pop(name))
                else:
                    self._line(self.running[name], item)
        finally:
            # Normally nothing runs here; if the campaign itself failed, its rows checkpoint and stop rather
            # than train on unattended.
            for job in self.running.values():
                job.proc.send_signal(signal.SIGTERM)
                job.proc.wait()
            for s, h in handlers.items():
                signal.signal(s, h)

    def _start(self, plan: Plan) -> None:
        state = read_state(plan.folder, plan.epochs)
        how = "start" if state.status == "pending" else f"continue at {_progress(state)}"
        print(f"{self.tags[plan.name]}: {how}", flush=True)
        proc = subprocess.Popen([sys.executable, "-m", "essop.app", "train", *plan.argv], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
        self.running[plan.name] = _Job(plan, self.tags[plan.name], proc)
        threading.Thread(target=_pump, args=(proc.stderr, plan.name, self.events), daemon=True).start()

    def _forward_stop(self, signum: int) -> None:
        for job in self.running.values():
            job.proc.send_signal(signal.SIGTERM)
        print(f"campaign: {signal.Signals(signum).name}: stopping {len(self.running)} running row(s) at their "
              f"next step, each with a checkpoint; `essop campaign` again continues them", flush=True)

    def _line(self, job: _Job, line: str) -> None:
        job.tail.append(line)
        m = EPOCH_LINE.match(line)
        if m:
            epoch, epochs, acc = m.groups()
            print(f"{job.tag}: epoch {epoch}/{epochs}, test {100 * float(acc):.1f} %, {job.minutes()}", flush=True)

    def _finish(self, job: _Job) -> None:
        rc = job.proc.wait()
        state = read_state(job.plan.folder, job.plan.epochs)
        if state.status == "done":
            self.done.append(job.plan.name)
            final = 100 * state.history[-1]["test_acc"]
            print(f"{job.tag}: done, final test {final:.1f} %, {job.minutes()}", flush=True)
            evaluate_row(job.plan, job.tag, state)
        elif self.stop_signal is not None:
            print(f"{job.tag}: stopped at {_progress(state)}" + (f" (exit status {rc})" if rc else ""), flush=True)
        elif rc != 0:
            self.failed.append(job.plan.name)
            print(f"{job.tag}: FAILED (exit status {rc}) at {_progress(state)}; its last output:", flush=True)
            for line in job.tail:
                print(f"    {line}", flush=True)
        else:       # a row that stops itself (--stop-after-steps, --time-budget-s in the protocol)
            reason = (state.summary or {}).get("stopped")
            print(f"{job.tag}: stopped at {_progress(state)} ({reason})", flush=True)
        self.after_row()


def evaluate_row(plan: Plan, tag: str, state: RunState) -> None:
    """Give a finished row a current eval.json (training/evaluation.py: its test accuracy with BatchNorm
    statistics recomputed from its weights) unless it has one. A diagnostic: a failure is shown, not fatal."""
    if read_evaluation(plan.folder, len(state.history)) is not None:
        return
    res = subprocess.run([sys.executable, "-m", "essop.app", "evaluate", str(plan.folder), *plan.environment],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    ev = read_evaluation(plan.folder, len(state.history))
    if res.returncode == 0 and ev is not None:
        print(f"{tag}: BatchNorm statistics recomputed: test {100 * ev.bn_test_acc:.1f} % "
              f"(with its own {100 * ev.test_acc:.1f} %)", flush=True)
    elif res.returncode == 0:
        print(f"{tag}: evaluated, but {plan.folder / EVAL_FILE} does not read as this version's evaluation of its "
              f"final weights", flush=True)
    else:
        lines = (res.stderr or res.stdout).strip().splitlines()
        print(f"{tag}: evaluation failed (exit status {res.returncode}): {lines[-1] if lines else '?'}", flush=True)


@contextmanager
def campaign_lock(folder: Path):
    """Hold RUNS_DIR/NAME/campaign.lock: two campaigns of one protocol would train the same rows into the same
    folders. The kernel releases a flock when its process ends, however it ends, so no stale lock remains."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "campaign.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            raise ValueError(f"another `essop campaign` (pid {pid}) is running the rows in {folder}; wait for it "
                             f"or stop it with `kill {pid}`") from None
        fh.truncate(0)
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def run_campaign(protocol: Protocol, selected: list[Plan], runs_dir: Path, parallel: int, report) -> int:
    """Run the selected rows that are not done; `report()` rewrites the report. Returns the exit status: 0,
    1 if a row failed, 128 + the signal number if the campaign was stopped."""
    tags = {p.name: f"[{i}/{len(selected)}] {p.name}" for i, p in enumerate(selected, 1)}
    with campaign_lock(runs_dir / protocol.name):
        states = {p.name: row_state(p) for p in selected}
        todo = [p for p in selected if states[p.name].status != "done"]
        print(f"campaign {protocol.name}: {len(todo)} of {len(selected)} row(s) to run, up to {parallel} at once, "
              f"in {runs_dir / protocol.name}", flush=True)
        for p in selected:
            if p not in todo and states[p.name].in_report:
                print(f"{tags[p.name]}: done ({_progress(states[p.name])}, in the report {p.copy}), skipped",
                      flush=True)
            elif p not in todo:
                print(f"{tags[p.name]}: done ({_progress(states[p.name])}), skipped", flush=True)
                evaluate_row(p, tags[p.name], states[p.name])
        runner = _Runner(todo, tags, parallel, report)
        runner.run()
    table = report()
    left = len(todo) - len(runner.done)
    print(f"campaign {protocol.name}: {len(runner.done)} row(s) finished now, {left} not finished"
          + (f" (failed: {', '.join(runner.failed)})" if runner.failed else "") + f"; report {table}", flush=True)
    if runner.stop_signal is not None:
        return 128 + runner.stop_signal
    return 1 if runner.failed else 0


# ---------------------------------------------------------------------------------------------------------
# The report

@dataclass
class TableRow:
    row: str
    mode: str
    scaling: str | None
    sharing: str | None
    source: str | None
    bl: int | None
    epochs_done: int
    epochs: int
    final_test_acc: float | None
    """%, the last finished epoch's (a partial row's latest)."""
    best_test_acc: float | None
    gap_pp: float | None
    """final_test_acc minus the mean final_test_acc of the done fp32 rows."""
    gap_ci_pp: float | None
    """Half-width of the 95 % confidence interval of gap_pp over the test images: paired image by image with
    the fp32 rows (normal approximation). The test set's sampling error only; the seeds' spread is apart."""
    bn_test_acc: float | None
    """%, the final weights' test accuracy with BatchNorm statistics recomputed (eval.json), if evaluated."""
    final_train_loss: float | None
    """The last finished epoch's mean training loss: a steadier signal than one test accuracy, mid-run too."""
    wall_min: float | None
    device: str | None
    status: str
    """RunState.status, or "outdated": a report copy recorded with other options than the row's now."""
    history: list[dict]
    configuration: str = ""
    """Plan.configuration: the row's options but its seed."""
    seed: int = 0
    correct: np.ndarray | None = None
    """bool [test images]: which the final weights classify correctly (eval.json), if evaluated."""

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("history", "correct")}


def _copy_run_files(folder: Path, copy: Path) -> None:
    """Mirror the run's small files into the report (and drop a copy whose original is gone)."""
    copy.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        if (folder / name).exists():
            shutil.copyfile(folder / name, copy / name)
        else:
            (copy / name).unlink(missing_ok=True)


def _setup(plan: Plan, config: dict | None) -> tuple[str, str | None, str | None, str | None, int | None]:
    """(mode, scaling, sharing, source, BL) of a row: what its run recorded, else what the protocol says; None
    where it does not apply (fp32 has no ESSOP update; expected mode has no bitstreams). A run recorded before
    configurations had a source used the LFSRs."""
    options = (config or {}).get("options", {})
    essop = options.get("essop", {})
    mode = options.get("mode", plan.mode)
    scaling = None if mode == "fp32" else options.get("scaling", plan.scaling)
    if mode != "essop":
        return mode, scaling, None, None, None
    # The run's own configuration names its source (element words included), as EssopConfig names any.
    source = EssopConfig.from_dict(essop).rng_label if essop else plan.source
    return mode, scaling, essop.get("sharing", plan.sharing), source, essop.get("bl", plan.bl)


def _table_row(plan: Plan) -> TableRow:
    """A row of the table, from its run folder when this machine has it (refreshing the report's copy),
    else from the report's copy; a copy recorded with other options than the row's is "outdated"."""
    here, copy = plan.folder.is_dir(), plan.copy
    state = read_state(plan.folder if here else copy, plan.epochs)
    if here and state.history:
        _copy_run_files(plan.folder, copy)
    elif state.history and not _copy_is_this_row(plan):
        state = replace(state, status="outdated")
    h = state.history
    ev = read_evaluation(plan.folder if here else copy, len(h)) if h else None
    mode, scaling, sharing, source, bl = _setup(plan, state.config)
    return TableRow(row=plan.name, mode=mode, scaling=scaling, sharing=sharing, source=source, bl=bl,
                    epochs_done=len(h), epochs=state.epochs,
                    final_test_acc=100 * h[-1]["test_acc"] if h else None,
                    best_test_acc=100 * max(r["test_acc"] for r in h) if h else None, gap_pp=None,
                    gap_ci_pp=None, bn_test_acc=100 * ev.bn_test_acc if ev else None,
                    final_train_loss=h[-1]["train_loss"] if h else None,
                    wall_min=h[-1]["wall_s"] / 60 if h else None, device=(state.config or {}).get("device"),
                    status=state.status, history=h, configuration=plan.configuration, seed=plan.seed,
                    correct=correct_images(ev) if ev else None)


def _fp32_reference(rows: list[TableRow]) -> dict | None:
    accs = [r.final_test_acc for r in rows if r.mode == "fp32" and r.status == "done"]
    if not accs:
        return None
    mean = sum(accs) / len(accs)
    return {"rows": len(accs), "mean_test_acc": mean, "min_test_acc": min(accs), "max_test_acc": max(accs),
            "spread_pp": max(accs) - min(accs)}


def _seed_groups(rows: list[TableRow], fp32: dict | None) -> list[dict]:
    """The configurations run with more than one seed, in table order: their rows, and over the finished ones
    the final test accuracies, their mean, spread (max - min) and the mean's gap to the fp32 mean. The seeds'
    spread is what a single row's gap must be read against."""
    groups: dict[str, list[TableRow]] = {}
    for r in rows:
        groups.setdefault(r.configuration, []).append(r)
    out = []
    for configuration, group in groups.items():
        if len(group) < 2:
            continue
        accs = [r.final_test_acc for r in group if r.status == "done"]
        mean = sum(accs) / len(accs) if accs else None
        out.append({"configuration": configuration, "rows": [r.row for r in group],
                    "done_rows": [r.row for r in group if r.status == "done"], "final_test_acc": accs,
                    "mean_test_acc": mean, "spread_pp": max(accs) - min(accs) if len(accs) > 1 else None,
                    "gap_pp": mean - fp32["mean_test_acc"] if mean is not None and fp32 is not None else None})
    return out


def _cell(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _markdown(protocol: Protocol, rows: list[TableRow], fp32: dict | None, seeds: list[dict],
              compared: dict | None = None) -> str:
    lines = [f"# Accuracy campaign `{protocol.name}`", ""]
    if protocol.description:
        lines += [protocol.description, ""]
    lines += [f"Protocol `{protocol.path}`; `essop train` options shared by every row: "
              f"`{shlex.join(_flags(protocol.train))}`.", "",
              "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for r in rows:
        cells = (r.row, r.mode, _cell(r.scaling), _cell(r.sharing), _cell(r.source), _cell(r.bl),
                 f"{r.epochs_done}/{r.epochs}", _cell(r.final_test_acc, ".2f"), _cell(r.best_test_acc, ".2f"),
                 _cell(r.gap_pp, "+.2f"), _cell(r.gap_ci_pp, ".2f"), _cell(r.bn_test_acc, ".2f"),
                 _cell(r.final_train_loss, ".3f"), _cell(r.wall_min, ".1f"), _cell(r.device), r.status)
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines.append("")
    if fp32 is None:
        lines.append("fp32 reference: no finished fp32 row yet, so no gaps.")
    else:
        lines.append(f"fp32 reference: mean final test accuracy {fp32['mean_test_acc']:.2f} % over "
                     f"{fp32['rows']} finished fp32 row(s), spread (max - min) {fp32['spread_pp']:.2f} pp.")
    if seeds:
        lines += ["", "Configurations run with several seeds (the finished rows' final test accuracies):", "",
                  "| " + " | ".join(SEED_COLUMNS) + " |", "|" + "---|" * len(SEED_COLUMNS)]
        for g in seeds:
            cells = (f"`{g['configuration']}`" if g["configuration"] else "(the protocol's options)",
                     ", ".join(g["rows"]), f"{len(g['done_rows'])}/{len(g['rows'])}",
                     ", ".join(f"{a:.2f}" for a in g["final_test_acc"]) or "-", _cell(g["mean_test_acc"], ".2f"),
                     _cell(g["spread_pp"], ".2f"), _cell(g["gap_pp"], "+.2f"))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Partial rows show their latest finished epoch. \"+- 95 %\": the gap's 95 % confidence interval "
              "over the test images, each image's result paired with the fp32 rows' on it: the test set's sampling "
              "error, not the spread between seeds (the fp32 rows' spread and the seeds table above). \"BN recomputed\": the same "
              "weights tested with BatchNorm statistics recomputed from them (`essop evaluate`, run after each "
              "finished row), which separates what the weights can do from running statistics that lag them "
              "(docs/results.md). \"final train loss\": the last finished epoch's mean training loss (augmented "
              "images, the weights as they moved over the epoch), the steadier signal mid-run.", "",
              f"Regenerate with `essop campaign {protocol.path} --report-only`; plots: accuracy_vs_epoch.png, "
              f"gap_vs_bl.png.", ""]
    if compared is not None:
        ref = compared["reference"]
        lines += [f"Every finished row against `{ref}` (the protocol's \"compare_to\") or, where one is finished, "
                  f"the row of its configuration with the row's own seed (column \"against\"; \"other seed\" "
                  f"marks a row compared with a reference of another seed), test image by test image: the "
                  f"difference of the final test accuracies with its 95 % interval over the test images, and of "
                  f"the final training losses. Rows of the same seed share initial weights and data order, so this "
                  f"pairing separates smaller differences than two gaps to fp32 do.", "",
                  "| row | against | test acc - against (pp) | +- 95 % (pp) | train loss - against |",
                  "|---|---|---|---|---|"]
        for c in compared["rows"]:
            against = c["against"] + ("" if c["same_seed"] else " (other seed)")
            lines.append(f"| {c['row']} | {against} | {c['diff_pp']:+.2f} | {_cell(c['ci_pp'], '.2f')} | "
                         f"{_cell(c['train_loss_diff'], '+.3f')} |")
        lines.append("")
    return "\n".join(lines)


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center")


#: The zoomed panel of accuracy_vs_epoch.png shows the top this many pp of the schedule's last third.
TAIL_SPAN_PP = 8.0


def _plot_accuracy(protocol: Protocol, rows: list[TableRow], path: Path) -> None:
    """Test accuracy per epoch of every row: the whole schedule, and beside it its last third on a y axis
    fitted to those epochs, where the rows' differences (a pp or two) are visible. The fp32 rows are grey
    and dashed (the reference band), every other row has a colour of its own (tab20)."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, (full, tail) = plt.subplots(1, 2, figsize=(13, 5))
    drawn = [r for r in rows if r.history]
    first_tail = max(1, (2 * max((r.epochs for r in rows), default=3)) // 3)
    colours = iter(plt.get_cmap("tab20").colors * 2)
    tail_values = []
    for r in drawn:
        epochs = [h["epoch"] for h in r.history]
        acc = [100 * h["test_acc"] for h in r.history]
        label = r.row + (" (outdated)" if r.status == "outdated" else
                         f" ({r.epochs_done}/{r.epochs})" if r.status != "done" else "")
        style = ({"color": "0.45", "linestyle": "--"} if r.mode == "fp32" else
                 {"color": next(colours), "linestyle": ":" if r.status == "outdated" else "-"})
        for ax in (full, tail):
            ax.plot(epochs, acc, label=label if ax is full else None, linewidth=1.3, **style)
            if r.status != "done":
                ax.plot(epochs[-1:], acc[-1:], marker="o", markersize=4, color=style["color"])
        tail_values += [a for e, a in zip(epochs, acc) if e >= first_tail]
    for ax, title in ((full, "every epoch"), (tail, f"epochs {first_tail}+, top {TAIL_SPAN_PP:g} pp")):
        ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"{protocol.name}: test accuracy, {title}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if tail_values:
        # Rows more than TAIL_SPAN_PP below the best leave the zoomed panel's bottom edge: the left panel has them.
        hi = max(tail_values)
        lo = max(min(tail_values), hi - TAIL_SPAN_PP)
        tail.set_xlim(first_tail - 0.2, max(r.epochs for r in rows) + 0.2)
        tail.set_ylim(lo - 0.5, hi + 0.5)
    fig.tight_layout(rect=(0, 0, 0.8, 1))      # the right fifth holds the legend
    if drawn:
        fig.legend(*full.get_legend_handles_labels(), loc="center left", bbox_to_anchor=(0.8, 0.5), fontsize=7,
                   title="row (unfinished: epochs done, dot)", title_fontsize=7)
    else:
        _note(full, "no finished epoch yet")
    save_figure(fig, path)


def _plot_gap(protocol: Protocol, rows: list[TableRow], fp32: dict | None, path: Path) -> None:
    """Final gap to fp32 against BL, one line per (scaling, sharing, source) through the mean over its rows at
    each BL (every row is also a dot, with its 95 % interval over the test images where known; the groups
    slightly apart at each BL), over the band the fp32 rows themselves span around their mean and the 0.3 pp
    line of the verdict."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups: dict[tuple[str, str, str], dict[int, list[TableRow]]] = {}
    for r in rows:
        if r.mode == "essop" and r.status == "done" and r.gap_pp is not None:
            groups.setdefault((r.scaling, r.sharing, r.source), {}).setdefault(r.bl, []).append(r)
    if fp32 is not None:
        ax.axhspan(fp32["min_test_acc"] - fp32["mean_test_acc"], fp32["max_test_acc"] - fp32["mean_test_acc"],
                   color="0.8", label=f"fp32 spread ({fp32['rows']} rows)")
        ax.axhline(0.0, color="0.4", linewidth=0.8)
        ax.axhline(-0.3, color="0.4", linewidth=0.8, linestyle=":", label="0.3 pp below fp32")
    # Groups side by side at each BL (a small shift in log2 BL), so that their interval bars do not overlap.
    dodge = {key: (i - (len(groups) - 1) / 2) * 0.05 for i, key in enumerate(sorted(groups))}
    for (scaling, sharing, source), by_bl in sorted(groups.items()):
        bls = sorted(by_bl)
        shift = 2 ** dodge[(scaling, sharing, source)]
        line, = ax.plot([b * shift for b in bls], [sum(r.gap_pp for r in by_bl[b]) / len(by_bl[b]) for b in bls],
                        marker="o", label=f"{scaling}, {sharing}, {source}")
        for b in bls:
            for r in by_bl[b]:
                ax.errorbar([b * shift], [r.gap_pp], yerr=None if r.gap_ci_pp is None else [r.gap_ci_pp],
                            fmt=".", color=line.get_color(), capsize=3)
    if groups:
        ax.set_xscale("log", base=2)
        all_bl = sorted({b for by_bl in groups.values() for b in by_bl})
        ax.set_xticks(all_bl, [str(b) for b in all_bl])
        ax.legend(fontsize=8)
    else:
        _note(ax, "no finished essop row with an fp32 reference yet")
    ax.set(xlabel="BL (bitstream length)", ylabel="final test acc - fp32 mean (pp)",
           title=f"{protocol.name}: gap to fp32 (bars: 95 % over the test images)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def _paired_intervals(rows: list[TableRow]) -> None:
    """Set gap_ci_pp of every done row whose final weights, and those of every done fp32 row, were evaluated
    image by image on the same test images: with d_i = correct_i - (mean over the fp32 rows of their
    correct_i), the gap is 100 * mean(d) and its 95 % interval 1.96 * 100 * std(d) / sqrt(N)."""
    fp32 = [r for r in rows if r.mode == "fp32" and r.status == "done"]
    if not fp32 or any(r.correct is None for r in fp32) or len({len(r.correct) for r in fp32}) != 1:
        return
    reference = np.mean([r.correct for r in fp32], axis=0)
    for r in rows:
        if r.status == "done" and r.correct is not None and len(r.correct) == len(reference) > 1:
            d = r.correct - reference
            r.gap_ci_pp = _ci95_pp(d)


def _ci95_pp(d: np.ndarray) -> float:
    """Half-width in pp of the 95 % interval of 100 * mean(d) over paired per-image differences d (normal
    approximation): 1.96 * 100 * std(d) / sqrt(N)."""
    return float(1.96 * 100 * d.std(ddof=1) / np.sqrt(len(d)))


def _comparisons(rows: list[TableRow], reference: str | None) -> dict | None:
    """Every done, evaluated row against a done, evaluated row of the configuration of `reference` on the same
    test images: the one of the row's own seed where there is one (so the two share initial weights, data order
    and augmentation), else `reference` itself, which also faces the other seeds of its own configuration.
    With d_i = correct_i - against's correct_i, the difference 100 * mean(d) in pp and its 95 % interval
    1.96 * 100 * std(d) / sqrt(N); and the difference of their final training losses. A same-seed pairing
    resolves smaller differences than two gaps to fp32 do."""
    ref = next((r for r in rows if r.row == reference), None)
    if ref is None or ref.status != "done" or ref.correct is None:
        return None
    by_seed = {r.seed: r for r in rows
               if r.configuration == ref.configuration and r.status == "done" and r.correct is not None}
    by_seed[ref.seed] = ref
    out = []
    for r in rows:
        # A seed of the reference's own configuration is compared with the reference itself (seed to seed).
        against = ref if r.configuration == ref.configuration else by_seed.get(r.seed, ref)
        if r is ref or r.status != "done" or r.correct is None or len(r.correct) != len(against.correct):
            continue
        d = r.correct.astype(float) - against.correct
        out.append({"row": r.row, "against": against.row, "same_seed": against.seed == r.seed,
                    "diff_pp": float(100 * d.mean()),
                    "ci_pp": _ci95_pp(d) if len(d) > 1 else None,
                    "train_loss_diff": (r.final_train_loss - against.final_train_loss
                                        if r.final_train_loss is not None and against.final_train_loss is not None
                                        else None)})
    return {"reference": ref.row, "rows": out}


def write_report(protocol: Protocol, plans: list[Plan], report_dir: Path) -> Path:
    """Rewrite REPORT_DIR/NAME for every row of the protocol; returns the path of table.md."""
    out = report_dir / protocol.name
    out.mkdir(parents=True, exist_ok=True)
    rows = [_table_row(p) for p in plans]
    fp32 = _fp32_reference(rows)
    for r in rows:
        if fp32 is not None and r.final_test_acc is not None and r.status != "outdated":
            r.gap_pp = r.final_test_acc - fp32["mean_test_acc"]
    _paired_intervals(rows)
    seeds = _seed_groups(rows, fp32)
    compared = _comparisons(rows, protocol.compare_to)
    (out / "table.md").write_text(_markdown(protocol, rows, fp32, seeds, compared))
    (out / "table.json").write_text(json.dumps(
        {"protocol": protocol.name, "description": protocol.description, "file": str(protocol.path),
         "train": protocol.train, "fp32": fp32, "seeds": seeds, "compared": compared,
         "rows": [r.to_json() for r in rows]}, indent=2) + "\n")
    _plot_accuracy(protocol, rows, out / "accuracy_vs_epoch.png")
    _plot_gap(protocol, rows, fp32, out / "gap_vs_bl.png")
    return out / "table.md"


# ---------------------------------------------------------------------------------------------------------
# In the background

def launch_detached(protocol: Protocol, runs_dir: Path, argv: list[str]) -> int:
    """Run `essop campaign ARGV` (the same campaign without --background) as a detached process whose output
    goes to RUNS_DIR/NAME/campaign.log; print its pid and how to stop it."""
    folder = runs_dir / protocol.name
    with campaign_lock(folder):
        pass        # refuse here, where the user sees it, rather than in the log
    log = folder / "campaign.log"
    argv = [sys.executable, "-m", "essop.app", "campaign", *argv]
    with open(log, "a") as fh:
        fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n")
        fh.flush()
        # A new session: no terminal, so closing it (SIGHUP) or Ctrl-C there does not reach the campaign.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    print(f"campaign {protocol.name}: running in the background, pid {proc.pid}, log {log}")
    print(f"stop it with `kill {proc.pid}` (running rows save a checkpoint); `essop campaign {protocol.path}` "
          f"again continues it")
    return 0
