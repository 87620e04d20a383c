"""The package's shape: floors that import only downwards, and a training job that does not
pay for what only the sweep and the report need."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "workflow" / "hpstudy"


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every module of the package -> the package modules it imports (at any depth)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("hpstudy")
            ):
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names if a.name.startswith("hpstudy")]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def test_no_import_cycle_in_the_package():
    graph, cycles = imports(), []
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_reporting_modules_stand_side_by_side():
    graph = imports()
    readers = {
        "hpstudy.findings", "hpstudy.compare", "hpstudy.report.study_figures",
        "hpstudy.report.trial_figures",
    }  # fmt: skip
    for reader in readers:
        assert not graph[reader] & readers, f"{reader} imports {graph[reader] & readers}"


def test_a_training_job_imports_neither_validation_nor_reporting_libraries():
    code = (
        "import sys, hpstudy.train, hpstudy.cli\n"
        "print(sorted(m for m in ('jsonschema', 'pandas', 'matplotlib', 'sklearn')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_run_is_planned_and_trained_without_validation_or_workflow_libraries():
    """benchmarks/sweep_benchmark.py plans runs and starts `hpstudy train` on machines that may
    have torch but not jsonschema, Snakemake, Optuna, pandas or scipy: block them and plan one."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('jsonschema', 'snakemake', 'optuna', 'pandas',\n"
        "                                  'scipy', 'matplotlib'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import hpstudy.train\n"
        "from hpstudy import identity, plan\n"
        "from hpstudy.layout import Layout\n"
        "settings = identity.canonical_settings({'batch_size': 10, 'device': 'cpu'})\n"
        "print(plan.run_spec(plan.make_run(settings, 1, 'v'), Layout())['run_id'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "v/bs-10/seed-1"
