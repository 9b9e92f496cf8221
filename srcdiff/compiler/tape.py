"""Tape planning for the reverse transform: which values the backward sweep
reads that the forward pass overwrites, and so must be pushed on the stack
(or recomputed, or not saved at all because they never change).

A mixin of ``Reverse``: it reads ``fn``, ``needed`` (the primal names the
backward code reads), ``saved_names`` (helper calls' saved values),
``bwd_reads`` and ``ctx``, and fills ``pushed``, ``none_init`` and ``remat``.
"""

from __future__ import annotations

import ast

from . import ir


class TapePlanning:
    def _targets(self, s) -> list[str]:
        if isinstance(s, ir.Assign):
            if s.counter:
                return []
            t = [s.target]
            if id(s) in self.saved_names:
                t.append(self.saved_names[id(s)])
            return t
        if isinstance(s, ir.Unpack):
            return list(s.targets)
        return []

    def _needs_stack(self) -> bool:
        self._plan_pushes()
        return bool(self.pushed) or any(self._saves_overwritten(s) for s in ir.walk(self.fn.body))

    def _saves_overwritten(self, s) -> bool:
        """Does ``x[i] = v`` save what it overwrites?  When the backward code of
        a statement that ran before it reads ``x`` (the forward order: earlier
        statements, and every statement of an enclosing loop), which must see
        the old values again."""
        if not isinstance(s, ir.SetItem) or s.target not in self.needed:
            return False
        before = self._ran_before.get(id(s))
        if before is None:
            before = self._ran_before[id(s)] = self._statements_before(s)
        return any(s.target in self.bwd_reads.get(i, ()) for i in before)

    def _statements_before(self, target) -> set[int]:
        """ids of the statements whose backward code runs after ``target``'s."""
        order: list = []
        loops: list = []

        def visit(stmts, enclosing):
            for st in stmts:
                order.append(st)
                if st is target:
                    loops.extend(enclosing)
                if isinstance(st, ir.If):
                    visit(st.body, enclosing)
                    visit(st.orelse, enclosing)
                elif isinstance(st, (ir.For, ir.While)):
                    visit(st.body, enclosing + [st])

        visit(self.fn.body, [])
        k = next(i for i, st in enumerate(order) if st is target)
        out = {id(st) for st in order[:k]}
        for loop in loops:
            out |= {id(st) for st in ir.walk(loop.body)}
        out.discard(id(target))
        return out

    def _plan_pushes(self) -> None:
        self.pushed = {}
        self.none_init = {}
        needed = self.needed | {self.saved_names[i] for i in self.saved_names}
        defined = set(self.fn.params)

        invariant = self._loop_invariant()
        self.remat = self._rematerializable(needed)
        for stmts in self.remat.values():
            invariant |= {id(x) for x in stmts}

        def walk(stmts, in_loop: bool, top_id=None):
            for s in stmts:
                tid = top_id if top_id is not None else id(s)
                if isinstance(s, (ir.Assign, ir.Unpack)):
                    ts = self._targets(s)
                    saved = [t for t in ts if t in needed and (in_loop or t in defined) and id(s) not in invariant]
                    if saved:
                        self.pushed[id(s)] = saved
                    defined.update(ts)
                elif isinstance(s, ir.If):
                    before = set(defined)
                    walk(s.body, in_loop, tid)
                    after_body = set(defined)
                    defined.clear()
                    defined.update(before)
                    walk(s.orelse, in_loop, tid)
                    defined.update(after_body)
                elif isinstance(s, (ir.For, ir.While)):
                    assigned = self._assigned_in(s.body)
                    fresh = sorted(n for n in assigned if n in needed and n not in defined)
                    # (only names a statement in the loop actually saves need a first value)
                    if fresh:
                        self.none_init.setdefault(id(s), []).extend(fresh)
                    defined.update(assigned)
                    if isinstance(s, ir.For):
                        defined.add(s.target)
                    walk(s.body, True, tid)

        walk(self.fn.body, False)
        pushed_names = {n for names in self.pushed.values() for n in names}
        for k in list(self.none_init):
            self.none_init[k] = [n for n in self.none_init[k] if n in pushed_names]

    def _assign_counts(self) -> dict[str, int]:
        """How many statements write each name (a parameter counts once)."""
        counts = dict.fromkeys(self.fn.params, 1)
        for s in ir.walk(self.fn.body):
            for t in _all_targets(self, s):
                counts[t] = counts.get(t, 0) + 1
        return counts

    def _assigned_in(self, stmts) -> set[str]:
        """Every name the statements (and their nested blocks) write."""
        return {t for s in ir.walk(stmts) for t in _all_targets(self, s)}

    def _rematerializable(self, needed: set[str]) -> dict[int, list]:
        """Values a ``for`` loop's backward sweep recomputes instead of saving:
        pure statements at the top level of the loop body that read only
        values the loop does not change, its index, and other such values
        (``x_t = xs[t]``).  Maps id(loop) -> statements to replay, in order."""
        out: dict[int, list] = {}
        counts = self._assign_counts()
        for loop in ir.walk(self.fn.body):
            if not isinstance(loop, ir.For) or loop.counter:
                continue
            assigned = self._assigned_in(loop.body)
            ok = {loop.target}
            chosen = []
            for st in loop.body:
                if not isinstance(st, ir.Assign) or st.op is None or st.counter or not _pure(st) \
                        or counts.get(st.target) != 1 or id(st) in self.saved_names:
                    continue
                names = {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
                if all(n in ok or n not in assigned for n in names):
                    ok.add(st.target)
                    if names & ok:  # reads the index: differs per iteration, so replay it
                        chosen.append(st)
            # replay only what the backward sweep reads (and what those read)
            want = {st.target for st in chosen if st.target in needed}
            for st in reversed(chosen):
                if st.target in want:
                    want |= {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
            keep = [st for st in chosen if st.target in want]
            if keep:
                out[id(loop)] = keep
        return out

    def _loop_invariant(self) -> set[int]:
        """Pure statements inside loops whose operands no enclosing loop
        changes: they store the same value in every iteration, so the value
        never needs saving.  (Names assigned twice are excluded.)"""
        out: set[int] = set()
        counts = self._assign_counts()

        def visit(stmts, outer_assigned):
            for s in stmts:
                if isinstance(s, ir.Assign) and outer_assigned is not None and s.op is not None and \
                        counts.get(s.target) == 1 and not s.counter and _pure(s):
                    names = {n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)}
                    if not names & outer_assigned:
                        out.add(id(s))
                elif isinstance(s, ir.If):
                    visit(s.body, outer_assigned)
                    visit(s.orelse, outer_assigned)
                elif isinstance(s, (ir.For, ir.While)):
                    if outer_assigned is None:
                        assigned = self._assigned_in(s.body)
                        if isinstance(s, ir.For):
                            assigned.add(s.target)
                        visit(s.body, assigned)
                    else:
                        visit(s.body, outer_assigned)

        visit(self.fn.body, None)
        return out



def _all_targets(rev: TapePlanning, s) -> list[str]:
    """Every name statement ``s`` writes, loop counters and lists included."""
    out = rev._targets(s)
    if isinstance(s, ir.Assign) and s.counter:
        out = [s.target]
    elif isinstance(s, ir.For):
        out = [s.target]
    elif isinstance(s, ir.Append):
        out = [s.lst]
    elif isinstance(s, ir.SetItem):
        out = [s.target]
    return out


def _pure(s: ir.Assign) -> bool:
    """Does evaluating ``s`` again give the same value, with no side effect?"""
    k = s.op.kind
    if k in ("rule", "copy", "const", "tuple", "list", "dict", "cast"):
        return True
    return k == "nondiff" and not isinstance(s.value, ast.Call)


