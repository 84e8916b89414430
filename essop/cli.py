"""`essop` command line. Each subcommand's options and work live beside the part of the project it drives:
essop.sim.commands (generate, verify, sweep), essop.training.commands (train, bench-train),
essop.training.campaign (campaign), essop.synth.commands (synth, fpga). This module only wires them together,
importing lazily so that `essop generate` does not pay for importing PyTorch."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("essop.sim.commands", "write the Verilog of an ESSOP array and its configuration JSON"),
    "verify": ("essop.sim.commands", "generate, simulate with cocotb and check bit for bit against the golden model"),
    "sweep": ("essop.sim.commands", "sweep bitstream lengths: cocotb check, estimator error, table and plot"),
    "stats": ("essop.sim.commands", "estimator statistics of the golden model against the exact product"),
    "train": ("essop.training.commands", "train ResNet-32 on CIFAR-10 with ESSOP weight updates"),
    "bench-train": ("essop.training.commands", "time one training step in fp32 and essop at several BL"),
    "fidelity": ("essop.training.fidelity", "per-layer fidelity of ESSOP weight gradients against FP32"),
    "campaign": ("essop.training.campaign", "run every row of an accuracy protocol; table and plots"),
    "synth": ("essop.synth.commands", "synthesise ESSOP and the FP16 baseline; area, timing, energy"),
    "fpga": ("essop.synth.commands", "FPGA resource use and Fmax through amaranth-boards"),
}


#: Errors that mean the user's input (configuration, data, checkpoint, device, paths) cannot be used.
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError, KeyError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the chosen subcommand, so importing one part never needs another's stack.
    if argv and argv[0] in SUBCOMMANDS:
        name = argv[0]
        module = importlib.import_module(SUBCOMMANDS[name][0])
        parser = argparse.ArgumentParser(prog=f"essop {name}", description=SUBCOMMANDS[name][1])
        module.add_arguments(name, parser)
        args = parser.parse_args(argv[1:])
        try:
            return int(module.run(name, args) or 0)
        except USER_ERRORS as exc:
            # A bad configuration, file, checkpoint or device: one line naming it, exit status 2 (as argparse
            # does for bad options). ESSOP_DEBUG=1 shows the traceback instead.
            if os.environ.get("ESSOP_DEBUG"):
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"essop {name}: error: {message}", file=sys.stderr)
            return 2
    parser = argparse.ArgumentParser(prog="essop", description="ESSOP hardware generator, golden model and training harness")
    parser.add_argument("command", choices=list(SUBCOMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in SUBCOMMANDS.items()))
    parser.parse_args(argv)
    return 2


if __name__ == "__main__":
    sys.exit(main())
