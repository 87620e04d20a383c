"""config/README.md states the schema's defaults, every one of them, and no other.

The manual's key tables (`| key | default | meaning |`, under a section heading such as
"## `train`") are read and each documented default is compared with the schema
(`workflow/schemas/config.schema.yaml`): a
default changed in the schema and not in the manual (or the other way round), or a new key
with a default that the manual does not list, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "config" / "README.md"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

SECTION = re.compile(r"^## `([a-z_]+)`")
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|")
NO_DEFAULT = object()


def _resolve(node: dict, schema: dict, seen: set[str]) -> dict:
    """The node with the definition its `$ref` names merged in (only its own keys when that
    definition was walked already, so a shared block is documented once)."""
    ref = node.get("$ref")
    own = {k: v for k, v in node.items() if k != "$ref"}
    if ref is None or ref in seen:
        return own
    seen.add(ref)
    target = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **own}


def schema_defaults(schema: dict) -> dict[str, object]:
    """Every key of the schema with a scalar or list default, by dotted path (`*` = any name).

    A definition used in several places (the training settings under `train`, a study's and a
    search's `set`) is walked once, where it first appears; section defaults (`{}`) are left
    out, since they only make a section optional.
    """
    found: dict[str, object] = {}
    seen: set[str] = set()

    def walk(node: dict, path: str) -> None:
        node = _resolve(node, schema, seen)
        if "default" in node and not isinstance(node["default"], dict):
            found[path] = node["default"]
        for key, child in node.get("properties", {}).items():
            walk(child, f"{path}.{key}" if path else key)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        for branch in node.get("oneOf", []) + node.get("anyOf", []):
            for key, child in branch.get("properties", {}).items():
                walk(child, f"{path}.{key}")

    walk(schema, "")
    return found


def _section_prefix(schema: dict, section: str) -> str:
    """The dotted prefix of a section's rows: `search.*` for a mapping of named blocks."""
    node = schema["properties"][section]
    named = isinstance(node.get("additionalProperties"), dict) and "properties" not in node
    return f"{section}.*" if named else section


def readme_defaults(text: str, schema: dict) -> dict[str, object]:
    """The defaults the manual's key tables state, by dotted path.

    A default cell in backticks is YAML (`null`, `0.2`, `[0, 1, 2]`, `none`); any other cell
    (none, absent, (required)) says that the key has no default. A row named after its
    section (`seeds`, `tensorboard`) is the top-level key itself.
    """
    found: dict[str, object] = {}
    section, in_key_table = None, False
    for line in text.splitlines():
        heading = SECTION.match(line)
        if heading:
            section, in_key_table = heading.group(1), False
            continue
        if line.startswith("#"):
            section, in_key_table = None, False
            continue
        if re.match(r"^\|\s*key\s*\|\s*default\s*\|", line):
            in_key_table = section is not None
            continue
        if not line.startswith("|"):
            in_key_table = False
            continue
        row = ROW.match(line)
        if not (in_key_table and row):
            continue
        key = re.sub(r"<[^>]+>", "*", row.group(1))
        path = section if key == section else f"{_section_prefix(schema, section)}.{key}"
        cell = row.group(2)
        quoted = re.fullmatch(r"`([^`]*)`", cell)
        assert path not in found, f"config/README.md documents {path} twice"
        found[path] = yaml.safe_load(quoted.group(1)) if quoted else NO_DEFAULT
    return found


def test_every_documented_default_is_the_schemas() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    expected = schema_defaults(schema)
    documented = readme_defaults(README.read_text(), schema)
    wrong = {
        path: (value, expected.get(path, NO_DEFAULT))
        for path, value in documented.items()
        if value is not NO_DEFAULT and (path not in expected or expected[path] != value)
    }
    assert not wrong, f"config/README.md's default differs from the schema's: {wrong}"
    claimed_none = [p for p, v in documented.items() if v is NO_DEFAULT and p in expected]
    assert not claimed_none, f"config/README.md says these have no default: {claimed_none}"


def test_every_schema_default_is_documented() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    documented = readme_defaults(README.read_text(), schema)
    missing = sorted(set(schema_defaults(schema)) - set(documented))
    assert not missing, f"config/README.md does not list these keys' defaults: {missing}"


def test_the_check_reads_what_it_compares() -> None:
    """The parser finds a known row and the walker a nested default, so neither test is empty."""
    schema = yaml.safe_load(SCHEMA.read_text())
    defaults = schema_defaults(schema)
    assert defaults["train.early_stopping.min_delta"] == 0
    assert defaults["search.*.space.*.log"] is False
    assert "studies.*.set.lr" not in defaults
    text = (
        "## `dataset`\n\n| key | default | meaning |\n| --- | --- | --- |\n"
        "| `split_seed` | `7` | x |\n"
    )
    assert readme_defaults(text, schema) == {"dataset.split_seed": 7}
