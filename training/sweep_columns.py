"""Accuracy column for `essop sweep` (opt-in: `essop sweep --columns cocotb estimator accuracy`).

Each point trains ResNet-32 with ESSOP weight updates of the point's configuration (BL, q, sharing, LFSR
fields) on a short protocol — SWEEP_PROTOCOL below: a fixed subset of CIFAR-10 (data from $ESSOP_CIFAR10 or the
default path, as `essop train`), one PyTorch thread per point so that `--jobs` points share the cores — and
reports the final test accuracy. It ranks configurations against each other on that protocol only; it is not
the accuracy of a full 160-epoch run (docs/results.md)."""
from __future__ import annotations

from essop.sim.sweep import SweepPoint, register_column

#: The short protocol (per point): epochs, training images, test images, seed.
SWEEP_PROTOCOL = {"epochs": 2, "subset": 1000, "test_subset": 500, "seed": 0}


def accuracy_column(point: SweepPoint) -> dict:
    from essop.training.train import TrainOptions, train

    summary = train(TrainOptions(mode="essop", essop=point.cfg, epochs=SWEEP_PROTOCOL["epochs"],
                                 subset=SWEEP_PROTOCOL["subset"], test_subset=SWEEP_PROTOCOL["test_subset"],
                                 seed=SWEEP_PROTOCOL["seed"], threads=1,
                                 cache_dir=point.options.get("cache_dir"), out=str(point.build_dir / "train"),
                                 progress=False))
    final = summary["final"]
    return {"test acc (%) [short protocol]": round(100 * final["test_acc"], 2),
            "train wall (s)": round(final["wall_s"], 1)}


register_column("accuracy", accuracy_column, default=False,
                help="ResNet-32 test accuracy after a short ESSOP training protocol "
                     f"({SWEEP_PROTOCOL['epochs']} epochs on {SWEEP_PROTOCOL['subset']} CIFAR-10 images; slow)")
