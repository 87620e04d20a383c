"""The package's shape: one folder per pipeline stage over a shared core, imports that run
one way (core <- data, training <- sweep <- report <- tuning <- the command line), data and
training that never import each other (the manifest is their contract), stage ``__init__``
files that import nothing, modules of one screenful of jobs, and a training job that does not
pay for what only the sweep and the report need."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "workflow" / "hpstudy"
# each stage's floor: a module may import its own stage and the stages on lower floors only
FLOORS = {"core": 0, "data": 1, "training": 1, "sweep": 2, "report": 3, "tuning": 4, "": 5}
MAX_LINES = 460  # "no module over ~450 lines"


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str:
    """``hpstudy.data.fetch`` -> ``data``; top-level modules (the command line) -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOORS) else ""


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


def test_every_module_sits_in_a_stage_folder_and_imports_only_downwards():
    graph = imports()
    top = sorted(m for m in graph if stage_of(m) == "" and m != "hpstudy")
    assert top == ["hpstudy.__main__", "hpstudy.cli", "hpstudy.rule_targets"]
    wrong = []
    for module, deps in graph.items():
        here = stage_of(module)
        for dep in deps:
            there = stage_of(dep)
            if dep == "hpstudy" or there == here:
                continue
            if FLOORS[there] >= FLOORS[here]:
                wrong.append(f"{module} ({here or 'top'}) imports {dep} ({there or 'top'})")
    assert wrong == []


def test_core_imports_no_stage_and_data_and_training_never_each_other():
    graph = imports()
    for module, deps in graph.items():
        stages = {stage_of(d) for d in deps}
        if stage_of(module) == "core":
            assert stages <= {"core"}, f"{module} imports {deps}"
        if stage_of(module) in ("data", "training"):
            other = "training" if stage_of(module) == "data" else "data"
            assert other not in stages, f"{module} imports {deps}"


def test_stage_init_files_import_nothing():
    for stage in (s for s in FLOORS if s):
        tree = ast.parse((PACKAGE / stage / "__init__.py").read_text())
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def test_no_module_is_longer_than_a_few_screens():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_reporting_modules_stand_side_by_side():
    graph = imports()
    readers = {
        "hpstudy.report.findings",
        "hpstudy.report.comparison",
        "hpstudy.report.figures",
        "hpstudy.tuning.selection",
    }
    for reader in readers:
        assert not graph[reader] & readers, f"{reader} imports {graph[reader] & readers}"


def test_a_training_job_imports_neither_validation_nor_reporting_libraries():
    code = (
        "import sys, hpstudy.training.job, hpstudy.cli\n"
        "print(sorted(m for m in ('jsonschema', 'pandas', 'matplotlib', 'sklearn')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_search_step_imports_no_torch_unless_it_clears_halving_checkpoints():
    """Every round of a search runs `hpstudy search` twice; torch (1.4 s) is only needed to
    clear the pruned trials' checkpoints of a halving search."""
    code = (
        "import sys\n"
        "from hpstudy.cli import main\n"
        "from hpstudy.tuning import search\n"
        "assert search.remove_pruned_checkpoints({}, [], 'v', None) == 0\n"
        "print(sorted(m for m in ('torch', 'optuna') if m in sys.modules))"
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
        "import hpstudy.training.job\n"
        "from hpstudy.training import identity\n"
        "from hpstudy.sweep import plan\n"
        "from hpstudy.core.paths import Layout\n"
        "settings = identity.canonical_settings({'batch_size': 10, 'device': 'cpu'})\n"
        "print(plan.run_spec(plan.make_run(settings, 1, 'v'), Layout())['run_id'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "v/bs-10/seed-1"
