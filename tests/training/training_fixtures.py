"""Tiny synthetic CIFAR-10 sources, in both supported formats, written into tmp_path."""
import io
import pickle
import zipfile

import numpy as np


from essop.training.data import CLASSES


def synthetic_images(n: int, seed: int):
    """Images whose class is visible (a coloured bar at a class-dependent row) so a network can learn."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    x = rng.integers(0, 60, (n, 32, 32, 3), dtype=np.uint8)
    for i, c in enumerate(y):
        x[i, 3 * c:3 * c + 3, :, c % 3] = 250
    return x, y.astype(np.int64)


def write_batches(folder, n_train=200, n_test=50, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    x, y = synthetic_images(n_train, seed)
    half = n_train // 2
    for k, sl in enumerate((slice(0, half), slice(half, n_train)), start=1):
        rows = x[sl].transpose(0, 3, 1, 2).reshape(-1, 3072)
        with open(folder / f"data_batch_{k}", "wb") as fh:
            pickle.dump({b"data": rows, b"labels": y[sl].tolist()}, fh)
    xt, yt = synthetic_images(n_test, seed + 1)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": xt.transpose(0, 3, 1, 2).reshape(-1, 3072), b"labels": yt.tolist()}, fh)
    return folder


def write_zip(path, n_train=30, n_test=20, seed=0):
    from PIL import Image
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
            x, y = synthetic_images(n, s)
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(x[i]).save(buf, format="PNG")    # lossless, so pixels can be compared
                zf.writestr(f"{split}/{CLASSES[y[i]]}/{i:04d}.png", buf.getvalue())
    return path



