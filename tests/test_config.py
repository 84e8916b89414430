"""EssopConfig: every invalid value or combination raises with an exact message; derived facts."""
import json

import pytest

from essop.config import EssopConfig


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"rows": 0}, ValueError, "rows must be in [1, 65536], not 0"),
    ({"cols": 70000}, ValueError, "cols must be in [1, 65536], not 70000"),
    ({"rows": 4.0}, TypeError, "rows must be an int, not 4.0"),
    ({"rows": True}, TypeError, "rows must be an int, not True"),
    ({"bl": 24}, ValueError, "bl must be a power of two, not 24"),
    ({"bl": 1}, ValueError, "bl must be in [2, 1024], not 1"),
    ({"bl": 2048}, ValueError, "bl must be in [2, 1024], not 2048"),
    ({"q": 0}, ValueError, "q must be in [1, 16], not 0"),
    ({"sharing": "grouped"}, ValueError, "sharing must be one of 'shared', 'per_element', not 'grouped'"),
    ({"sharing": 1}, TypeError, "sharing must be a str, not 1"),
    ({"lfsr_width": 2}, ValueError, "lfsr_width must be in [3, 32], not 2"),
    ({"q": 12, "lfsr_width": 10, "lfsr_seed_x": 1, "lfsr_seed_d": 2}, ValueError,
     "q (12) must not exceed lfsr_width (10)"),
    ({"lfsr_steps": 17}, ValueError, "lfsr_steps must be in [1, 16], not 17"),
    ({"lfsr_seed_x": 0}, ValueError, "lfsr_seed_x must be in [1, 65535], not 0"),
    ({"lfsr_seed_d": 1 << 16}, ValueError, "lfsr_seed_d must be in [1, 65535], not 65536"),
    ({"lfsr_restart": 1}, TypeError, "lfsr_restart must be a bool, not 1"),
    ({"acc_depth": 0}, ValueError, "acc_depth must be in [1, 16777216], not 0"),
    ({"acc_depth": 4}, ValueError,
     "acc_depth > 1 (4) requires scaling='block': counts of pairs with different exponents cannot be summed"),
    ({"scaling": "layer"}, ValueError, "scaling must be one of 'per_pair', 'block', not 'layer'"),
    ({"lr_shift": 40}, ValueError, "lr_shift must be in [-32, 32], not 40"),
    ({"output_format": "fp32"}, ValueError, "output_format must be one of 'fp16', 'count', not 'fp32'"),
    ({"cell": "down"}, ValueError, "cell must be one of 'updown', 'upcount', not 'down'"),
    ({"cell": "upcount", "acc_depth": 4, "scaling": "block"}, ValueError,
     "cell='upcount' requires acc_depth=1, not 4: the pairs of a group can have different signs, and an "
     "up-counter cannot count down"),
])
def test_invalid_configurations_raise_exact_messages(kwargs, exc, message):
    with pytest.raises(exc) as info:
        EssopConfig(**kwargs)
    assert str(info.value) == message


def test_derived_facts():
    cfg = EssopConfig(bl=64, acc_depth=5, scaling="block", q=6)
    assert cfg.bl_log2 == 6
    assert cfg.count_width == (64 * 5).bit_length() + 1
    assert cfg.steps_per_cycle == 6
    assert cfg.n_generators == 2
    assert EssopConfig(rows=3, cols=4, sharing="per_element").n_generators == 7
    assert len(EssopConfig(rows=3, cols=4, sharing="per_element").lfsr_seeds_d) == 3


def test_cell_counter_widths():
    # Up/down: signed, holds +-BL * acc_depth; up-count: unsigned, holds BL, one bit fewer.
    for bl in (2, 16, 1024):
        cfg = EssopConfig(bl=bl)
        assert cfg.cell_count_width == cfg.count_width == cfg.bl_log2 + 2
        assert cfg.replace(cell="upcount").cell_count_width == cfg.bl_log2 + 1
        assert (1 << cfg.replace(cell="upcount").cell_count_width) - 1 >= bl
    # The output counts stay signed count_width bits, and the name tells the two apart.
    up = EssopConfig(cell="upcount", scaling="block")
    assert up.count_width == EssopConfig().count_width
    assert up.name.endswith("_upcount") and "upcount" not in EssopConfig().name


def test_element_width_follows_the_output_format():
    cfg = EssopConfig(rows=2, cols=2, bl=8, acc_depth=4, scaling="block", output_format="count")
    assert cfg.data_element_width == cfg.count_width
    assert cfg.replace(output_format="fp16").data_element_width == 16


def test_port_widths_and_ranges():
    """The widths every user of the array's ports reads (EssopArray's signature, the testbench, synthesis)."""
    cfg = EssopConfig(rows=5, cols=3, bl=32, acc_depth=3, scaling="block", output_format="count")
    assert (cfg.x_width, cfg.delta_width) == (16 * 3, 16 * 5)
    assert cfg.data_width == 3 * cfg.count_width
    assert cfg.replace(output_format="fp16").data_width == 3 * 16
    assert cfg.row_width == 3 and EssopConfig(rows=1).row_width == 1 and EssopConfig(rows=16).row_width == 4
    assert (cfg.exp_port_width, cfg.exp_port_min, cfg.exp_port_max) == (6, -32, 31)
    assert cfg.out_exp_width == 8


def test_json_round_trip_and_unknown_fields():
    cfg = EssopConfig(rows=3, sharing="per_element", lfsr_steps=2)
    assert EssopConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown configuration field\\(s\\): colums"):
        EssopConfig.from_dict({"colums": 3})
    with pytest.raises(TypeError):
        EssopConfig.from_dict([1])
    assert json.loads(cfg.to_json())["rows"] == 3


def test_replace_validates():
    with pytest.raises(ValueError, match="bl must be a power of two"):
        EssopConfig().replace(bl=12)
