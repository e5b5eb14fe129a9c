"""The module graph (issue 11 item 3): no engine or algorithm module imports another that imports it back
(directly or through others; imports inside functions count too), so each module can be read and tested on
its own, and the job modules are named after their algorithm ids."""
import ast
import os

import pytest

from conftest import ROOT


def import_graph(package):
    """{module: {modules of the same package it imports}} from the source (ast; nothing is executed)."""
    folder = os.path.join(ROOT, package)
    modules = {name[:-3] for name in os.listdir(folder) if name.endswith(".py")} - {"__init__"}
    graph = {}
    for module in modules:
        with open(os.path.join(folder, module + ".py"), encoding="utf-8") as source:
            tree = ast.parse(source.read())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:  # from .x import y / from . import x
                imported.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package + "."):
                imported.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                imported.update(a.name.split(".")[1] for a in node.names if a.name.startswith(package + "."))
        graph[module] = imported & modules - {module}
    return graph


def cycles(graph):
    """[(module, module it imports that leads back to it)]."""
    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for following in graph[todo.pop()]:
                if following not in seen:
                    seen.add(following)
                    todo.append(following)
        return seen
    return sorted((m, n) for m in graph for n in graph[m] if m in reachable(n))


@pytest.mark.parametrize("package", ["hsigan_qgis", "algorithms", "models"])
def test_no_module_imports_another_that_imports_it_back(package):
    assert cycles(import_graph(package)) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b"), ("b", "c"), ("c", "a")]


def test_each_algorithm_id_leads_to_one_engine_module():
    """hsigan:<id> -> algorithms/<id>.py (QGIS side) and hsigan_qgis/<id>.py (the job)."""
    for job in ("train", "classify", "assess", "augment", "export_onnx", "install_torch"):
        assert os.path.isfile(os.path.join(ROOT, "algorithms", job + ".py")), job
        assert os.path.isfile(os.path.join(ROOT, "hsigan_qgis", job + ".py")), job
