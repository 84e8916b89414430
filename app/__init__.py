"""The application layer: the `essop` command line over the project's rooms.

cli: the dispatcher (one line per subcommand, lazy imports so that `essop generate` does not pay for
PyTorch). options: the EssopConfig options every command shares, made from the dataclass. sweep and tables:
the BL sweep, its column providers and its Markdown/CSV/PNG output. array_commands (generate, verify, sweep,
stats), training_commands (train, bench-train, fidelity, campaign) and synth_commands (synth, fpga): each
command's options and the call into the room that does the work (essop.sim, essop.golden, essop.training,
essop.synth). Nothing below this layer imports it.
"""
