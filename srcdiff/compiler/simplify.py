"""Simplify: remove the copies the reverse pass leaves behind.

Adjoint rules such as ``d(a + b)/da = g`` produce copies (``dx3 = dt1``).
This pass, run on the generated function, deletes self-assignments and
propagates copies inside one straight-line block when that is safe:

* the copy's source was defined just before, used nowhere else, and is a
  compiler temporary: the definition is renamed to the copy's target (so the
  user's name survives: ``dx3 = dt2 * 2 * t1``);
* otherwise, when the copy's target is only read later in the same block and
  nothing reassigns the source meanwhile, its reads use the source directly.

Nothing crosses a loop or branch boundary, so loop-carried adjoints are never
touched.

It also folds the numbers the seed and the rules produce (``dt = 1.0``,
``dt2 = dt * 0.5``) into the statements that use them, when that removes an
operation: ``dx3 = dt2 * 2 * t1`` becomes ``dx3 = t1``, and
``(dt * X).sum(axis=0)`` becomes ``X.sum(axis=0)``.  A rewrite that would
only replace a name by a number (``-0.03125 * Y``) is not made: the name
says where the number comes from.
"""

from __future__ import annotations

import ast
import copy
import re
from collections import Counter

from ..rules import TABLE

_TEMP = re.compile(r"^d_?t\d+(_\d+)?$")


def _count(node: ast.AST) -> Counter:
    c: Counter = Counter()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            c[n.id] += 1
    return c


def _names(node: ast.AST) -> list[ast.Name]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Name)]


def _stores(node: ast.AST, name: str) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store):
            return True
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and n.target.id == name:
            return True
    return False


def _is_comment(s: ast.stmt) -> bool:
    return isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Name) and \
        s.value.func.id == "__srcdiff_comment__"


class _Replace(ast.NodeTransformer):
    def __init__(self, name: str, value: ast.expr) -> None:
        self.name, self.value = name, value

    def visit_Name(self, node: ast.Name):
        return self.value if node.id == self.name else node


def _replace_name(tree: ast.expr, name: str, value: ast.expr) -> ast.expr:
    return _Replace(name, value).visit(tree)


def _is_copy(s: ast.stmt) -> tuple[str, str] | None:
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) \
            and isinstance(s.value, ast.Name):
        return s.targets[0].id, s.value.id
    return None


def simplify(fn: ast.FunctionDef, protect: set[str] = frozenset(), floats: set[str] = frozenset(),
             adjoints: set[str] = frozenset()) -> ast.FunctionDef:
    """Simplify ``fn`` in place; names in ``protect`` are never removed.
    ``floats`` are the names known to hold floats (so ``1.0 * x`` is ``x``),
    ``adjoints`` the generated adjoint names (unused ones made of numbers go)."""
    changed = True
    while changed:
        counts = _count(fn)
        changed = _block(fn.body, counts, protect)
        if not changed and floats:
            changed = _Folder(floats).block(fn.body, top=True) or _drop_unused(fn, adjoints - set(protect))
    while _inline(fn.body, _count(fn)) or _push_negation(fn.body, _count(fn)):
        pass
    return fn


def _push_negation(stmts: list[ast.stmt], counts: Counter) -> bool:
    """``dt3 = -da; dc += dt3 * v; dv += dt3 * c`` -> ``dc -= da * v; dv -= da * c``:
    an adjoint temporary that only negates, and only scales what is added
    into other adjoints, goes into the sign of the additions."""
    changed = False
    for s in stmts:
        for field in ("body", "orelse"):
            inner = getattr(s, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt) and \
                    _push_negation(inner, counts):
                changed = True
    i = 0
    while i < len(stmts):
        if _push_negation_at(stmts, i, counts):
            changed = True
        else:
            i += 1
    return changed


def _push_negation_at(stmts: list[ast.stmt], i: int, counts: Counter) -> bool:
    s = stmts[i]
    if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) and
            _TEMP.match(s.targets[0].id) and isinstance(s.value, ast.UnaryOp) and
            isinstance(s.value.op, ast.USub) and isinstance(s.value.operand, ast.Name)):
        return False
    t, e = s.targets[0].id, s.value.operand.id
    uses, left = [], counts[t] - 1
    for u in stmts[i + 1:]:
        if not left:
            break
        if isinstance(u, ast.Assign) and isinstance(u.value, ast.Name) and u.value.id == e:
            break  # another name for e's array (an adjoint taking it over): adding into it changes e
        n = _count(u)[t]
        if not n:
            if _stores(u, e) or isinstance(u, (ast.For, ast.While, ast.If)) and e in _count(u):
                break
            continue
        if n != 1 or not (isinstance(u, ast.AugAssign) and isinstance(u.op, (ast.Add, ast.Sub)) and
                          isinstance(u.value, ast.BinOp) and isinstance(u.value.op, ast.Mult) and
                          t in (getattr(u.value.left, "id", None), getattr(u.value.right, "id", None))):
            break
        uses.append(u)
        left -= 1
        if _stores(u, e):
            break
    if left or not uses:
        return False
    for u in uses:
        side = "left" if getattr(u.value.left, "id", None) == t else "right"
        setattr(u.value, side, ast.Name(id=e, ctx=ast.Load()))
        u.op = ast.Sub() if isinstance(u.op, ast.Add) else ast.Add()
    del stmts[i]
    counts[e] += len(uses) - 1
    counts[t] = 0
    return True


# -- temporaries --------------------------------------------------------------
_FORWARD_TEMP = re.compile(r"^t\d+(_\d+)?$")
_PURE_BUILTINS = {"float", "int", "abs", "len", "min", "max", "sum", "range", "reversed", "tuple", "list", "bool"}


def _plain_calls(node: ast.AST) -> bool:
    """No call in ``node`` can run the user's code (which might change an array in place)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id not in _PURE_BUILTINS:
            return False
    return True


def _inline(stmts: list[ast.stmt], counts: Counter) -> bool:
    """Put a temporary read exactly once back into the statement reading it:

    * a forward temporary, within one stretch of code between comments:
      ``t2 = t1 + b1; h = np.tanh(t2)`` becomes ``h = np.tanh(t1 + b1)``, so
      the forward pass reads like the code it came from;
    * an adjoint temporary that is only added into another adjoint, within
      the same stretch (``dt1 = da * x; dk -= dt1`` becomes ``dk -= da * x``);
      other adjoint temporaries stay, one line per operation's adjoint, as
      the chain rule goes.

    Only across statements that cannot change what the expression reads.
    Makes every such change in one sweep: moving an expression keeps the
    other names' counts, and the temporary is gone (``counts`` stays right)."""
    changed = False
    for s in stmts:
        for field in ("body", "orelse"):
            inner = getattr(s, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt) and _inline(inner, counts):
                changed = True
    i = 0
    while i < len(stmts):
        if _inline_at(stmts, i, counts):
            changed = True  # stmts[i] went into a later statement; look at the new stmts[i]
        else:
            i += 1
    return changed


def _inline_at(stmts: list[ast.stmt], i: int, counts: Counter) -> bool:
    """Inline the temporary ``stmts[i]`` defines into its one reader, if it may."""
    s = stmts[i]
    if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)):
        return False
    t = s.targets[0].id
    if counts[t] != 2 or not (_FORWARD_TEMP.match(t) or _TEMP.match(t)) or not _plain_calls(s.value):
        return False
    reads = {n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)}
    for j in range(i + 1, len(stmts)):
        u = stmts[j]
        if _is_comment(u):
            break
        if t in _count(u):
            ok = isinstance(u, (ast.Assign, ast.AugAssign, ast.Return)) and _plain_calls(u)
            if not _FORWARD_TEMP.match(t):
                # (arithmetic only: a reduction keeps its own line)
                ok = ok and isinstance(u, ast.AugAssign) and \
                    not any(isinstance(n, ast.Call) for n in ast.walk(s.value))
            if ok:
                _Replace(t, s.value).visit(u)
                del stmts[i]
                counts[t] = 0
                return True
            return False
        # between definition and use: assignments of other names and appends, none of them
        # calling a method of something the expression reads (it might change it in place)
        if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and
               any(isinstance(m, ast.Name) and m.id in reads for m in ast.walk(n.func.value))
               for n in ast.walk(u)):
            break
        if isinstance(u, ast.Assign) and len(u.targets) == 1 and isinstance(u.targets[0], ast.Name) and \
                u.targets[0].id not in reads and _plain_calls(u.value):
            continue
        if isinstance(u, ast.Expr) and isinstance(u.value, ast.Call) and \
                isinstance(u.value.func, ast.Attribute) and u.value.func.attr == "append" and \
                all(isinstance(a, ast.Name) for a in u.value.args):
            continue
        return False
    return False


# -- numbers ----------------------------------------------------------------
_ARITH = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
          ast.Div: lambda a, b: a / b}
def _view_call(attr: str) -> bool:
    """May ``np.attr(...)`` or ``x.attr(...)`` return a view of an argument (its rule's facts)?"""
    return attr == "view" or TABLE.numpy_facts(attr).result == "view" or TABLE.member_facts(attr).result == "view"


def _number(e: ast.AST) -> bool:
    return isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool)


class _Folder:
    """Fold the numbers of straight-line code into the statements using them."""

    def __init__(self, floats: set[str]) -> None:
        self.floats = floats

    def block(self, stmts: list[ast.stmt], top: bool = False) -> bool:
        env: dict[str, float] = {}
        changed = False
        for i, s in enumerate(stmts):
            if isinstance(s, (ast.For, ast.While, ast.If)):
                for field in ("body", "orelse"):
                    changed |= self.block(getattr(s, field))
                for n in ast.walk(s):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                        env.pop(n.id, None)
                    elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
                        env.pop(n.target.id, None)
                continue
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
                a = s.targets[0].id
                if _number(s.value):
                    env[a] = s.value.value
                    continue
                folded = self.fold(s.value, env)
                env.pop(a, None)
                if folded is None:
                    continue
                if _number(folded):
                    if a not in _count(s.value):
                        env[a] = folded.value  # keep the statement: its name documents the number
                    continue
                if _may_alias(folded) and not _alias_safe(a, stmts[i + 1:], top):
                    continue
                s.value = folded
                changed = True
            elif isinstance(s, ast.AugAssign):
                folded = self.fold(s.value, env)
                if isinstance(s.target, ast.Name):
                    env.pop(s.target.id, None)
                if folded is not None and not _number(folded):
                    s.value = folded
                    changed = True
            else:
                for n in ast.walk(s):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                        env.pop(n.id, None)
        return changed

    def fold(self, value: ast.expr, env: dict[str, float]) -> ast.expr | None:
        """``value`` with the known numbers put in and folded away, or None
        when that leaves a number where a name was (or changes nothing)."""
        if not any(isinstance(n, ast.Name) and n.id in env for n in ast.walk(value)):
            return None
        new = _Substitute(env).visit(copy.deepcopy(value))
        new = self._fold(new)
        if _number(new):
            return new
        if _operations(new) >= _operations(value):
            return None  # nothing saved: keep the name
        if any(_marked(n) and not _small_whole(n.value) for n in ast.walk(new)):
            return None  # a number like 0.03125 would replace the name saying where it comes from
        return new

    def _fold(self, e: ast.expr) -> ast.expr:
        for field, v in ast.iter_fields(e):
            if isinstance(v, ast.expr):
                setattr(e, field, self._fold(v))
            elif isinstance(v, list):
                setattr(e, field, [self._fold(x) if isinstance(x, ast.expr) else x for x in v])
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub) and _number(e.operand):
            return _const(-e.operand.value, _marked(e.operand))
        if not isinstance(e, ast.BinOp) or type(e.op) not in _ARITH:
            return e
        left, right = e.left, e.right
        if _number(left) and _number(right):
            try:
                v = _ARITH[type(e.op)](left.value, right.value)
            except ArithmeticError:
                return e
            return _const(v, _marked(left) or _marked(right))
        # x * 1.0, 1.0 * x, x / 1.0 -> x ; x * -1.0 -> -x (x a float, so the type stays)
        for num, other, ok in ((right, left, isinstance(e.op, (ast.Mult, ast.Div))),
                               (left, right, isinstance(e.op, ast.Mult))):
            if ok and _number(num) and num.value in (1, -1) and self._is_float(other):
                return other if num.value == 1 else ast.UnaryOp(op=ast.USub(), operand=other)
        return e

    def _is_float(self, e: ast.expr) -> bool:
        if isinstance(e, ast.Name):
            return e.id in self.floats
        if isinstance(e, ast.Constant):
            return isinstance(e.value, float)
        if isinstance(e, ast.BinOp):
            return self._is_float(e.left) or self._is_float(e.right)
        if isinstance(e, ast.UnaryOp):
            return self._is_float(e.operand)
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and isinstance(e.func.value, ast.Name) \
                and TABLE.numpy_facts(e.func.attr).float_keeping:
            return any(self._is_float(a) for a in e.args)  # np.sign(x) of a float x is a float
        return False


def _small_whole(v: float) -> bool:
    return float(v).is_integer() and abs(v) <= 100


def _operations(e: ast.AST) -> int:
    return sum(isinstance(n, (ast.BinOp, ast.UnaryOp)) for n in ast.walk(e))


def _marked(n: ast.AST) -> bool:
    """Is ``n`` a number put in for a name (or folded from one)?"""
    return getattr(n, "_srcdiff_from_name", False)


def _const(v: float, mark: bool) -> ast.Constant:
    c = ast.Constant(value=v)
    if mark:
        c._srcdiff_from_name = True
    return c


class _Substitute(ast.NodeTransformer):
    def __init__(self, env: dict[str, float]) -> None:
        self.env = env

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id in self.env:
            return _const(self.env[node.id], True)
        return node


def _may_alias(e: ast.expr) -> bool:
    """Might ``e`` be (a view of) an existing array rather than a new one?"""
    if isinstance(e, (ast.Name, ast.Attribute, ast.Subscript)):
        return True
    if isinstance(e, ast.Call):
        f = e.func
        return isinstance(f, ast.Attribute) and _view_call(f.attr) or isinstance(f, ast.Name)
    return not isinstance(e, (ast.BinOp, ast.UnaryOp, ast.Constant))


def _alias_safe(a: str, rest: list[ast.stmt], top: bool) -> bool:
    """May ``a`` hold an alias from here on: nothing adds into it in place or
    returns it before it is assigned anew?"""
    for s in rest:
        if _is_comment(s):
            continue
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) and \
                s.targets[0].id == a:
            return True
        if any(isinstance(n, ast.Name) and n.id == a for n in ast.walk(s)):
            if isinstance(s, ast.AugAssign):
                target = s.target.value if isinstance(s.target, ast.Subscript) else s.target
                if isinstance(target, ast.Name) and target.id == a:
                    return False  # added into in place
                continue
            if isinstance(s, ast.Return) and not _escapes(s.value, a):
                continue
            if isinstance(s, (ast.For, ast.While, ast.If, ast.Return, ast.Expr)) or _stores(s, a) or \
                    any(isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store) for n in ast.walk(s)) or \
                    isinstance(s, ast.Assign) and _may_alias(s.value) and a in _count(s.value):
                return False  # in a region, returned, or passed on as another alias
    return top


def _escapes(e: ast.expr | None, a: str) -> bool:
    """Could the value of ``e`` be ``a``'s array itself (or a view of it)?"""
    if isinstance(e, ast.Name):
        return e.id == a
    if isinstance(e, (ast.Tuple, ast.List)):
        return any(_escapes(x, a) for x in e.elts)
    if isinstance(e, ast.Call):
        return any(_escapes(x, a) for x in e.args) or any(_escapes(k.value, a) for k in e.keywords) or \
            _escapes(e.func, a)
    if isinstance(e, (ast.Attribute, ast.Subscript, ast.Starred)):
        return _escapes(e.value, a)
    return False  # arithmetic builds a new value


def _drop_unused(fn: ast.FunctionDef, adjoints: set[str]) -> bool:
    """Delete assignments of never-read adjoint names made only of names and numbers."""
    loads = Counter(n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    loads.update(n.target.id for n in ast.walk(fn) if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name))

    def pure(e: ast.AST) -> bool:
        return all(isinstance(n, (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop,
                                  ast.expr_context)) for n in ast.walk(e))

    def visit(stmts: list[ast.stmt]) -> bool:
        for i, s in enumerate(stmts):
            for field in ("body", "orelse"):
                inner = getattr(s, field, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt) and visit(inner):
                    return True
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) and \
                    s.targets[0].id in adjoints and not loads[s.targets[0].id] and pure(s.value):
                del stmts[i]
                if not any(not _is_comment(x) for x in stmts):
                    stmts.append(ast.Pass())
                return True
        return False

    return visit(fn.body)


def _block(stmts: list[ast.stmt], counts: Counter, protect: set[str]) -> bool:
    changed = False
    for s in stmts:
        for field in ("body", "orelse"):
            inner = getattr(s, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                if _block(inner, counts, protect):
                    return True
    # a = 1.0; ...; a = f(a)  ->  a = f(1.0), and a = b; a = f(a) -> a = f(b)  (comments in between are fine)
    for i, st in enumerate(stmts):
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name) and \
                (isinstance(st.value, ast.Constant) and isinstance(st.value.value, (int, float)) or
                 isinstance(st.value, ast.Name) and st.value.id != st.targets[0].id and
                 not (_TEMP.match(st.value.id) and counts[st.value.id] == 2 and st.targets[0].id not in protect)):
            # (a copy of a temporary that only the copy reads is renamed instead, below)
            a = st.targets[0].id
            j = i + 1
            while j < len(stmts) and _is_comment(stmts[j]):
                j += 1
            if j < len(stmts) and isinstance(stmts[j], ast.Assign) and len(stmts[j].targets) == 1 and \
                    isinstance(stmts[j].targets[0], ast.Name) and stmts[j].targets[0].id == a and \
                    _count(stmts[j].value)[a] == 1:
                for n in _names(stmts[j].value):
                    if n.id == a:
                        stmts[j].value = _replace_name(stmts[j].value, a, st.value)
                del stmts[i]
                return True
    i = 0
    while i < len(stmts):
        cp = _is_copy(stmts[i])
        if cp is None:
            i += 1
            continue
        a, b = cp
        if a == b:
            del stmts[i]
            return True
        # (1) rename the definition of temporary b to a
        if _TEMP.match(b) and counts[b] == 2 and a not in protect:
            for j in range(i - 1, -1, -1):
                s = stmts[j]
                if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) \
                        and s.targets[0].id == b:
                    between = stmts[j + 1:i]
                    if not any(a in _count(x) for x in between) and a not in _count(s.value):
                        s.targets[0].id = a
                        del stmts[i]
                        return True
                    break
                if b in _count(s):
                    break
        # (2) forward-substitute reads of a by b
        rest = stmts[i + 1:]
        # (a copy of a primal value keeps its adjoint's name: `dx3 = t1` reads better than `t1` below)
        eligible = a not in protect and (b not in protect or _TEMP.match(a))
        uses_after = sum(_count(x)[a] for x in rest) if eligible else 0
        if eligible and uses_after and uses_after == counts[a] - 1:
            end = max(k for k, x in enumerate(rest) if a in _count(x))
            span = rest[:end + 1]
            if not any(_stores(x, a) or _stores(x, b) for x in span) and \
                    not any(isinstance(x, (ast.For, ast.While, ast.If)) for x in span):
                for x in span:
                    for n in _names(x):
                        if n.id == a:
                            n.id = b
                del stmts[i]
                return True
        i += 1
    return changed
