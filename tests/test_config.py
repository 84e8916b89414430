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
    # A step count sharing a factor with 2**w - 1 visits only part of the period (65535 = 3 * 5 * 17 * 257).
    ({"lfsr_steps": 3}, ValueError,
     "lfsr_steps (3) shares the factor 3 with the LFSR period 2**16 - 1 = 65535: the stepped generator would "
     "visit only 1/3 of its states; use a step count coprime with 65535 (left unset, the step rule gives 8)"),
    ({"lfsr_steps": 10, "q": 10}, ValueError,
     "lfsr_steps (10) shares the factor 5 with the LFSR period 2**16 - 1 = 65535: the stepped generator would "
     "visit only 1/5 of its states; use a step count coprime with 65535 (left unset, the step rule gives 11)"),
    ({"lfsr_steps": 6, "q": 4, "lfsr_width": 6, "lfsr_seed_x": 1, "lfsr_seed_d": 2}, ValueError,
     "lfsr_steps (6) shares the factor 3 with the LFSR period 2**6 - 1 = 63: the stepped generator would "
     "visit only 1/3 of its states; use a step count coprime with 63 (left unset, the step rule gives 4)"),
    # (w, q) = (6, 6): no step count in [6, 6] is coprime with 63, the rule gives 8, and 8 may be given.
    ({"lfsr_steps": 9, "q": 6, "lfsr_width": 6, "lfsr_seed_x": 1, "lfsr_seed_d": 2}, ValueError,
     "lfsr_steps must be in [1, 8], not 9"),
    ({"rng": "halton"}, ValueError, "rng must be one of 'lfsr', 'sobol', not 'halton'"),
    ({"rng": None}, TypeError, "rng must be a str, not None"),
    ({"rng_shift": 1}, TypeError, "rng_shift must be a bool, not 1"),
    ({"element_words": 1}, TypeError, "element_words must be a bool, not 1"),
    ({"element_words": True}, ValueError, "element_words=True is a way to build LFSR per_element generators, not "
                                          "sharing='shared' with rng='lfsr'"),
    ({"element_words": True, "sharing": "per_element", "rng": "sobol"}, ValueError,
     "element_words=True is a way to build LFSR per_element generators, not sharing='per_element' with "
     "rng='sobol' (Sobol per_element already is one generator with a word per element)"),
    ({"rng_shift_seed": 0}, ValueError, "rng_shift_seed must be in [1, 131071], not 0"),
    ({"rng_shift_seed": 128, "q": 3}, ValueError, "rng_shift_seed must be in [1, 127], not 128"),
    ({"lfsr_seed_x": 0}, ValueError, "lfsr_seed_x must be in [1, 65535], not 0"),
    ({"lfsr_seed_d": 1 << 16}, ValueError, "lfsr_seed_d must be in [1, 65535], not 65536"),
    ({"lfsr_restart": 1}, TypeError, "lfsr_restart must be a bool, not 1"),
    ({"clock_gating": "yes"}, TypeError, "clock_gating must be a bool, not 'yes'"),
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
    ({"readout": "double"}, ValueError, "readout must be one of 'shift', 'shadow', not 'double'"),
    ({"readout": None}, TypeError, "readout must be a str, not None"),
])
def test_invalid_configurations_raise_exact_messages(kwargs, exc, message):
    with pytest.raises(exc) as info:
        EssopConfig(**kwargs)
    assert str(info.value) == message


def test_derived_facts():
    cfg = EssopConfig(bl=64, acc_depth=5, scaling="block", q=6)
    assert cfg.bl_log2 == 6
    assert cfg.count_width == (64 * 5).bit_length() + 1
    # q = 6 shares the factor 3 with 2**16 - 1: the step rule takes the next coprime count, 7.
    assert cfg.steps_per_cycle == 7
    assert EssopConfig(q=8).steps_per_cycle == 8 and EssopConfig(q=6, lfsr_steps=1).steps_per_cycle == 1
    assert EssopConfig(q=6, lfsr_width=6, lfsr_seed_x=1, lfsr_seed_d=2, lfsr_steps=8).steps_per_cycle == 8
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


def test_readout_names_its_build():
    """The shadow bank changes the RTL, so it has its own build and cache name; the default's is unchanged."""
    shadow = EssopConfig(readout="shadow", cell="upcount")
    assert shadow.name == EssopConfig(cell="upcount").name + "_shadow"
    assert "shadow" not in EssopConfig().name
    assert EssopConfig.from_json(shadow.to_json()) == shadow


def test_clock_gating_is_named_and_serialised():
    # Its own build folder and cache key: a gated netlist is another design.
    gated = EssopConfig(cell="upcount", clock_gating=True)
    assert gated.name.endswith("_upcount_cg") and "_cg" not in EssopConfig().name
    assert EssopConfig.from_json(gated.to_json()) == gated and gated.to_dict()["clock_gating"] is True


def test_random_source_facts():
    """Periods, direction words, per-element digital shifts and the per-pair shift register's parameters."""
    lfsr, sobol = EssopConfig(), EssopConfig(rng="sobol", q=6, sharing="per_element", rows=3, cols=5)
    assert lfsr.rng_period == 65535 and sobol.rng_period == 64
    assert lfsr.rng_words_x == (0,) and EssopConfig(sharing="per_element", rows=2).rng_words_d == (0, 0)
    assert sobol.rng_words_x == (0, 32, 16, 48, 8) and sobol.rng_words_d == (0, 32, 16)
    assert EssopConfig(rng="sobol").rng_words_x == (0,)
    assert sobol.sobol_directions_x == (32, 16, 8, 4, 2, 1)
    assert sobol.sobol_directions_d == (32, 48, 40, 60, 34, 51)        # m = 1, 3, 5, 15, 17, 51
    # The shift register: width >= 2q coprime with lfsr_width (periods without a common factor), 2q fresh bits.
    assert (lfsr.rng_shift_width, lfsr.rng_shift_steps) == (17, 16)
    assert (sobol.rng_shift_width, sobol.rng_shift_steps) == (13, 12)
    assert EssopConfig(q=6, lfsr_width=13, lfsr_seed_x=1, lfsr_seed_d=2).rng_shift_width == 12
    assert EssopConfig(q=16).rng_shift_width == 32                     # no width in [32, 32] coprime with 16
    assert EssopConfig(q=1, lfsr_width=3, lfsr_seed_x=1, lfsr_seed_d=2).rng_shift_width == 4
    assert EssopConfig(rng="sobol", rng_shift=True, rng_shift_seed=5).name.endswith("_sobol_shift_z5")
    assert EssopConfig().name == "essop_16x16_bl16_q8_shared_w16_d1_per_pair_fp16"
    # LFSR element words: the registers of shared generators, the words of Sobol per_element, its own name.
    words = EssopConfig(q=6, sharing="per_element", element_words=True, rows=3, cols=5)
    assert words.n_generators == 2 and len(words.lfsr_seeds_x) == len(words.lfsr_seeds_d) == 1
    assert words.rng_words_x == sobol.rng_words_x and words.rng_words_d == sobol.rng_words_d
    assert words.rng_label == "lfsr+words" and words.replace(rng_shift=True).rng_label == "lfsr+words+shift"
    assert words.name.endswith("_xw") and words.name != words.replace(element_words=False).name


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
