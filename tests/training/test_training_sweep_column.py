"""The sweep's opt-in accuracy column trains the point's configuration and reports its test accuracy."""
import essop.app.sweep as sc
from essop.app.sweep import SweepPoint, providers
from essop.config import EssopConfig
from training_fixtures import write_batches


def test_accuracy_column_is_registered_opt_in():
    p = providers()["accuracy"]
    assert p.default is False and p.func is sc.accuracy_column


def test_accuracy_column_trains_the_points_configuration(tmp_path, monkeypatch):
    data = write_batches(tmp_path / "b", n_train=64, n_test=32)
    monkeypatch.setenv("ESSOP_CIFAR10", str(data))
    monkeypatch.setattr(sc, "SWEEP_PROTOCOL", {"epochs": 1, "subset": 64, "test_subset": 32, "seed": 0})
    cfg = EssopConfig(bl=4, q=6)
    row = sc.accuracy_column(SweepPoint(cfg=cfg, build_dir=tmp_path / "pt", seed=0,
                                               options={"cache_dir": str(tmp_path / "cache")}))
    assert 0.0 <= row["test acc (%) [short protocol]"] <= 100.0
    saved = (tmp_path / "pt" / "train" / "config.json").read_text()
    assert '"bl": 4' in saved and '"q": 6' in saved
