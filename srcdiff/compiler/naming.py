"""Names in generated code: the one allocator every pass uses.

A name the compiler makes never collides with a name of the user's code, of
another generated function, or of what it has handed out before.  It reads
like the user's: ``h`` -> ``dh``, a second ``x`` -> ``x_1``, the compiler's
own temporaries ``t1, t2, ...``."""

from __future__ import annotations

from collections.abc import Iterable


class Namer:
    """Hands out fresh names.  ``taken`` is shared, not copied: a pass that owns
    a function's name set allocates straight into it."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken = taken if taken is not None else set()
        self.numbered_names: set[str] = set()  # the compiler's own temporaries (t1, t2, ...)

    def fresh(self, base: str, avoid: Iterable[str] = ()) -> str:
        """``base`` itself if free, else ``base_1``, ``base_2`` ... (also avoiding ``avoid``)."""
        avoid = set(avoid)
        name, i = base, 0
        while name in self.taken or name in avoid:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name

    def numbered(self, base: str) -> str:
        """``base1``, ``base2`` ...: a temporary of the compiler's own."""
        i = 1
        while f"{base}{i}" in self.taken:
            i += 1
        name = f"{base}{i}"
        self.taken.add(name)
        self.numbered_names.add(name)
        return name

    def reset(self, names: Iterable[str]) -> None:
        """Forget every name handed out since, keeping ``names`` taken (a pass
        that runs again allocates the same names again)."""
        names = set(names)
        self.taken.clear()
        self.taken.update(names)
