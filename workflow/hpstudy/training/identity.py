"""A run's identity, decided once: what Snakemake compares to decide whether a run is done.

The identity holds only what changes a run's numbers:

- its training settings that differ from the *schema's* defaults (a setting at its default is
  left out, so adding a defaulted setting later changes no identity), skipping execution-only
  settings (``x-execution`` in the schema) and settings that do not apply to the run (e.g.
  momentum with Adam; ``x-applies-when``);
- its seed;
- a digest of the training code that computes its numbers, ignoring comments and docstrings
  and scoped per model (editing the custom CNN does not touch ResNet runs);
- for pretrained runs, the weights: a local file's sha256, or the version of the weights the
  pipeline fetches.

The run's folder is named after the same non-default settings (``bs-450``, ``wd-1_bs-450``,
``model-resnet18_pretrained-true_lr-1e-04_bs-32``; ``default`` when every setting is at its
default), so folder names stay readable and equal settings share one folder.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import json
from pathlib import Path

from hpstudy.core import schema
from hpstudy.core.formatting import format_value

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Modules whose code computes every run's numbers (the training loop, the data path, the
# optimiser and loss, precision and backend settings), and the module of each model family.
# Each is named by the file name it had when run identities first digested it: that name is
# hashed with its body, so it must never change (a moved module keeps its key; see
# DIGESTED_AT for where it lives now).
SHARED_NUMERIC_MODULES = ("loop.py", "batches.py", "optim.py", "runtime.py")
MODEL_MODULES = {
    "custom": ("models/custom.py", "models/custom_layout.py"),
    "torchvision": ("models/zoo.py",),
}
# Where each digested module lives now, relative to the package.
DIGESTED_AT = {
    "loop.py": "training/loop.py",
    "batches.py": "training/batches.py",
    "optim.py": "training/optim.py",
    "runtime.py": "training/runtime.py",
    "models/custom.py": "training/models/custom.py",
    "models/custom_layout.py": "training/models/custom_shapes.py",
    "models/zoo.py": "training/models/zoo.py",
}
# hpstudy modules (and packages) by today's dotted name -> the name they had when the digests
# were first taken: imports in a digested module are hashed under their historic names, so
# moving or renaming a module retrains nothing.
HISTORIC_NAMES: dict[str, str] = {
    "hpstudy.core.errors": "hpstudy.errors",
    "hpstudy.core.atomic": "hpstudy.atomic",
    "hpstudy.core.schema": "hpstudy.schema",
    "hpstudy.core.config": "hpstudy.config",
    "hpstudy.core.formatting": "hpstudy.formatting",
    "hpstudy.core.stats": "hpstudy.stats",
    "hpstudy.core.paths": "hpstudy.layout",
    "hpstudy.core.run_record": "hpstudy.run_files",
    "hpstudy.core.failures": "hpstudy.failures",
    "hpstudy.data.fetch": "hpstudy.fetch",
    "hpstudy.data.zip_checks": "hpstudy.zipcheck",
    "hpstudy.data.archive_layouts": "hpstudy.layouts",
    "hpstudy.data.decode": "hpstudy.images",
    "hpstudy.data.preprocess": "hpstudy.preprocess",
    "hpstudy.data.fingerprint": "hpstudy.fingerprint",
    "hpstudy.data.audit": "hpstudy.audit",
    "hpstudy.training.job": "hpstudy.train",
    "hpstudy.training.loop": "hpstudy.loop",
    "hpstudy.training.batches": "hpstudy.batches",
    "hpstudy.training.optim": "hpstudy.optim",
    "hpstudy.training.runtime": "hpstudy.runtime",
    "hpstudy.training.devices": "hpstudy.devices",
    "hpstudy.training.checkpoint": "hpstudy.checkpoint",
    "hpstudy.training.run_lock": "hpstudy.runlock",
    "hpstudy.training.weights": "hpstudy.weights",
    "hpstudy.training.identity": "hpstudy.identity",
    "hpstudy.training.arrays": "hpstudy.dataset",
    "hpstudy.training.models": "hpstudy.models",
    "hpstudy.training.models.catalog": "hpstudy.models.catalog",
    "hpstudy.training.models.custom": "hpstudy.models.custom",
    "hpstudy.training.models.custom_shapes": "hpstudy.models.custom_layout",
    "hpstudy.training.models.zoo": "hpstudy.models.zoo",
    "hpstudy.sweep.plan": "hpstudy.plan",
    "hpstudy.sweep.added_runs": "hpstudy.added",
    "hpstudy.sweep.restore": "hpstudy.restore",
    "hpstudy.report.tables": "hpstudy.tables",
    "hpstudy.report.aggregate": "hpstudy.aggregate",
    "hpstudy.report.post_runs": "hpstudy.reference",
    "hpstudy.report.comparison": "hpstudy.compare",
    "hpstudy.report.findings": "hpstudy.findings",
    "hpstudy.report.figures": "hpstudy.figures",
    "hpstudy.report.exploration": "hpstudy.exploration",
    "hpstudy.report.results_diff": "hpstudy.diff",
    "hpstudy.report.tensorboard_log": "hpstudy.tensorboard_log",
    "hpstudy.tuning.selection": "hpstudy.selection",
    "hpstudy.tuning.search": "hpstudy.search",
    "hpstudy.rule_targets": "hpstudy.targets",
    "hpstudy.core": "hpstudy",
    "hpstudy.data": "hpstudy",
    "hpstudy.training": "hpstudy",
    "hpstudy.sweep": "hpstudy",
    "hpstudy.report": "hpstudy",
    "hpstudy.tuning": "hpstudy",
}
# --- issue 20 hook: modules that compute a run's numbers only when a setting asks for them.
# Each is digested into the identity of those runs alone (appended after the modules above), so
# every other run keeps its identity: (module, predicate on (canonical settings, data channels)).
OPTIONAL_NUMERIC_MODULES = (
    ("training/class_weight.py", lambda settings, channels: settings["class_weight"] != "none"),
    ("training/channels.py", lambda settings, channels: channels != 3),
)
DEFAULT_NAME = "default"
MAX_NAME_LENGTH = 120


def canonical_value(key: str, value):
    """One spelling per value: a kernel width of ``3`` is ``[3, 3, 3]``, numbers are floats."""
    if key == "kernel_width":
        return [int(value)] * 3 if isinstance(value, int) else [int(v) for v in value]
    if key == "early_stopping" and isinstance(value, dict):
        return {"patience": int(value["patience"]), "min_delta": float(value.get("min_delta", 0))}
    if schema.is_float_setting(key) and isinstance(value, int | float):
        return float(value)
    return value


@functools.cache
def _canonical_defaults() -> tuple:
    defaults = schema.train_defaults()
    return tuple((key, canonical_value(key, defaults[key])) for key in schema.setting_names())


def canonical_settings(settings: dict) -> dict:
    """Every training setting, canonical, defaults filled in, in schema order."""
    return {
        key: (default if type(default) in _IMMUTABLE else copy.deepcopy(default))
        if key not in settings
        else canonical_value(key, settings[key])
        for key, default in _canonical_defaults()
    }


_IMMUTABLE = (type(None), bool, int, float, str)  # defaults shared as they are, never copied


def identity_settings(settings: dict, *, without: tuple[str, ...] = ()) -> dict:
    """The settings that make this run's numbers and differ from the schema's defaults."""
    full = canonical_settings(settings)
    defaults = dict(_canonical_defaults())
    return {
        key: full[key]
        for key in schema.identity_settings()
        if key not in without and schema.applies(key, full) and full[key] != defaults[key]
    }


def run_name(identity: dict) -> str:
    """A readable folder name from a run's identity: its non-default settings, e.g.
    ``wd-1_bs-450`` (``default`` when there are none); a local weights file adds its digest."""
    parts = [
        f"{schema.abbreviation(key)}-{format_value(value).replace('/', '-')}"
        for key, value in identity["settings"].items()
    ]
    weights = identity.get("weights") or ""
    if weights.startswith("sha256:"):
        parts.append(f"weights-{weights.removeprefix('sha256:')[:8]}")
    name = "_".join(parts) or DEFAULT_NAME
    if len(name) > MAX_NAME_LENGTH:
        digest = hashlib.sha256(canonical_json(identity["settings"]).encode()).hexdigest()[:10]
        name = f"{name[: MAX_NAME_LENGTH - 12].rstrip('_-')}_h{digest}"
    return name


def canonical_json(obj) -> str:
    """Compact JSON with sorted keys: the same text for the same content."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def historic_name(module: str) -> str:
    """The dotted name ``module`` had when run identities first digested the code."""
    return HISTORIC_NAMES.get(module, module)


def _is_hpstudy(module: str | None) -> bool:
    return module is not None and (module == "hpstudy" or module.startswith("hpstudy."))


def _historic_import(node: ast.ImportFrom) -> None:
    """Rewrite ``from hpstudy.<today> import name`` to the names the code had before."""
    parents = set()
    for alias in node.names:
        full = historic_name(f"{node.module}.{alias.name}")
        if full != f"{node.module}.{alias.name}":  # the name imported is a moved module
            parent, alias.name = full.rsplit(".", 1)
            parents.add(parent)
        else:
            parents.add(historic_name(node.module))
    if len(parents) != 1:
        raise RuntimeError(
            f"cannot map `from {node.module} import ...` back to one historic module: {parents}"
        )
    node.module = parents.pop()


def _historic_imports(tree: ast.Module) -> ast.Module:
    """Imports of hpstudy modules under their historic names, and the top-level run of them in
    the order isort gave it under those names (sorted by module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _is_hpstudy(node.module):
            _historic_import(node)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                alias.name = historic_name(alias.name)
    body, start = tree.body, None
    for i, node in enumerate([*body, None]):
        ours = isinstance(node, ast.ImportFrom) and node.level == 0 and _is_hpstudy(node.module)
        if ours and start is None:
            start = i
        elif not ours and start is not None:
            body[start:i] = sorted(body[start:i], key=lambda n: n.module)
            start = None
    return tree


def _digested_path(key: str, package_dir: Path) -> Path:
    """Where the digested module ``key`` (its historic file name) lives; raises when it is
    gone, since a module that silently dropped out of the digest would stop retraining runs."""
    path = package_dir / DIGESTED_AT.get(key, key)
    if not path.is_file():
        raise RuntimeError(
            f"the digested module {key!r} is not at {path}: update DIGESTED_AT in "
            "hpstudy's identity module to where it lives now"
        )
    return path


@functools.cache
def module_digest(key: str, package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 of a digested module's code (``key``: its historic file name), blind to comments,
    docstrings, formatting and to where the module and the hpstudy modules it imports live."""
    source = _digested_path(key, package_dir).read_text(encoding="utf-8")
    tree = _historic_imports(_strip_docstrings(ast.parse(source)))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def optional_modules(settings: dict, channels: int = 3) -> tuple[str, ...]:
    """The optional numeric modules a run with these canonical settings on ``channels``-channel
    data uses (empty for every run that sets none of them)."""
    return tuple(module for module, used in OPTIONAL_NUMERIC_MODULES if used(settings, channels))


def code_digest(model: str, package_dir: Path = PACKAGE_DIR, extra: tuple[str, ...] = ()) -> str:
    """A short digest of the code that computes the numbers of a run of ``model`` (and of the
    ``extra`` modules it uses: :func:`optional_modules`)."""
    family = "custom" if model == "custom" else "torchvision"
    modules = [*SHARED_NUMERIC_MODULES, *MODEL_MODULES[family], *extra]
    digest = hashlib.sha256()
    for key in modules:
        digest.update(f"{key}:{module_digest(key, package_dir)};".encode())
    return digest.hexdigest()[:16]


@functools.cache
def file_digest(path: str) -> str:
    """sha256 of a local file (a pretrained weights file), read once per process."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def weights_identity(settings: dict) -> str | None:
    """What pretrained weights a run starts from: a local file's digest or the fetched
    version; None when the run is not pretrained."""
    if not settings.get("pretrained"):
        return None
    local = settings.get("weights")
    if local:
        try:
            return f"sha256:{file_digest(str(Path(local).expanduser().resolve()))}"
        except OSError:
            return f"missing:{local}"  # refused with a clear message where the run is built
    from hpstudy.training.models.catalog import weights_info

    fetched = weights_info(settings["model"]) or {}
    return f"torchvision:{fetched.get('weights', 'none')}"


def run_identity(settings: dict, seed: int, channels: int = 3) -> dict:
    """The identity of one run: what Snakemake compares (as canonical JSON) to decide whether
    a finished run still stands. ``channels`` is the data's (``dataset.channels``): the data
    variant's name, part of the run id, carries it; here it only picks the code digested."""
    canonical = canonical_settings(settings)
    identity = {
        "settings": identity_settings(canonical, without=("weights",)),
        "seed": int(seed),
        "code": code_digest(canonical["model"], extra=optional_modules(canonical, channels)),
    }
    weights = weights_identity(canonical)
    if weights:
        identity["weights"] = weights
    return identity


LENGTH_SCHEDULES = ("cosine", "onecycle")  # schedules whose shape follows the run's length


def trajectory_identity(identity: dict) -> dict:
    """The identity without the run's length: runs that differ only in ``epochs`` follow one
    trajectory, so a longer run can continue from a shorter one's checkpoint. A schedule that
    spans the run's length keeps that length (it shapes every epoch)."""
    settings = {k: v for k, v in identity["settings"].items() if k != "epochs"}
    full = canonical_settings(identity["settings"])
    if full["scheduler"] in LENGTH_SCHEDULES and full["schedule_epochs"] is None:
        settings["schedule_epochs"] = full["epochs"]
    return {**identity, "settings": settings}
