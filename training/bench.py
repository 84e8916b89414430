"""`essop bench-train`: time one training step of ResNet-32 (batch 128) in fp32 and essop at several BL.

Each configuration runs in its own subprocess (`python -m essop.training.bench --one ...`) so that its peak
memory is its own: resource.getrusage(RUSAGE_SELF).ru_maxrss on CPU, torch.cuda.max_memory_allocated on CUDA.
The batch is real CIFAR-10 (augmented, normalised) when the data can be found, else Gaussian noise; the
step time is the median over --steps steps after --warmup steps, from the network's initial weights.
"""
from __future__ import annotations

import argparse
import json
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


def run_one(mode: str, cfg: EssopConfig, batch: int, warmup: int, steps: int, device: str,
            threads: int | None, data: str | None, cache_dir: str | None) -> dict:
    from essop.training.train import TrainOptions, build_model, make_optimizer, train_step
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    opts = TrainOptions(mode=mode, essop=cfg, device=device)
    model = build_model(opts, dev)
    opt = make_optimizer(model, opts)
    xb, yb, source = _batch(batch, data, cache_dir, dev)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.cuda.reset_peak_memory_stats(dev)
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
    return {"mode": mode, "bl": cfg.bl if mode != "fp32" else None, "sharing": cfg.sharing, "step_s": statistics.median(times),
            "times_s": times, "peak_bytes": peak, "peak_kind": "cuda_max_allocated" if dev.type == "cuda" else "ru_maxrss",
            "threads": torch.get_num_threads(), "device": device, "batch": batch, "data": source}


def bench(bls: list[int], base: EssopConfig = EssopConfig(), batch: int = 128, warmup: int = 2, steps: int = 5,
          device: str = "cpu", threads: int | None = None, data: str | None = None, cache_dir: str | None = None,
          extra_modes: tuple[str, ...] = ()) -> list[dict]:
    # fp32 runs first and again last: on a shared machine the load drifts, and the ratios use the faster
    # (smaller) of the two fp32 timings and memories, which can only make essop look worse.
    configs = [("fp32", bls[0])] + [("essop", b) for b in bls] + [(m, bls[0]) for m in extra_modes] + [("fp32", bls[0])]
    rows = []
    for mode, bl in configs:
        cmd = [sys.executable, "-m", "essop.training.bench", "--one", mode,
               "--config-json", base.replace(bl=bl).to_json(), "--batch", str(batch), "--warmup", str(warmup), "--steps", str(steps), "--device", device]
        if threads:
            cmd += ["--threads", str(threads)]
        if data:
            cmd += ["--data", data]
        if cache_dir:
            cmd += ["--cache-dir", cache_dir]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"benchmark of {mode} BL {bl} failed:\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  {mode:8s} BL {bl if mode != 'fp32' else '-':>3}: {rows[-1]['step_s']:.3f} s/step", file=sys.stderr, flush=True)
    base_t = min(r["step_s"] for r in rows if r["mode"] == "fp32")
    base_m = min(r["peak_bytes"] for r in rows if r["mode"] == "fp32")
    for r in rows:
        r["time_ratio"] = r["step_s"] / base_t
        r["mem_ratio"] = r["peak_bytes"] / base_m
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| mode | BL | step time (s) | x fp32 (faster fp32 run) | peak memory (MiB) | x fp32 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['bl'] if r['bl'] else '-'} | {r['step_s']:.3f} | {r['time_ratio']:.2f} | "
                     f"{r['peak_bytes'] / 2**20:.0f} | {r['mem_ratio']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--one", required=True)
    p.add_argument("--config-json", default=EssopConfig().to_json(), help="the EssopConfig, as JSON")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--data")
    p.add_argument("--cache-dir")
    a = p.parse_args(argv)
    print(json.dumps(run_one(a.one, EssopConfig.from_json(a.config_json), a.batch, a.warmup, a.steps, a.device, a.threads, a.data,
                             a.cache_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
