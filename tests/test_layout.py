"""The source tree's layout: no import cycle between the modules of ``src/``.

Every import counts, at module level or inside a function (a lazy import that closes a cycle is
still a cycle: two modules that cannot be understood one without the other), except those under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports (``from a.b import c`` names ``a.b.c`` when that
    is a module, else ``a.b``), leaving out ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found & known


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), or with a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_cycle_finder_finds_a_cycle_and_only_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules_of_src() -> None:
    known = modules()
    graph = {name: imported_modules(path, set(known)) - {name} for name, path in known.items()}
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the walk really read the tree
    assert cycles(graph) == []


def test_the_readme_names_every_package_of_the_tree() -> None:
    readme = (SRC.parent / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Where things are", 1)[1].split("```")[1]
    packages = sorted(path.parent.name for path in (SRC / "tml" / "optimizers").glob("*/__init__.py"))
    assert packages, "no subpackage found"
    missing = [name for name in packages if f"  {name}/" not in layout]
    assert missing == [], f"README's layout leaves out {missing}"
    modules_named = [word for word in layout.split() if word.endswith(".py")]
    assert modules_named, "no module named"
    trees = (SRC, SRC.parent / "tests")
    assert [name for name in modules_named if not any(list(tree.rglob(name)) for tree in trees)] == []
