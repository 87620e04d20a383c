"""The config schema (workflow/schemas/config.schema.yaml) as data: every setting's default,
title, short name and role, read once with PyYAML alone.

The schema is the one home of a setting's rules. :mod:`hpstudy.core.config` validates configs
against it (jsonschema); this module only reads the facts that other modules need without
validating anything, so that cheap readers (run names, identities, figure labels) need no
jsonschema.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


@functools.cache
def load_schema() -> dict:
    """The config JSON schema (read once; through libyaml where PyYAML has it: every job's
    process reads the schema, and the C loader reads it in a quarter of the time)."""
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def resolve(node: dict, schema: dict | None = None) -> dict:
    """Follow a local ``$ref`` (``#/definitions/...``) in ``node``."""
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = schema or load_schema()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


@functools.cache
def _train_properties() -> dict[str, dict]:
    return load_schema()["definitions"]["train_settings"]["properties"]


def setting_names() -> list[str]:
    """Every training setting, in schema order."""
    return list(_train_properties())


def setting_spec(key: str) -> dict:
    """The schema node of one training setting."""
    return _train_properties()[key]


def train_defaults() -> dict:
    """Every training setting's default (a fresh copy)."""
    return {key: copy.deepcopy(spec.get("default")) for key, spec in _train_properties().items()}


@functools.cache
def is_execution(key: str) -> bool:
    """Whether a setting changes only how a run is computed, never its numbers."""
    return bool(setting_spec(key).get("x-execution", False))


def identity_settings() -> list[str]:
    """The settings that can change a run's numbers, in schema order."""
    return list(_identity_settings())


@functools.cache
def _identity_settings() -> tuple[str, ...]:
    return tuple(key for key in setting_names() if not is_execution(key))


def abbreviation(key: str) -> str:
    """A setting's short name in run folder names (``lr``, ``bs``, ``kw``, ...)."""
    return _train_properties().get(key, {}).get("x-abbrev", key)


def title(key: str) -> str:
    """A setting's name for people (figure axes, findings)."""
    return setting_spec(key).get("title", key) if key in _train_properties() else key


def applies(key: str, settings: dict) -> bool:
    """Whether ``key`` shapes a run with these ``settings`` (its ``x-applies-when``)."""
    conditions = setting_spec(key).get("x-applies-when", {})
    return all(settings.get(other) in allowed for other, allowed in conditions.items())


@functools.cache  # asked for every value of every run when a sweep is planned
def is_float_setting(key: str) -> bool:
    """Whether the setting is a real number (written canonically as a float)."""
    return setting_spec(key).get("type") == "number"


def default(section: str, key: str) -> Any:
    """The schema's default of the config key ``section.key`` (``default("findings",
    "margin")``): what a command line falls back to, so it never restates the schema."""
    schema = load_schema()
    node = resolve(schema["properties"][section], schema)
    return copy.deepcopy(resolve(node["properties"][key], schema)["default"])
