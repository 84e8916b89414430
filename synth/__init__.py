"""Hardware evaluation of ESSOP arrays against an FP16 multiplier: an ASIC flow on open cell libraries (one
stage per module: libraries, yosys, sta, gatesim/, power, orchestrated by flow), the rows and comparison
(compare), tables and plots (report), the workload simulation (activity), FPGA builds (fpga), the
zero-periphery ceiling (ceiling) and the accuracy/efficiency picture (pareto).
docs/hardware.md has the numbers and how they were made."""
