"""`essop bench-train`: time one training step of ResNet-32 (batch 128) in fp32 and in essop at several
scalings and BL, side by side in one run.

Each configuration runs in its own subprocess (`python -m essop.training.bench --one ...`) so that its peak
memory is its own: resource.getrusage(RUSAGE_SELF).ru_maxrss on CPU, torch.cuda.max_memory_allocated on CUDA.
fp32 is timed first and again last; the ratios use the faster (smaller) of the two fp32 timings and
memories, which can only make essop look worse on a machine whose load drifts. The batch is real CIFAR-10
(augmented, normalised) when the data can be found, else Gaussian noise; the step time is the median over
--steps steps after --warmup steps, from the network's initial weights. A ratio means something only on an
otherwise idle machine.

`--profile` instead profiles one configuration: PyTorch's operator table of a few steps, and the time of each
phase of the native kernel (lanes, gather, bit words, popcount contraction; a build with -DESSOP_PROFILE).
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

from essop.config import EssopConfig


def _batch(batch: int, data: str | None, cache_dir: str | None, device):
    from essop.training import data as cdata
    try:
        ds = cdata.load_cifar10(data, cache_dir)
        x = cdata.augment(torch.from_numpy(ds.x_train[:batch]), cdata.step_generator(0, 0, 0))
        return cdata.Normaliser(ds.x_train)(x).to(device), torch.from_numpy(ds.y_train[:batch]).to(device), "cifar10"
    except FileNotFoundError:
        g = torch.Generator().manual_seed(0)
        return (torch.randn(batch, 3, 32, 32, generator=g).to(device),
                torch.randint(0, 10, (batch,), generator=g).to(device), "gaussian")


def _setup(mode: str, scaling: str, cfg: EssopConfig, batch: int, device: str, threads: int | None, data, cache_dir):
    from essop.training.train import TrainOptions, build_model, make_optimizer
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    opts = TrainOptions(mode=mode, essop=cfg, scaling=scaling, device=device)
    model = build_model(opts, dev)
    opt = make_optimizer(model, opts)
    xb, yb, source = _batch(batch, data, cache_dir, dev)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.cuda.reset_peak_memory_stats(dev)
    return dev, model, opt, xb, yb, source


def run_one(mode: str, scaling: str, cfg: EssopConfig, batch: int, warmup: int, steps: int, device: str,
            threads: int | None, data: str | None, cache_dir: str | None) -> dict:
    from essop.training import counts
    from essop.training.train import train_step
    dev, model, opt, xb, yb, source = _setup(mode, scaling, cfg, batch, device, threads, data, cache_dir)
    times = []
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        train_step(model, opt, xb, yb, batch, mode)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    backend = "-" if mode == "fp32" else counts.resolve_backend("auto", dev, cfg)
    return {"mode": mode, "scaling": scaling if mode != "fp32" else None, "bl": cfg.bl if mode == "essop" else None,
            "sharing": cfg.sharing if mode != "fp32" else None, "backend": backend,
            "step_s": statistics.median(times), "times_s": times, "peak_bytes": peak,
            "peak_kind": "cuda_max_allocated" if dev.type == "cuda" else "ru_maxrss",
            "threads": torch.get_num_threads(), "device": device, "batch": batch, "data": source}


def bench(bls: list[int], scalings: list[str], base: EssopConfig = EssopConfig(), batch: int = 128, warmup: int = 2,
          steps: int = 5, device: str = "cpu", threads: int | None = None, data: str | None = None,
          cache_dir: str | None = None, expected: bool = False) -> list[dict]:
    configs = [("fp32", "per_pair", bls[0])]
    configs += [("essop", s, b) for s in scalings for b in bls]
    configs += [("expected", s, bls[0]) for s in scalings] if expected else []
    configs += [("fp32", "per_pair", bls[0])]
    rows = []
    for mode, scaling, bl in configs:
        cmd = [sys.executable, "-m", "essop.training.bench", "--one", mode, "--scaling", scaling,
               "--config-json", base.replace(bl=bl).to_json(), "--batch", str(batch), "--warmup", str(warmup),
               "--steps", str(steps), "--device", device]
        for flag, value in (("--threads", threads), ("--data", data), ("--cache-dir", cache_dir)):
            if value:
                cmd += [flag, str(value)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"benchmark of {mode} {scaling} BL {bl} failed:\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        label = "-" if mode == "fp32" else f"{scaling} BL {bl if mode == 'essop' else '-'}"
        print(f"  {mode:8s} {label:>16}: {rows[-1]['step_s']:.3f} s/step", file=sys.stderr, flush=True)
    base_t = min(r["step_s"] for r in rows if r["mode"] == "fp32")
    base_m = min(r["peak_bytes"] for r in rows if r["mode"] == "fp32")
    for r in rows:
        r["time_ratio"] = r["step_s"] / base_t
        r["mem_ratio"] = r["peak_bytes"] / base_m
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
            f"{datetime.date.today().isoformat()}")


def table(rows: list[dict]) -> str:
    lines = [f"Machine: {machine()}; batch {rows[0]['batch']} ({rows[0]['data']}); median of the timed steps; ratios "
             f"against the faster fp32 run.", "",
             "| mode | scaling | sharing | BL | backend | step time (s) | x fp32 | peak memory (MiB) | x fp32 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['scaling'] or '-'} | {r['sharing'] or '-'} | {r['bl'] or '-'} | {r['backend']} "
                     f"| {r['step_s']:.3f} | {r['time_ratio']:.2f} | {r['peak_bytes'] / 2**20:.0f} | {r['mem_ratio']:.2f} |")
    return "\n".join(lines)


def profile(mode: str, scaling: str, cfg: EssopConfig, batch: int, steps: int, device: str, threads: int | None,
            data, cache_dir) -> str:
    """Where one configuration's step time goes: PyTorch operators, and the native kernel's phases."""
    from torch.profiler import profile as torch_profile

    from essop.training import native
    from essop.training.train import train_step
    profiled = device == "cpu" and mode != "fp32"
    if profiled:
        native.ACTIVE = "profile"          # the same integers, plus each phase's thread-time
    dev, model, opt, xb, yb, _ = _setup(mode, scaling, cfg, batch, device, threads, data, cache_dir)
    for _ in range(2):
        train_step(model, opt, xb, yb, batch, mode)
    if profiled:
        native.phase_seconds()
    t = time.perf_counter()
    with torch_profile() as prof:
        for _ in range(steps):
            train_step(model, opt, xb, yb, batch, mode)
    wall = (time.perf_counter() - t) / steps
    out = [f"{mode} {scaling} BL {cfg.bl} {cfg.sharing}: {wall:.3f} s/step under the profiler ({machine()})", "",
           prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)]
    if profiled:
        names = ("lanes", "gather (magnitudes)", "bit words", "popcount contraction")
        out += ["native kernel phases, thread-seconds per step (summed over threads):"]
        out += [f"  {n:24s} {v / steps:.3f}" for n, v in zip(names, native.phase_seconds())]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--one", required=True)
    p.add_argument("--scaling", default="per_pair")
    p.add_argument("--config-json", default=EssopConfig().to_json(), help="the EssopConfig, as JSON")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--data")
    p.add_argument("--cache-dir")
    a = p.parse_args(argv)
    print(json.dumps(run_one(a.one, a.scaling, EssopConfig.from_json(a.config_json), a.batch, a.warmup, a.steps,
                             a.device, a.threads, a.data, a.cache_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
