"""What every ``--plot`` needs: matplotlib, loaded only when a plot is asked for.

matplotlib is optional (the ``bench`` extra): ``check_plot_path`` is called before a command starts
measuring, so a missing package or a format matplotlib cannot write is reported at once instead of
after the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allocffi.harness.core.errors import UsageError


def require_matplotlib() -> Any:
    """The pyplot module with a file-only backend; UsageError when missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError(
            "--plot needs matplotlib: pip install 'allocffi[bench]' (or pip install matplotlib)"
        ) from exc
    return plt


def check_plot_path(path: str | Path) -> None:
    """UsageError unless matplotlib is there and can write a file of this name's format."""
    plt = require_matplotlib()
    fig = plt.figure()
    try:
        formats = sorted(fig.canvas.get_supported_filetypes())
    finally:
        plt.close(fig)
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        shown = f"'.{suffix}'" if suffix else "no extension"
        raise UsageError(
            f"--plot {path}: the image format comes from the extension and {shown} is not one "
            "matplotlib writes; use .png, .svg or .pdf"
        )
