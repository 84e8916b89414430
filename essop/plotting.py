"""How the project's figures are made and written, in one place: matplotlib without a display (CI and
background campaigns have none), imported only by the commands that draw, and every figure saved alike."""
from __future__ import annotations

from pathlib import Path

__all__ = ["pyplot", "save_figure", "DPI"]

#: Resolution of every committed figure.
DPI = 110


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use: commands that draw nothing do not pay)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path) -> Path:
    """Write fig to path (making its folder), close it, and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path
