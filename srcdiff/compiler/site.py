"""Where the compiler is: the user's function and line being compiled.

Passes say which statement they are working on; when the compiler fails
with an exception of its own, the API reports it as an internal error that
names this place, so the user knows what to send with a report."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

_state = threading.local()


def _stack() -> list[list[Any]]:
    st = getattr(_state, "stack", None)
    if st is None:
        st = _state.stack = []
    return st


@contextlib.contextmanager
def compiling(source: Any) -> Iterator[None]:
    """Within this block the compiler works on ``source`` (a frontend.Source)."""
    st = _stack()
    st.append([source, None])
    try:
        yield
    except BaseException as exc:
        if getattr(_state, "failed_exc", None) is not exc:  # the innermost place it went wrong
            _state.failed_exc = exc
            _state.failed = list(st[-1])
        raise
    finally:
        st.pop()


def at(line: int | None) -> None:
    """The compiler is now at this line of the current function."""
    st = _stack()
    if st and line:
        st[-1][1] = line


def describe() -> tuple[str | None, int | None, str]:
    """(file, line, 'function f at file.py:12') of the innermost place, or Nones."""
    st = _stack()
    failed = getattr(_state, "failed", None)
    if failed is None and not st:
        return None, None, ""
    source, line = failed if failed is not None else st[-1]
    name = getattr(source.fn, "__qualname__", None) or source.node.name
    line = line or source.node.lineno
    return source.filename, line, f"{name} at {os.path.basename(source.filename)}:{line}"


def reset() -> None:
    """Forget where the last failure happened (the stack itself unwinds by itself)."""
    _state.failed = None
    _state.failed_exc = None
