"""Load and check the pipeline configuration against workflow/schemas/config.schema.yaml.

The schema is the single description of every key; this module turns its violations into
messages that name the key path, the offending value and the rule it breaks, and fills the
documented defaults so the rest of the code sees every setting explicitly.
"""

from __future__ import annotations

import copy
import difflib
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from hpstudy.errors import HpstudyError

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
README_HINT = "config/README.md explains every key"


@functools.cache
def load_schema() -> dict:
    """The config JSON schema (read once)."""
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def resolve(schema: dict, node: dict) -> dict:
    """Follow a local ``$ref`` (``#/definitions/...``) in ``node``."""
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def train_settings_schema() -> dict:
    """The schema of one run's training settings (``train:`` and each study's ``set:``)."""
    schema = load_schema()
    return {**schema["definitions"]["train_settings"], "definitions": schema["definitions"]}


def key_path(parts) -> str:
    """``['studies', 'lr', 'values', 2]`` -> ``studies.lr.values[2]``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe_error(err: jsonschema.ValidationError, prefix: str = "") -> str:
    """One line for one schema violation: where, what, which rule, and a hint where useful."""
    where = key_path([*filter(None, prefix.split(".")), *err.absolute_path])
    line = f"{where}: {err.message} (schema rule: {err.validator})"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        instance = err.instance if isinstance(err.instance, dict) else {}
        unknown = [k for k in instance if k not in allowed]
        for key in unknown:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(allowed)}"
            line += f"; unknown key {key!r}: {hint}"
    wants_number = "number" in str(err.validator_value)
    if err.validator == "type" and isinstance(err.instance, str) and wants_number:
        line += "; write a number, e.g. 1.0e-4"
    return line


def parse_scalar(text: str):
    """``"1e-4"`` -> 1e-4, ``"true"`` -> True, ``"3"`` -> 3; anything else stays text."""
    value = yaml.safe_load(text) if text.strip() else text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return text
    return value


def coerce_scalars(schema: dict, config: Any) -> Any:
    """Turn text into numbers or booleans exactly where the schema rejects text.

    YAML 1.1 reads ``1e-4`` as a string, and Snakemake's ``--config key={a: 1}`` passes nested
    values as strings; both mean a number. Text where the schema wants text is left alone.
    """
    config = copy.deepcopy(config)
    validator = jsonschema.Draft7Validator(schema)
    for err in validator.iter_errors(config):
        candidates = [err, *err.context] if err.validator == "oneOf" else [err]
        for e in candidates:
            if e.validator != "type" or not isinstance(e.instance, str) or not e.absolute_path:
                continue
            value = parse_scalar(e.instance)
            if isinstance(value, str):
                continue
            *parents, last = e.absolute_path
            node = config
            for part in parents:
                node = node[part]
            node[last] = value
    return config


def check_against(schema: dict, instance: Any, source: str, prefix: str = "") -> None:
    """Validate ``instance``; raise one HpstudyError listing every violation."""
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "; ".join(describe_error(e, prefix) for e in errors)
        raise HpstudyError(
            f"The configuration in {source} is invalid: {lines}. Fix these keys in the config "
            f"file (or the --config overrides); {README_HINT}."
        )


def fill_defaults(schema: dict, config: dict) -> dict:
    """A copy of ``config`` with each documented default filled in (top-level sections only).

    Study ``set:`` blocks are left sparse on purpose: they only override ``train``.
    """
    filled = copy.deepcopy(config)
    for key, prop in schema["properties"].items():
        if key not in filled and "default" in prop:
            filled[key] = copy.deepcopy(prop["default"])
        section = resolve(schema, prop)
        if isinstance(filled.get(key), dict) and "properties" in section:
            for sub, sub_prop in section["properties"].items():
                if sub not in filled[key] and "default" in sub_prop:
                    filled[key][sub] = copy.deepcopy(sub_prop["default"])
    return filled


def validate_config(config: dict, source: str = "the config") -> dict:
    """Check ``config`` against the schema and return it with every default filled in.

    Raises :class:`HpstudyError` naming each offending key path and the rule it breaks.
    """
    if not isinstance(config, dict) or not config:
        raise HpstudyError(
            f"The configuration in {source} is empty or not a mapping. Pass a config file, e.g. "
            f"`--configfile config/demo.yaml`; {README_HINT}."
        )
    schema = load_schema()
    config = coerce_scalars(schema, config)
    check_against(schema, config, source)
    filled = fill_defaults(schema, config)
    dataset = filled["dataset"]
    if dataset["source"] == "archive" and not dataset.get("archive"):
        raise HpstudyError(
            f"The configuration in {source} sets dataset.source: archive but no dataset.archive. "
            "Set dataset.archive to the path of the Kaggle zip you downloaded "
            "(intel-image-classification.zip), or use dataset.source: kaggle."
        )
    return filled


def load_config(path: str | Path) -> dict:
    """Read a YAML config file and return it validated, with defaults filled in."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise HpstudyError(
            f"The config file {path} does not exist. Pass an existing file, e.g. "
            "config/demo.yaml (offline) or config/config.yaml (the Kaggle data)."
        ) from None
    except yaml.YAMLError as err:
        raise HpstudyError(
            f"The config file {path} is not valid YAML: {err}. Fix its syntax."
        ) from None
    return validate_config(raw, source=str(path))
