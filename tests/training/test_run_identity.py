"""run_identity: a checkpoint's options written before a field was added to EssopConfig still identify the same
run (the missing field is its default), and a real difference in the array configuration still shows."""
from dataclasses import asdict

from essop.config import EssopConfig
from essop.training.train import TrainOptions, run_identity


def test_a_checkpoint_without_a_new_config_field_is_the_same_run():
    now = asdict(TrainOptions(essop=EssopConfig(bl=16)))
    old = asdict(TrainOptions(essop=EssopConfig(bl=16)))
    del old["essop"]["cell"]               # as written before EssopConfig.cell existed
    del old["essop"]["readout"]            # ... and before EssopConfig.readout
    assert run_identity(old) == run_identity(now)
    other = asdict(TrainOptions(essop=EssopConfig(bl=32)))
    del other["essop"]["cell"]
    assert run_identity(other) != run_identity(now)
    assert run_identity(asdict(TrainOptions(essop=EssopConfig(bl=16, cell="upcount")))) != run_identity(now)
