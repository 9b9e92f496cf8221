"""The one exception type srcdiff raises for user-facing problems."""

from __future__ import annotations

import os


class SrcdiffError(Exception):
    """Unsupported or non-differentiable code, or a bad use of the API.

    The message names the user's file (basename) and line, quotes the
    construct, and says what to do instead.  The parts are also kept as
    attributes: ``filename``, ``lineno``, ``construct`` and ``hint``.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str | None = None,
        lineno: int | None = None,
        construct: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.construct = construct
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.filename:
            where = os.path.basename(self.filename)
            if self.lineno:
                where += f":{self.lineno}"
            where += ": "
        text = where + self.message
        if self.construct:
            text += f"\n    {self.construct.strip()}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class InternalError(Exception):
    """The compiler caught itself producing something it must not.  Never
    reaches the user as such: the API reports it as an internal SrcdiffError."""
