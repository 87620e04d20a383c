"""Validate a configuration against workflow/schemas/config.schema.yaml: the one validator.

The schema describes every key; this module turns its violations into messages that name the
key path, the offending value and the rule it breaks, adds the few checks a JSON schema cannot
express (finite numbers, a study sweeping a real setting), and fills the documented defaults
so the rest of the code sees every setting explicitly. Checks that need the expanded runs
(image size against each model) live with the sweep (:mod:`hpstudy.sweep.plan`).
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hpstudy.core import schema
from hpstudy.core.errors import HpstudyError

if TYPE_CHECKING:  # imported where a config is validated: not on a training job's path
    import jsonschema

README_HINT = "config/README.md explains every key"


def key_path(parts) -> str:
    """``['studies', 'lr', 'values', 2]`` -> ``studies.lr.values[2]``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def did_you_mean(word: str, known) -> str:
    """``did you mean 'epochs'?`` or the list of known words."""
    known = sorted(known)
    close = difflib.get_close_matches(str(word), known, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"


def describe_error(err: jsonschema.ValidationError, prefix: str = "") -> str:
    """One line for one schema violation: where, what, which rule, and a hint where useful."""
    where = key_path([*filter(None, prefix.split(".")), *err.absolute_path])
    if err.validator == "not" and "x-refused" in err.schema:
        refused = refused_characters(err)
        return f"{where}: {err.instance!r} holds {refused}; {err.schema['x-refused']}"
    line = f"{where}: {err.message} (schema rule: {err.validator})"
    if err.validator == "additionalProperties":
        allowed = err.schema.get("properties", {})
        instance = err.instance if isinstance(err.instance, dict) else {}
        for key in (k for k in instance if k not in allowed):
            line += f"; unknown key {key!r}: {did_you_mean(key, allowed)}"
    wants_number = "number" in str(err.validator_value)
    if err.validator == "type" and isinstance(err.instance, str) and wants_number:
        line += "; write a number, e.g. 1.0e-4"
    return line


def refused_characters(err: jsonschema.ValidationError) -> str:
    """The characters of a refused text that its rule's character class names, e.g. ``$ ( )``
    (a control character by its escape, e.g. ``'\\n'``)."""
    found = dict.fromkeys(re.findall(err.validator_value["pattern"], str(err.instance)))
    return " ".join(c if c.isprintable() else repr(c) for c in found)


def parse_scalar(text: str):
    """``"1e-4"`` -> 1e-4, ``"true"`` -> True, ``"3"`` -> 3; anything else stays text."""
    value = yaml.safe_load(text) if text.strip() else text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return text
    return value


def coerce_scalars(node_schema: dict, config: Any) -> Any:
    """Turn text into numbers or booleans exactly where the schema rejects text.

    YAML 1.1 reads ``1e-4`` as a string, and Snakemake's ``--config key={a: 1}`` passes nested
    values as strings; both mean a number. Text where the schema wants text is left alone.
    """
    import jsonschema

    config = copy.deepcopy(config)
    validator = jsonschema.Draft7Validator(node_schema)
    for err in validator.iter_errors(config):
        candidates = [err, *err.context] if err.validator == "oneOf" else [err]
        for e in candidates:
            if e.validator != "type" or not isinstance(e.instance, str):
                continue
            value = parse_scalar(e.instance)
            if isinstance(value, str):
                continue
            if not e.absolute_path:
                config = value
                continue
            *parents, last = e.absolute_path
            node = config
            for part in parents:
                node = node[part]
            node[last] = value
    return config


def violations(node_schema: dict, instance: Any, prefix: str = "") -> list[str]:
    """One line per schema violation of ``instance`` (empty when it is valid)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(node_schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    return [describe_error(e, prefix) for e in errors]


def invalid(source: str, lines: list[str]) -> HpstudyError:
    """The one error for a config with these problems."""
    return HpstudyError(
        f"The configuration in {source} is invalid: {'; '.join(lines)}. Fix these keys in the "
        f"config file (or the --config overrides); {README_HINT}."
    )


def non_finite(config: Any, parts: tuple = ()) -> list[str]:
    """Key paths holding ``.nan`` or ``.inf`` (JSON schema's number checks let them pass)."""
    if isinstance(config, float):
        return (
            [] if math.isfinite(config) else [f"{key_path(parts)}: {config} is not a finite number"]
        )
    if isinstance(config, dict):
        return [line for k, v in config.items() for line in non_finite(v, (*parts, k))]
    if isinstance(config, list):
        return [line for i, v in enumerate(config) for line in non_finite(v, (*parts, i))]
    return []


def study_problems(studies: dict) -> list[str]:
    """A study must sweep training settings that shape a run's numbers; zip lists must match."""
    sweepable = schema.identity_settings()
    lines = []
    for name, study in studies.items():
        axes = study.get("params") or (
            {study["param"]: study["values"]} if "param" in study else {}
        )
        where = f"studies.{name}.{'params' if 'params' in study else 'param'}"
        for key in axes:
            if key not in sweepable:
                why = "changes no number" if key in schema.setting_names() else "is not a setting"
                lines.append(
                    f"{where}: {key!r} {why}, so it cannot be swept; {did_you_mean(key, sweepable)}"
                )
        lengths = {key: len(values) for key, values in axes.items()}
        if study.get("mode") == "zip" and len(set(lengths.values())) > 1:
            lines.append(
                f"studies.{name}.params: mode zip pairs the lists position by position, but "
                f"their lengths differ ({', '.join(f'{k}: {n}' for k, n in lengths.items())})"
            )
    return lines


def has_no_validation(dataset: dict) -> bool:
    """Whether the data is known to come without a validation split (the Kaggle zip and the
    digits bring none; another archive or folder may bring a val/ folder of its own)."""
    if dataset.get("val_fraction"):
        return False
    # test_from: val makes the data's own validation split the test split
    return dataset["source"] in ("kaggle", "digits") or dataset.get("test_from") == "val"


def why_no_validation(dataset: dict) -> str:
    """Why the data has no validation split, for :func:`has_no_validation`'s refusals."""
    if dataset.get("test_from") == "val":
        return "dataset.test_from: val makes the data's validation split the test split"
    return f"dataset.source {dataset['source']} brings no validation split"


def source_problem(dataset: dict) -> str | None:
    """What is wrong with the dataset's later-added source settings (Parquet, a label file)."""
    source, path, labels = dataset["source"], dataset.get("path"), dataset.get("labels")
    if source == "parquet" and not (path and Path(path).expanduser().exists()):
        return (
            f"sets dataset.source: parquet, but dataset.path ({path!r}) does not exist. Set "
            "dataset.path to a .parquet file or a folder of shards."
        )
    if labels and source in ("digits", "parquet"):
        return (
            f"sets dataset.labels, which does not apply to dataset.source: {source} (the data "
            "names its classes itself). Remove dataset.labels, or use source folder or archive."
        )
    if labels and not Path(labels).expanduser().is_file():
        return (
            f"sets dataset.labels: {labels!r}, which is not an existing file. Set it to the CSV "
            "or JSON-lines file naming each image's file and class."
        )
    if dataset.get("pred") and (labels or source == "parquet" or dataset.get("test_from")):
        return (
            "sets dataset.pred (the Kaggle layout's unlabelled seg_pred/ images), which does "
            "not combine with dataset.labels, dataset.test_from or source parquet."
        )
    return None


def search_problems(config: dict) -> list[str]:
    """What is wrong with the config's searches, found before any job runs."""
    found = []
    settings = schema.setting_names()
    for name, spec in config.get("search", {}).items():
        where = f"search.{name}"
        if name in config["studies"]:
            found.append(f"{where}: a study has the same name; rename one of them")
        for key, dimension in spec["space"].items():
            found += dimension_problems(f"{where}.space.{key}", key, dimension, settings)
        if spec.get("halving") and "epochs" in spec.get("set", {}):
            found.append(
                f"{where}: set.epochs and halving both say how long trials train; with halving "
                "the rungs decide (min_epochs x eta^rung): drop set.epochs"
            )
        if spec.get("halving") and "epochs" in spec["space"]:
            found.append(f"{where}: with halving the rungs decide epochs; drop epochs from space")
        if not spec.get("on_test") and has_no_validation(config["dataset"]):
            found.append(
                f"{where}: metric {spec['metric']} needs a validation split, and "
                f"{why_no_validation(config['dataset'])} while dataset.val_fraction is 0; set "
                "dataset.val_fraction (e.g. 0.2) or, knowing that a setting searched on the "
                f"test set has an optimistic test number, set {where}.on_test: true (every "
                "output then says so)"
            )
    return found


def dimension_problems(where: str, key: str, dimension: dict, settings: list[str]) -> list[str]:
    """What makes one search dimension unusable: an unknown or execution-only setting, a
    range on a setting that is not a number, an empty or inverted range, bad choices."""
    if key not in settings:
        return [f"{where}: {key!r} is not a training setting; {did_you_mean(key, settings)}"]
    if schema.is_execution(key):
        return [f"{where}: {key} changes how a run is computed, never its numbers: not searched"]
    node = schema.setting_spec(key)
    if "choices" in dimension:
        return [
            line
            for i, choice in enumerate(dimension["choices"])
            for line in violations(node, choice, prefix=f"{where}.choices[{i}]")
        ]
    if node.get("type") not in ("number", "integer"):
        return [f"{where}: {key} is not a number; give it `choices` instead of a range"]
    low, high = dimension["low"], dimension["high"]
    out = [
        line
        for bound, value in (("low", low), ("high", high))
        for line in violations(node, value, prefix=f"{where}.{bound}")
    ]
    if not low < high:
        out.append(f"{where}: low ({low}) must be below high ({high})")
    if dimension.get("log") and low <= 0:
        out.append(f"{where}: a log range needs low > 0 (got {low})")
    if node.get("type") == "integer" and not (float(low).is_integer() and float(high).is_integer()):
        out.append(f"{where}: {key} is an integer setting; give whole-number bounds")
    return out


def fill_defaults(config: dict) -> dict:
    """A copy of ``config`` with each documented default filled in (top-level sections only).

    Study ``set:`` blocks stay sparse on purpose: they only override ``train``.
    """
    full = schema.load_schema()
    filled = copy.deepcopy(config)
    if "final" in filled:  # the final runs retrain the selected winners
        filled.setdefault("selection", {})
    for key, prop in full["properties"].items():
        if key not in filled and "default" in prop:
            filled[key] = copy.deepcopy(prop["default"])
        section = schema.resolve(prop, full)
        if isinstance(filled.get(key), dict) and "properties" in section:
            for sub, sub_prop in section["properties"].items():
                if sub not in filled[key] and "default" in sub_prop:
                    filled[key][sub] = copy.deepcopy(sub_prop["default"])
    for study in filled.get("studies", {}).values():
        study.setdefault("mode", "product")
    search_node = full["definitions"]["search"]["properties"]
    for search in filled.get("search", {}).values():
        for key, prop in search_node.items():
            if key not in search and "default" in prop:
                search[key] = copy.deepcopy(prop["default"])
        for dimension in search["space"].values():
            if "low" in dimension:
                dimension.setdefault("log", False)
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
    full = schema.load_schema()
    config = coerce_scalars(full, config)
    lines = violations(full, config) + non_finite(config)
    if not lines and not config.get("studies") and not config.get("search"):
        lines = ["no `studies` and no `search`: give the sweep at least one study (a grid) or "
                 "one search"]  # fmt: skip
    if not lines:
        lines = study_problems(config.get("studies", {}))
    if lines:
        raise invalid(source, lines)
    filled = fill_defaults(config)
    lines = search_problems(filled)
    if lines:
        raise invalid(source, lines)
    dataset = filled["dataset"]
    if dataset["source"] == "archive" and not dataset.get("archive"):
        raise HpstudyError(
            f"The configuration in {source} sets dataset.source: archive but no dataset.archive. "
            "Set dataset.archive to the path of the Kaggle zip you downloaded "
            "(intel-image-classification.zip), or use dataset.source: kaggle."
        )
    if dataset["source"] == "folder" and not (
        dataset.get("path") and Path(dataset["path"]).expanduser().is_dir()
    ):
        raise HpstudyError(
            f"The configuration in {source} sets dataset.source: folder, but dataset.path "
            f"({dataset.get('path')!r}) is not an existing folder. Set dataset.path to the "
            "folder holding your images (class folders, or train/ and test/ folders of class "
            "folders; see config/README.md)."
        )
    problem = source_problem(dataset)
    if problem:
        raise HpstudyError(f"The configuration in {source} {problem}")
    selection = filled.get("selection")
    if selection is not None and not selection["on_test"] and has_no_validation(dataset):
        raise HpstudyError(
            f"The configuration in {source} asks for `selection` (each study's winner chosen on "
            f"a validation split), but {why_no_validation(dataset)} and dataset.val_fraction "
            "is 0. Set `dataset.val_fraction` (e.g. 0.2) to hold "
            "out part of the training images or, knowing that a winner chosen on the test set "
            "makes its test number optimistic, set `selection.on_test: true` (every output "
            "then says so)."
        )
    final = filled.get("final")
    if final is not None and final["train_on"] == "train+val" and has_no_validation(dataset):
        raise HpstudyError(
            f"The configuration in {source} asks for final runs trained on train+val "
            "(`final.train_on`, whose default is train+val), but dataset.source "
            f"{dataset['source']} brings no validation split and dataset.val_fraction is 0, so "
            "there are no validation images to add. Set `final.train_on: train` (the final runs "
            "then train on the training split alone), or set `dataset.val_fraction` (e.g. 0.2) "
            "to hold out part of the training images."
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
        raise HpstudyError(yaml_problem(path, err)) from None
    return validate_config(raw, source=str(path))


def yaml_problem(path: Path, err: yaml.YAMLError) -> str:
    """What is wrong with a config file YAML cannot read, and the fix. (Snakemake reads a
    ``--configfile`` itself before the workflow runs, and says only "not valid JSON or YAML
    ... tab indentation"; ``hpstudy sweep --configfile`` names the cause.)"""
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(err, "problem", None) or ""
    tag = re.search(r"the tag '(?:tag:yaml\.org,2002:)?([^']+)'", problem)
    if isinstance(err, yaml.constructor.ConstructorError) and tag:
        return (
            f"The config file {path} uses the YAML tag !!{tag[1]}{where}, which a config may "
            "not use: a config holds plain values (text, numbers, true/false, lists and "
            "mappings), and no tag is ever constructed or run. Remove the tag and write the "
            "plain value in its place."
        )
    return f"The config file {path} is not valid YAML{where}: {problem or err}. Fix its syntax."
