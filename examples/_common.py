"""Small helpers the example programs share: the command line, optional
plotting, and the closing ``summary:`` line.

Not an example itself.  Every example accepts

* ``--quick``: a smaller run for the tests (seconds, not tens of seconds);
  without matplotlib the plots are skipped and the summary is still printed;
* ``--out DIR``: where the PNG files go (default ``examples/out/``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "out")

# the examples run from a source checkout without installing srcdiff
sys.path.insert(0, os.path.join(HERE, ".."))


def parse_args(doc: str | None, argv: list[str] | None) -> argparse.Namespace:
    """``--quick`` and ``--out DIR``, with the first line of ``doc`` as the description."""
    first = (doc or "").strip().splitlines()[0] if doc else ""
    parser = argparse.ArgumentParser(description=first)
    parser.add_argument("--quick", action="store_true", help="a short run (for the tests)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="directory for the PNG files (default: %(default)s)")
    return parser.parse_args(argv)


def pyplot(quick: bool) -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend, or ``None``
    in quick mode when matplotlib is not installed (plots are then skipped)."""
    try:
        import matplotlib
    except ImportError:
        if quick:
            print("(matplotlib is not installed: skipping the plots)")
            return None
        raise SystemExit(
            "this example draws its plots with matplotlib: pip install -e '.[examples]' "
            "(or run with --quick to skip the plots)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: str, name: str) -> str:
    """Save ``fig`` as ``out/name`` (creating ``out``), close it, print the path."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"wrote {path}")
    return path


def summary(**values: Any) -> str:
    """Print and return the closing line: ``summary: key=value key=value ...``.
    Floats are printed with 4 significant digits."""
    parts = []
    for key, value in values.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{key}={value}")
    line = "summary: " + " ".join(parts)
    print(line)
    return line
