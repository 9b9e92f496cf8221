"""The documentation site: the primitives page matches the rules table, the
site builds with ``mkdocs build --strict``, and the examples on the pages run
and print what the pages say they print.

Conventions for code blocks in ``docs/*.md``:

* Every ```` ```python ```` block runs.  The blocks of one page run in order
  in one fresh namespace (a page reads like one script), each saved to its
  own file named ``example.py`` so srcdiff can read its source; an error
  message therefore says ``example.py:LINE`` with LINE counted in the block.
* A block preceded by ``<!-- norun -->`` is not run (signatures, generated
  code shown for reading, pseudo-code).
* A block of any language preceded by ``<!-- output -->`` is the expected
  standard output of the last block that ran, compared line by line
  (trailing spaces and blank lines at either end ignored).
* A ```` ```console ```` block runs each ``$ python -m srcdiff ...`` command
  from the repository root; the lines up to the next ``$`` are the expected
  output (stdout, then stderr).

Each page runs in its own interpreter with a fixed ``PYTHONHASHSEED``, so
rules registered by one page never leak into another.  By hand::

    python tests/test_docs.py docs/subset.md            # run one page's examples
    python tests/test_docs.py --update docs/subset.md   # rewrite its output blocks
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))

NORUN = "<!-- norun -->"
OUTPUT = "<!-- output -->"

# Blocks on pages this suite does not own that are not runnable and carry no
# <!-- norun --> marker yet, identified by the start of their first line.
UNMARKED_NORUN = {
    "optimizers.md": ("state = opt.init(params)", "optim.train(fn, params, optimizer,"),
}


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence
    indent: str
    marker: str | None  # NORUN, OUTPUT or None


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<lang>[\w+-]*)[^`]*$")


def parse_blocks(text: str) -> list[Block]:
    """Fenced code blocks (also indented ones, inside admonitions)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m["indent"], m["fence"], m["lang"].lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        prev = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = prev if prev in (NORUN, OUTPUT) else None
        blocks.append(Block(lang, "\n".join(body) + "\n", start + 1, i + 1, indent, marker))
        i += 1  # past the closing fence
    return blocks


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def _skipped(page: str, block: Block) -> bool:
    first = block.code.lstrip().split("\n", 1)[0]
    return block.marker == NORUN or any(first.startswith(s) for s in UNMARKED_NORUN.get(page, ()))


def _console(block: Block) -> str:
    """Run a console block's srcdiff commands; return the transcript."""
    chunks = re.split(r"^\$ ", block.code, flags=re.M)
    if chunks[0].strip():
        raise ValueError("a console block must start with a '$ ' command")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    transcript = []
    for chunk in chunks[1:]:
        command = chunk.partition("\n")[0]
        argv = shlex.split(command)
        if argv[:3] == ["python", "-m", "srcdiff"]:
            argv = [sys.executable, "-m", "srcdiff"] + argv[3:]
        elif argv[:1] == ["srcdiff"]:
            argv = [sys.executable, "-m", "srcdiff"] + argv[1:]
        else:
            raise ValueError(f"only srcdiff commands run in console blocks, not {command!r} "
                             f"(mark the block {NORUN} or make it a bash block)")
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        transcript.append(f"$ {command}\n{proc.stdout}{proc.stderr}")
    return "".join(transcript)


def run_page(page: str, workdir: Path) -> tuple[list[str], list[tuple[Block, str]]]:
    """Run a page's examples.  Returns (failures, [(output block, what was printed)])."""
    blocks = parse_blocks((DOCS / page).read_text(encoding="utf-8"))
    ns: dict = {"__name__": "__main__"}
    failures: list[str] = []
    printed: list[tuple[Block, str]] = []
    last_out: str | None = None
    for n, block in enumerate(blocks):
        if block.marker == OUTPUT:
            if last_out is None:
                failures.append(f"{page}:{block.line}: an output block with no example before it")
            else:
                printed.append((block, last_out))
            last_out = None
            continue
        if _skipped(page, block):
            continue
        if block.lang == "console":
            try:
                transcript = _console(block)
            except ValueError as exc:
                failures.append(f"{page}:{block.line}: {exc}")
                continue
            printed.append((block, transcript))
            last_out = None
            continue
        if block.lang not in ("python", "py"):
            continue
        path = workdir / f"block{n:03d}" / "example.py"
        path.parent.mkdir(parents=True)
        path.write_text(block.code, encoding="utf-8")
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(block.code, str(path), "exec"), ns)  # noqa: S102 - the docs' own examples
        except Exception:
            failures.append(f"{page}:{block.line}: the example raised\n{traceback.format_exc()}")
            last_out = None
            continue
        last_out = out.getvalue()
    for block, got in printed:
        if _norm(block.code) != _norm(got):
            diff = "\n".join(difflib.unified_diff(_norm(block.code).splitlines(), _norm(got).splitlines(),
                                                  "on the page", "printed", lineterm=""))
            failures.append(f"{page}:{block.line}: the output differs from the page\n{diff}")
    return failures, printed


def update_page(page: str, printed: list[tuple[Block, str]]) -> None:
    """Replace the page's output blocks with what was printed."""
    path = DOCS / page
    lines = path.read_text(encoding="utf-8").splitlines()
    for block, got in sorted(printed, key=lambda p: -p[0].line):
        if block.marker == OUTPUT:
            body = got.strip("\n").split("\n")
        else:  # a console block: the commands with their output
            body = got.rstrip("\n").split("\n")
        lines[block.line:block.end - 1] = [block.indent + b if b else "" for b in body]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _page_env() -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page):
    """The page's examples run and print what the page shows."""
    blocks = parse_blocks((DOCS / page).read_text(encoding="utf-8"))
    if not any(b.lang in ("python", "py", "console") and not _skipped(page, b) for b in blocks):
        pytest.skip(f"{page} has no runnable example")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(DOCS / page)],
                          cwd=ROOT, env=_page_env(), capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"{proc.stdout}\n{proc.stderr}".strip(), pytrace=False)


def test_readme_example_prints_what_the_readme_shows(tmp_path):
    """The README's first example, copied as written into a script and run,
    prints the adjoint shown right after it (the README is the first thing
    people read: the block must define everything it uses)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    code, shown = blocks[0], blocks[1]
    script = tmp_path / "readme_example.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          env=_page_env(), timeout=120)
    assert proc.returncode == 0, f"the README's first example does not run as written:\n{proc.stderr}"
    assert _norm(proc.stdout) == _norm(shown), "README's generated code is stale:\n" + proc.stdout
    # the comment on the gradient call quotes the lecture's dL/dW1
    check = code + "\nassert np.allclose(dW1, [[-0.113, -0.054]], atol=1e-3), dW1\n"
    script.write_text(check, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          env=_page_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_primitives_page_is_current():
    proc = subprocess.run([sys.executable, str(DOCS / "gen_primitives.py"), "--stdout"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    committed = (DOCS / "primitives.md").read_text(encoding="utf-8")
    assert proc.stdout == committed, (
        "docs/primitives.md does not match srcdiff.rules.TABLE: run python docs/gen_primitives.py")


def test_primitives_page_is_deterministic():
    """Sorted output: the page does not depend on the order rules were registered in."""
    code = ("import sys; sys.path.insert(0, 'docs'); import gen_primitives as g; t = g.TABLE; "
            "a = g.render(); "
            "t.functions = dict(reversed(list(t.functions.items()))); "
            "t.methods = dict(reversed(list(t.methods.items()))); "
            "t.nondiff = dict(reversed(list(t.nondiff.items()))); "
            "t.nondiff_methods = set(reversed(sorted(t.nondiff_methods))); "
            "assert g.render() == a, 'the page depends on registration order'")
    for seed in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env=dict(_page_env(), PYTHONHASHSEED=seed))
        assert proc.returncode == 0, proc.stderr


def test_nav_lists_every_page():
    yaml_text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    in_nav = set(re.findall(r":\s*([\w-]+\.md)\s*$", yaml_text, flags=re.M))
    assert set(PAGES) <= in_nav, f"pages missing from the nav in mkdocs.yml: {sorted(set(PAGES) - in_nav)}"


def test_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[docs]'")
    pytest.importorskip("material", reason="mkdocs-material is not installed: pip install -e '.[docs]'")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    # no --quiet: in MkDocs 1.6 it also stops --strict from counting warnings
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "index.html").exists()
    # the site reads offline: no script, stylesheet, font or image from another host (KaTeX is bundled)
    remote = re.compile(r"<(?:script|img)\b[^>]*\bsrc=\"(?:https?:)?//|<link\b[^>]*\bhref=\"(?:https?:)?//")
    for page in (tmp_path / "site").rglob("*.html"):
        found = remote.search(page.read_text(encoding="utf-8"))
        assert found is None, f"{page.relative_to(tmp_path / 'site')} loads {found.group(0)!r}... from the network"
    assert (tmp_path / "site" / "javascripts" / "katex" / "katex.min.js").exists()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the examples of documentation pages.")
    parser.add_argument("pages", nargs="+", help="docs/PAGE.md files")
    parser.add_argument("--update", action="store_true",
                        help="rewrite the pages' output blocks with what the examples print (review the diff!)")
    args = parser.parse_args(argv)
    if os.environ.get("PYTHONHASHSEED") != "0":  # run as the tests do
        return subprocess.run([sys.executable, str(Path(__file__).resolve())] + sys.argv[1:],
                              env=_page_env()).returncode
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    status = 0
    for page in args.pages:
        name = Path(page).name
        with tempfile.TemporaryDirectory() as tmp:
            failures, printed = run_page(name, Path(tmp))
        if args.update:
            update_page(name, printed)
            failures = [f for f in failures if "differs from the page" not in f]
        for failure in failures:
            print(failure, end="\n\n")
        status = status or int(bool(failures))
    return status


if __name__ == "__main__":
    sys.exit(main())
