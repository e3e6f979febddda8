"""The layering runs one way, ``service`` -> ``handlers`` -> ``store``, and no module imports
itself back through others (read from the source: every import statement, at any depth)."""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "handlers", "store", "tests", "bench")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The project modules ``path`` imports (``from a import b`` counts ``a.b`` when that is a
    module, else ``a``)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                yield name


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: set(_imports(p, known)) - {m} for m, p in known.items()}


def _top(module: str) -> str:
    return module.partition(".")[0]


def test_the_packages_import_one_way() -> None:
    allowed = {"store": {"store"}, "handlers": {"handlers", "store"}}
    wrong = [
        (m, dep)
        for m, deps in _graph().items()
        for dep in deps
        if _top(m) in allowed and _top(dep) not in allowed[_top(m)]
    ]
    assert not wrong, wrong


def test_the_store_never_imports_aiohttp() -> None:
    for path in sorted((ROOT / "store").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert all(not a.name.startswith("aiohttp") for a in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("aiohttp"), path


def test_test_modules_do_not_import_each_other() -> None:
    wrong = [
        (m, dep)
        for m, deps in _graph().items()
        for dep in deps
        if dep.startswith(("tests.test_", "tests.conftest"))
    ]
    assert not wrong, wrong


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    graph = _graph()
    assert len(graph) > 60  # the walk found the code
    # A package's __init__ re-exporting its modules is not a cycle of the code: leave the
    # package -> its own submodule edges out.
    pruned = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    assert _cycles(pruned) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
