"""The shape of the code: imports point one way.

* no import cycle inside ``srcdiff`` (imports inside functions count too);
* no compiler pass imports from a later pass; the shared infrastructure
  (IR, names, code builders, the printer) imports no pass;
* the rules and the runtime do not import the compiler.
"""

import ast
import pathlib

import srcdiff

ROOT = pathlib.Path(srcdiff.__file__).parent

# the compiler's passes in pipeline order (a pass may import the ones before it)
PASSES = ["frontend", "normalize", "graph", "shapes", "mutation", "invariance", "activity",
          "tape", "replay", "kept_small", "reverse", "simplify", "driver"]
# shared by every pass and transform; they import no pass
INFRASTRUCTURE = ["ir", "site", "naming", "astlib", "templates", "context", "specs", "emit"]


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    out: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets.append(mod)
                targets += [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    out[name].add(t)
    return out


def test_no_import_cycles():
    graph = _imports()
    # a package importing its own submodules is how Python packages load, not a cycle
    for m in graph:
        graph[m] = {t for t in graph[m] if not (t.startswith(m + ".") and (ROOT.parent / (m.replace(".", "/"))
                                                                         / "__init__.py").exists())}
    state: dict[str, int] = {}
    cycles = []

    def visit(u: str, path: list[str]) -> None:
        state[u] = 1
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                cycles.append(path[path.index(v):] + [v])
            elif v not in state:
                visit(v, path + [v])
        state[u] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_passes_import_only_earlier_passes():
    graph = _imports()
    order = {f"srcdiff.compiler.{p}": i for i, p in enumerate(PASSES)}
    infra = {f"srcdiff.compiler.{m}" for m in INFRASTRUCTURE}
    for m, targets in graph.items():
        for t in targets:
            if m in order and t in order:
                assert order[t] < order[m], f"{m} imports the later pass {t}"
            if m in infra:
                assert t not in order, f"the infrastructure module {m} imports the pass {t}"


def test_rules_and_runtime_do_not_import_the_compiler():
    graph = _imports()
    for m, targets in graph.items():
        if m.startswith("srcdiff.rules") or m in ("srcdiff.runtime", "srcdiff.containers", "srcdiff.arrays"):
            bad = [t for t in targets if t.startswith("srcdiff.compiler") or t == "srcdiff.api"]
            assert not bad, f"{m} imports {bad}"
