"""CIFAR-10 for the training harness: read once, cache as uint8 .npz, augment on tensors.

Sources (`resolve_source`): `--data PATH`, else the environment variable ESSOP_CIFAR10, else
../shared/data/cifar10-jpeg.zip relative to the repository. PATH is either
- a zip of JPEGs laid out train/<class>/<name>.jpg and test/<class>/<name>.jpg (decoded with Pillow), or
- a standard `cifar-10-batches-py` folder (data_batch_1..5, test_batch: pickled dicts of uint8 rows).
Labels follow the usual CIFAR-10 order, which is the alphabetical order of the class names.

Augmentation (He et al.): zero-pad 4 pixels, random 32x32 crop, random horizontal flip; then per-channel
normalisation by the training set's mean and standard deviation. Everything is batched tensor indexing;
the randomness of a batch comes from a generator seeded by (seed, epoch, step), so any step can be replayed
exactly after a resume.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "Cifar10", "load_cifar10", "resolve_source", "subset_indices", "Normaliser", "augment", "epoch_order",
    "step_generator", "CLASSES"
]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ENV_VAR = "ESSOP_CIFAR10"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.zip"
DEFAULT_CACHE = Path.home() / ".cache" / "essop"
PAD = 4


@dataclass
class Cifar10:
    """Images uint8 [N, 32, 32, 3] (HWC) and labels int64 [N]."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def resolve_source(path: str | os.PathLike | None = None) -> Path:
    """The data path from the argument, ESSOP_CIFAR10, or the default; a clear error if it is missing."""
    if path is not None:
        chosen, how = Path(path), "--data"
    elif os.environ.get(ENV_VAR):
        chosen, how = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        chosen, how = DEFAULT_SOURCE, "the default location"
    if not chosen.exists():
        raise FileNotFoundError(
            f"CIFAR-10 not found at {chosen} (from {how}). Provide the JPEG zip (train/<class>/*.jpg, "
            f"test/<class>/*.jpg) or a cifar-10-batches-py folder with --data PATH or {ENV_VAR}=PATH.")
    return chosen


def _read_zip(path: Path) -> Cifar10:
    from PIL import Image

    parts: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")))
        for name in names:
            bits = name.split("/")
            if len(bits) < 3 or bits[-3] not in parts:
                raise ValueError(f"{path}: unexpected member {name!r}; expected train|test/<class>/<file>")
            split, cls = bits[-3], bits[-2]
            if cls not in CLASSES:
                raise ValueError(f"{path}: unknown class folder {cls!r} in {name!r}; classes are {', '.join(CLASSES)}")
            with Image.open(io.BytesIO(zf.read(name))) as img:
                arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
            if arr.shape != (32, 32, 3):
                raise ValueError(f"{path}: {name!r} is {arr.shape[1]}x{arr.shape[0]}, not 32x32")
            parts[split][0].append(arr)
            parts[split][1].append(CLASSES.index(cls))
    for split, (xs, _) in parts.items():
        if not xs:
            raise ValueError(f"{path}: no {split}/<class>/*.jpg images in the zip")
    return Cifar10(*(f(parts[s][i]) for s in ("train", "test") for i, f in
                     ((0, lambda v: np.stack(v)), (1, lambda v: np.asarray(v, dtype=np.int64)))))


def _read_batches(folder: Path) -> Cifar10:
    def load(names):
        xs, ys = [], []
        for nm in names:
            f = folder / nm
            if not f.exists():
                raise FileNotFoundError(f"{folder}: missing {nm} of a cifar-10-batches-py folder")
            with open(f, "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            data = np.asarray(d[b"data"], dtype=np.uint8)
            xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(np.asarray(d[b"labels"], dtype=np.int64))
        return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)

    train = sorted(p.name for p in folder.glob("data_batch_*"))
    if not train:
        raise FileNotFoundError(f"{folder}: no data_batch_* files; not a cifar-10-batches-py folder")
    return Cifar10(*load(train), *load(["test_batch"]))


def load_cifar10(path: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None) -> Cifar10:
    """Decode the source once and keep a uint8 .npz in cache_dir (default ~/.cache/essop), keyed by the
    source's absolute path, size and modification time."""
    src = resolve_source(path).resolve()
    st = src.stat()
    key = hashlib.sha256(f"{src}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    cached = cache / f"cifar10-{key}.npz"
    if cached.exists():
        try:
            with np.load(cached) as z:
                return Cifar10(z["x_train"], z["y_train"], z["x_test"], z["y_test"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass                        # a damaged cache is rebuilt from the source below
    try:
        data = _read_batches(src) if src.is_dir() else _read_zip(src)
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, KeyError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        what = "cifar-10-batches-py folder" if src.is_dir() else "CIFAR-10 zip"
        raise ValueError(f"{src} is not a readable {what} ({type(exc).__name__}: {exc})") from None
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    os.replace(tmp, cached)
    return data


def subset_indices(n_total: int, n: int | None, seed: int = 0) -> np.ndarray:
    """The first n of a fixed permutation (all indices, in order, when n is None)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    if n < 1:
        raise ValueError(f"subset must be >= 1, not {n!r}")
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


class Normaliser:
    """Per-channel (x / 255 - mean) / std, with mean and std of the training images."""

    def __init__(self, x_train: np.ndarray):
        # Integer sums in chunks: exact, and no float copy of the whole training set in memory.
        flat = x_train.reshape(-1, 3)
        s = np.zeros(3, dtype=np.int64)
        s2 = np.zeros(3, dtype=np.int64)
        for i in range(0, len(flat), 1 << 20):
            c = flat[i:i + (1 << 20)].astype(np.int64)
            s += c.sum(0)
            s2 += (c * c).sum(0)
        n = len(flat)
        mean = s / n
        std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        self.mean = torch.tensor(mean / 255.0, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std / 255.0, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, batch_hwc_u8: torch.Tensor) -> torch.Tensor:
        x = batch_hwc_u8.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


def step_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + step)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of an epoch, a function of (seed, epoch) only."""
    return torch.randperm(n, generator=step_generator(seed, epoch, -1))


def augment(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Pad 4 + random 32x32 crop + random horizontal flip of uint8 [B, 32, 32, 3] images, on the batch's
    device. The random draws come from the CPU generator `gen`, so a GPU-resident batch gets exactly the
    crops and flips the same step gets on the CPU."""
    B, H, W, _ = batch.shape
    padded = torch.nn.functional.pad(batch, (0, 0, PAD, PAD, PAD, PAD))
    oy = torch.randint(0, 2 * PAD + 1, (B,), generator=gen)
    ox = torch.randint(0, 2 * PAD + 1, (B,), generator=gen)
    flip = torch.rand(B, generator=gen) < 0.5
    cols = ox[:, None] + torch.arange(W)[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    rows = oy[:, None] + torch.arange(H)[None, :]
    dev = batch.device
    return padded[torch.arange(B, device=dev)[:, None, None], rows.to(dev)[:, :, None], cols.to(dev)[:, None, :]]
