"""The import graph of qnxsim: no cycles, and no module imports from a layer above its own.

The layers are the table in README.md ("Layers"), read here, so the documentation and the
check cannot drift apart.  Every ``import`` that runs (at module level or inside a function)
counts; imports under ``if TYPE_CHECKING:`` do not, since they never run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qnxsim"
#: Upward imports that run only inside a function, each with its reason (README, "Layers").
ALLOWED_UPWARD = {
    ("qnxsim.kernel", "qnxsim.c.run"): "Kernel.exec_c hands a C program to the C bridge",
    ("qnxsim.process", "qnxsim.kernel"): "from qnxsim.process import Kernel, for users",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> set[str]:
    """The qnxsim modules ``path`` imports when it runs (TYPE_CHECKING blocks left out)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_node(other)
                continue
            visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "qnxsim")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "qnxsim":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else str(node.module))
        visit(node)

    visit(ast.parse(path.read_text()))
    found.discard(module_name(path))
    return found


GRAPH = {name: runtime_imports(path) for name, path in MODULES.items()}


def readme_layers() -> list[set[str]]:
    """The README's layers, top first: the backquoted module names of each table row."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    layers = []
    for row in rows:
        names = re.findall(r"`([\w.]+)`", row.split("|")[2])
        layers.append({m if m == "qnxsim" else f"qnxsim.{m}" for m in names})
    return layers


LAYERS = readme_layers()
LEVEL = {m: len(LAYERS) - i for i, layer in enumerate(LAYERS) for m in layer}


def test_every_module_is_in_exactly_one_layer() -> None:
    listed = [m for layer in LAYERS for m in layer]
    assert len(listed) == len(set(listed)), "a module is in two layers"
    assert set(listed) == set(MODULES), (
        f"not in README's Layers: {sorted(set(MODULES) - set(listed))}; "
        f"no such module: {sorted(set(listed) - set(MODULES))}"
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_it(module: str) -> None:
    above = {
        dep
        for dep in GRAPH[module]
        if LEVEL[dep] > LEVEL[module] and (module, dep) not in ALLOWED_UPWARD
    }
    assert not above, f"{module} imports {sorted(above)} from above its layer (README, Layers)"


def test_no_import_cycles() -> None:
    edges = {m: {d for d in deps if (m, d) not in ALLOWED_UPWARD} for m, deps in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                cycle = [*path[path.index(d) :], d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                walk(d)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            walk(m)


def test_constants_and_errno_import_nothing_from_qnxsim() -> None:
    assert GRAPH["qnxsim.constants"] == set() and GRAPH["qnxsim.errno"] == set()


# ``testing`` is not a view since it makes kernels for tests (``testing.kernel()``); it sits
# with the tools that drive a kernel.
@pytest.mark.parametrize("view", ["render", "html", "trace"])
def test_views_do_not_import_process_or_kernel_when_they_run(view: str) -> None:
    assert not GRAPH[f"qnxsim.{view}"] & {"qnxsim.process", "qnxsim.kernel"}


def test_the_checker_sees_what_it_must() -> None:
    """The walker counts imports inside functions and skips TYPE_CHECKING blocks."""
    assert "qnxsim.c.run" in GRAPH["qnxsim.kernel"]  # inside Kernel.exec_c
    assert "qnxsim.process" not in GRAPH["qnxsim.libc"]  # under TYPE_CHECKING only
    assert "qnxsim.constants" in GRAPH["qnxsim.trace"]  # ``from qnxsim import constants``
