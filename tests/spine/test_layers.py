"""The layout rule, read from the source: no import cycle between the parts of `shared/`, and the
heavy SDKs only in `shared/adapters/`.

A part is a subpackage of `shared` (`shared.adapters`, `shared.executors`, ...) or one of its
top-level modules (`shared.rules`, `shared.errors`, ...); `functions` and `function_app` are parts
too. Every import counts, top-level or inside a function (lazy imports are still dependencies).

Heavy SDKs may also be imported by these, and only these:
- `shared/jobs/`: scripts shipped to run elsewhere (a Databricks job, an Azure ML container); they
  import nothing from this repository, so they cannot go through an adapter.
- `shared/local/`: the local demo stack, which starts an MLflow server and logs the demo's model.
- `shared/cleanup/arm_provider.py`: cleanup's ARM provider. It implements cleanup's own provider
  protocol (groups, locks, ScopeLocked); cleanup already depends on adapters (the credential
  factory), so in `shared/adapters/` it would import cleanup back and make a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.support import ROOT

HEAVY = ("mlflow", "azure.ai.ml", "azureml", "databricks.sdk", "azure.identity", "azure.mgmt")
SDK_HOME = "shared/adapters/"
SDK_EXCEPTIONS = ("shared/jobs/", "shared/local/", "shared/cleanup/arm_provider.py")

Imports = list[tuple[str, str]]  # (imported module, "path:line")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> Iterator[tuple[str, int]]:
    """Every module an import statement names (absolute; relative ones resolved), anywhere in the file."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, node.lineno
            for alias in node.names:  # `from shared import telemetry` names a module too
                yield f"{base}.{alias.name}", node.lineno


def part_of(module: str, modules: set[str]) -> str | None:
    """The part a module of ours belongs to; None for anything else (stdlib, SDKs, an attribute)."""
    if module not in modules:
        return None
    pieces = module.split(".")
    return ".".join(pieces[:2]) if pieces[0] == "shared" and len(pieces) > 1 else pieces[0]


def python_files(root: Path) -> list[Path]:
    files = [*sorted((root / "shared").rglob("*.py")), *sorted((root / "functions").rglob("*.py"))]
    return [*files, root / "function_app.py"] if (root / "function_app.py").exists() else files


def part_graph(root: Path) -> dict[str, dict[str, Imports]]:
    """part -> part it imports -> where (only edges between different parts)."""
    files = python_files(root)
    modules = {module_name(path, root) for path in files}
    graph: dict[str, dict[str, Imports]] = {}
    for path in files:
        source = part_of(module_name(path, root), modules)
        assert source is not None
        edges = graph.setdefault(source, {})
        for imported, line in imports_of(path, root):
            target = part_of(imported, modules)
            if target is not None and target != source:
                edges.setdefault(target, []).append((imported, f"{path.relative_to(root)}:{line}"))
    return graph


def find_cycle(graph: dict[str, dict[str, Imports]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None when the graph is acyclic (depth-first, three colours)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, {})):
            if cycle := visit(target):
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start):
            return cycle
    return None


def explain(graph: dict[str, dict[str, Imports]], cycle: list[str]) -> str:
    lines = [" -> ".join(cycle)]
    for source, target in zip(cycle, cycle[1:], strict=False):
        edges = graph[source][target]
        lines += [f"  {source} -> {target}: {module} at {where}" for module, where in edges[:3]]
        lines += [f"  ... and {len(edges) - 3} more"] if len(edges) > 3 else []
    return "\n".join(lines)


def heavy_imports(root: Path, files: Iterable[Path]) -> list[str]:
    found = {
        f"{path.relative_to(root)}:{line} imports {sdk}"
        for path in files
        for module, line in imports_of(path, root)
        for sdk in HEAVY
        if module == sdk or module.startswith(sdk + ".")
    }
    return sorted(found)


def test_the_parts_of_shared_import_each_other_without_cycles() -> None:
    graph = part_graph(ROOT)
    assert {"shared.adapters", "shared.executors", "shared.config", "functions"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between parts of the app:\n" + explain(graph, cycle or [])


def test_heavy_sdks_are_imported_only_by_adapters() -> None:
    outside = [
        path for path in python_files(ROOT) if not str(path.relative_to(ROOT)).startswith((SDK_HOME, *SDK_EXCEPTIONS))
    ]
    assert heavy_imports(ROOT, outside) == []


def test_a_cycle_through_a_lazy_import_is_found(tmp_path: Path) -> None:
    """The check above can fail: a function-level import that closes a loop is reported."""
    files = {
        "shared/__init__.py": "",
        "shared/errors.py": "",
        "shared/adapters/__init__.py": "",
        "shared/adapters/client.py": "from shared.errors import *\n\ndef f():\n    from shared.executors import base\n",
        "shared/executors/__init__.py": "",
        "shared/executors/base.py": "from ..adapters import client\n",
        "functions/__init__.py": "from shared.executors.base import *\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    graph = part_graph(tmp_path)

    cycle = find_cycle(graph)
    assert cycle == ["shared.executors", "shared.adapters", "shared.executors"]
    assert ("shared.adapters.client", "shared/executors/base.py:1") in graph["shared.executors"]["shared.adapters"]
    assert "shared.adapters -> shared.executors: shared.executors at shared/adapters/client.py:4" in explain(
        graph, cycle
    )
    del graph["shared.executors"]["shared.adapters"]
    assert find_cycle(graph) is None
