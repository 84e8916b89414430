"""Gate-level simulation of a synthesised netlist for per-net switching activity.

Three readers and the simulator, one file each:

| module | reads / does |
|---|---|
| ``liberty`` | Liberty ``.lib``: cells, pins, functions, flip-flops (the ``ff`` group), units, clock gating |
| ``netlist`` | Yosys' structural Verilog: modules, ports, instances, assigns |
| ``vcd`` | the RTL simulation's VCD (pyvcd): per-cycle samples, the design-wide toggle rate |
| ``simulate`` | evaluates every gate over every cycle; each net's toggle rate; the D/Q self-check |
"""
