"""What the array and each of its stages have in common: one EssopConfig, checked before any port is built
from it, and, for the array's first and last stages, the ports of the array's input and output streams (spec
section 9), which they carry under the array's own names (see hdl/array.py on why the names must match)."""

from amaranth.hdl import signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.config import EssopConfig

__all__ = ["ConfiguredComponent", "OutputStreamComponent", "input_stream_ports", "output_stream_ports"]


def input_stream_ports(cfg: EssopConfig) -> dict:
    """The array's input stream: one vector pair per transfer, with block scaling's port exponents."""
    return {
        "i_valid": In(1),
        "i_ready": Out(1),
        "i_x": In(cfg.x_width),
        "i_delta": In(cfg.delta_width),
        "i_exp_x": In(signed(cfg.exp_port_width)),
        "i_exp_d": In(signed(cfg.exp_port_width)),
        "i_last": In(1),
    }


def output_stream_ports(cfg: EssopConfig) -> dict:
    """The array's output stream: one row of a group's update per transfer, with the group's exponent and flags."""
    return {
        "o_valid": Out(1),
        "o_ready": In(1),
        "o_row": Out(cfg.row_width),
        "o_data": Out(cfg.data_width),
        "o_exp": Out(signed(cfg.out_exp_width)),
        "o_last": Out(1),
        "o_nonfinite": Out(1),
        "o_saturated": Out(1),
    }


class ConfiguredComponent(wiring.Component):
    """A component made from one EssopConfig; a subclass names its ports in ``ports(cfg)``.

    ``src_loc_at``: as for Amaranth's own constructors (the array builds its stages in its constructor and
    passes 1, so an array that is never elaborated is reported where the array was made).
    """

    def __init__(self, cfg, *, src_loc_at=0):
        if not isinstance(cfg, EssopConfig):
            raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
        self._cfg = cfg
        super().__init__(self.ports(cfg), src_loc_at=1 + src_loc_at)

    def ports(self, cfg: EssopConfig) -> dict:
        raise NotImplementedError

    @property
    def config(self) -> EssopConfig:
        return self._cfg


class OutputStreamComponent(ConfiguredComponent):
    """A component that drives the array's output stream: the array itself and its output stage."""

    @property
    def row_width(self) -> int:
        """Width of o_row (EssopConfig.row_width)."""
        return self._cfg.row_width

    @property
    def data_element_width(self) -> int:
        """Bits per element of o_data (EssopConfig.data_element_width)."""
        return self._cfg.data_element_width
