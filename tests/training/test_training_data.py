"""CIFAR-10 readers (JPEG/PNG zip and cifar-10-batches-py), the .npz cache, errors and augmentation."""
import os

import numpy as np
import pytest
import torch

from training_fixtures import synthetic_images, write_batches, write_zip
from essop.training import data


def test_zip_and_batches_give_the_same_arrays(tmp_path):
    z = write_zip(tmp_path / "c.zip", n_train=30, n_test=20)
    b = write_batches(tmp_path / "b", n_train=30, n_test=20)
    dz = data.load_cifar10(z, tmp_path / "cache")
    db = data.load_cifar10(b, tmp_path / "cache")
    # The zip is read in name order (class folder, then file), the batches in file order: compare sorted.
    for xa, ya, xb, yb in ((dz.x_train, dz.y_train, db.x_train, db.y_train), (dz.x_test, dz.y_test, db.x_test, db.y_test)):
        oa, ob = np.lexsort((xa.reshape(len(xa), -1).sum(1), ya)), np.lexsort((xb.reshape(len(xb), -1).sum(1), yb))
        assert np.array_equal(xa[oa], xb[ob]) and np.array_equal(ya[oa], yb[ob])
    x, y = synthetic_images(30, 0)
    assert np.array_equal(db.x_train, x) and np.array_equal(db.y_train, y)
    assert dz.x_train.dtype == np.uint8 and dz.x_train.shape == (30, 32, 32, 3)


def test_cache_is_written_once_and_reused(tmp_path):
    b = write_batches(tmp_path / "b", n_train=20, n_test=10)
    cache = tmp_path / "cache"
    first = data.load_cifar10(b, cache)
    files = list(cache.glob("cifar10-*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    second = data.load_cifar10(b, cache)
    assert files[0].stat().st_mtime_ns == mtime
    assert np.array_equal(first.x_test, second.x_test)


def test_missing_source_names_the_path_and_the_fix(tmp_path, monkeypatch):
    missing = tmp_path / "nope.zip"
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 not found at .*nope\.zip \(from --data\)\. Provide"):
        data.resolve_source(missing)
    monkeypatch.setenv(data.ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=r"\(from \$ESSOP_CIFAR10\).*--data PATH or ESSOP_CIFAR10=PATH"):
        data.resolve_source(None)
    b = write_batches(tmp_path / "b", n_train=10, n_test=10)
    monkeypatch.setenv(data.ENV_VAR, str(b))
    assert data.resolve_source(None) == b


def test_bad_zip_layout_is_an_error(tmp_path):
    import zipfile
    p = tmp_path / "bad.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("train/unicorn/0001.png", b"")
    with pytest.raises(ValueError, match=r"unknown class folder 'unicorn'"):
        data.load_cifar10(p, tmp_path / "cache")


def test_augmentation_is_a_padded_crop_or_its_mirror_and_replayable():
    x = torch.from_numpy(synthetic_images(8, 3)[0])
    out = data.augment(x, data.step_generator(1, 2, 3))
    again = data.augment(x, data.step_generator(1, 2, 3))
    assert torch.equal(out, again) and out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (0, 0, 4, 4, 4, 4))
    for i in range(8):
        crops = [padded[i, oy:oy + 32, ox:ox + 32] for oy in range(9) for ox in range(9)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(1)) for c in crops)
    assert not torch.equal(out, x)


def test_normaliser_gives_zero_mean_unit_std_per_channel():
    x = synthetic_images(50, 4)[0]
    norm = data.Normaliser(x)
    t = norm(torch.from_numpy(x))
    assert t.shape == (50, 3, 32, 32)
    assert torch.allclose(t.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(t.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
