"""Stand-alone kernel == golden check (no pytest needed): `python scripts/cuda_check.py [--device cuda]`.

Runs the training kernel on the given device over random conv- and linear-shaped groups, both sharing modes,
the LFSR source and the shifted Sobol source, several BL, run-on and restart, and compares with `essop.golden.array.counts_reference` (and, for small
groups, with the cycle-level `EssopArrayModel`). Also checks that a whole ESSOP ResNet layer's weight
gradient on the device equals the CPU one. Exit status 1 on any mismatch. Used by scripts/gpu_check.sh on
machines without pytest.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cases", type=int, default=3, help="random cases per configuration")
    a = p.parse_args(argv)
    from essop.config import EssopConfig
    from essop.golden import fp16
    from essop.golden.array import EssopArrayModel, counts_reference
    from essop.training import counts

    rng = np.random.default_rng(2020)
    failures, checks, t0 = [], 0, time.perf_counter()
    sources = {"lfsr": {}, "sobol+shift": {"rng": "sobol", "rng_shift": True}}
    # Every source with both sharing modes, and the LFSR element words (per_element only).
    pairs = [(s, sh) for s in sources.items() for sh in ("shared", "per_element")] + \
        [(("lfsr+words", {"element_words": True}), "per_element")]
    for (source, src), sharing in pairs:
        for restart in (False, True):
            for bl in (2, 8, 16, 64):
                for case in range(a.cases):
                    P, n, m = [(200, 27, 16), (40, 144, 32), (16, 64, 10)][case % 3]
                    x = np.maximum(rng.standard_normal((P, n)) * np.exp(rng.standard_normal((P, n)) * 0.7), 0)
                    if case % 2:
                        x = -x + np.abs(rng.standard_normal((P, n)))
                    d = rng.standard_normal((P, m)) * 1e-4 * np.exp(rng.standard_normal((P, m)) * 0.7)
                    x, d = x.astype(np.float16), d.astype(np.float16)
                    cfg = EssopConfig(rows=m, cols=n, bl=bl, sharing=sharing, lfsr_restart=restart, acc_depth=P,
                                      scaling="block", output_format="count", **src)
                    ex, ed = fp16.vector_exponent(x), fp16.vector_exponent(d)
                    start = int(rng.integers(0, 1 << 20))
                    ref, _ = counts_reference(cfg, x.view(np.uint16), d.view(np.uint16), ex, ed, start_pair=start)
                    got = counts.essop_counts(x, d, ex, ed, start, cfg, device=a.device, chunk_rows=256)
                    checks += 1
                    if not np.array_equal(got.cpu().numpy(), ref):
                        failures.append(f"counts_reference {source} {sharing} restart={restart} bl={bl} case={case}")
                    if P <= 16:
                        model = EssopArrayModel(cfg)
                        model.pairs_done = start
                        r = model.process_group(x, d, ex, ed)
                        checks += 1
                        if not np.array_equal(got.cpu().numpy(), r.counts):
                            failures.append(f"process_group {source} {sharing} restart={restart} bl={bl} "
                                            f"case={case}")
    # A layer's ESSOP weight gradient: device == CPU, bit for bit.
    from essop.training.layers import EssopConv2d, EssopUpdate, attach
    for (source, src), sharing in pairs:
        grads = []
        for dev in ("cpu", a.device):
            torch.manual_seed(0)
            conv = EssopConv2d(16, 32, 3, stride=2, padding=1, bias=False).to(dev)
            attach(conv, EssopUpdate("essop", EssopConfig(bl=16, sharing=sharing, **src)))
            g = torch.Generator().manual_seed(1)
            x = torch.relu(torch.randn(8, 16, 16, 16, generator=g)).to(dev)
            up = (torch.randn(8, 32, 8, 8, generator=g) * 1e-3).to(dev)
            conv(x).backward(up)
            grads.append(conv.weight.grad.cpu())
        checks += 1
        if not torch.equal(grads[0], grads[1]):
            failures.append(f"layer gradient {source} {sharing}: {a.device} != cpu")
    dt = time.perf_counter() - t0
    print(f"kernel == golden on {a.device}: {checks - len(failures)}/{checks} checks passed in {dt:.1f} s")
    for f in failures:
        print("MISMATCH:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
