"""Load the YAML config, expand ${VAR} references, validate, and explain every problem."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from shared.config.hints import did_you_mean, missing_file_fix, unreadable_fix, yaml_fix
from shared.config.schema import ReactorConfig
from shared.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
AZURE_TEMPLATE = Path(__file__).with_name("azure.example.yaml")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z0-9 _.-]*>")  # `<subscription-id>`, as the Azure template writes them
_TARGET_SECTIONS = ("registries", "deployments", "batch")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
# YAML 1.1 reads `on:` (the rules' key) and yes/no as booleans; keep only true/false, as YAML 1.2 does.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def expand(value: Any, env: dict[str, str], *, path: tuple[Any, ...] = (), unset: list[Any] | None = None) -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string of the document; a VAR that is not set
    raises KeyError, or, given ``unset``, is collected there as (key path, name) and left as written."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            if unset is None:
                raise KeyError(name)
            unset.append((list(path), name))
            return match.group(0)

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [expand(v, env, path=(*path, i), unset=unset) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: expand(v, env, path=(*path, k), unset=unset) for k, v in value.items()}
    return value


def placeholders(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[list[Any], str]]:
    """Every `<...>` a template left in a value, with its key path (a config with one is not ready)."""
    if isinstance(value, str):
        return [(list(path), found) for found in _PLACEHOLDER.findall(value)]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in placeholders(v, (*path, i))]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in placeholders(v, (*path, k))]
    return []


def load_config(path: str | Path | None, env: dict[str, str] | None = None) -> ReactorConfig:
    """Read and validate a config file; raises ConfigError naming file, key and fix."""
    env = dict(os.environ if env is None else env)
    env.setdefault("MODELOPS_STATE_DIR", ".modelops")
    source = Path(path) if path else DEFAULT_CONFIG
    label = str(source)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(label, "(file)", "file not found", missing_file_fix(source)) from None
    except OSError as exc:
        raise ConfigError.single(label, "(file)", f"cannot read: {exc}", unreadable_fix(exc, source)) from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - strict *safe* loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        problem = getattr(exc, "problem", None) or str(exc)
        fix = yaml_fix(problem, getattr(exc, "context", None) or "")
        raise ConfigError.single(label, where, f"not valid YAML: {problem}", fix) from None
    if document is None or document == {}:
        raise ConfigError.single(
            label,
            "(document)",
            "the file is empty: no sources, targets or rules",
            "write one with `modelops config init` (or `--azure`), or point MODELOPS_CONFIG at your config",
        )
    if not isinstance(document, dict):
        raise ConfigError.single(
            label, "(document)", "top level must be a mapping", "use keys sources, registries, ..."
        )
    unset: list[Any] = []
    document = expand(document, env, unset=unset)
    problems = [
        (
            _dotted(loc),
            f"${{{name}}} is referenced but not set",
            f"set the {name} app setting / environment variable, or write ${{{name}:-default}}",
        )
        for loc, name in unset
    ]
    for loc, found in placeholders(document):
        about = _field_description(loc, document)
        problems.append(
            (
                _dotted(loc),
                f"still holds the template's placeholder {found}",
                f"replace {found} with the real value" + (f": {about}" if about else ""),
            )
        )
    flagged = {key for key, _, _ in problems}
    try:
        config = ReactorConfig.model_validate(document)
    except ValidationError as exc:
        explained = [_explain(err, document) for err in exc.errors()]
        raise ConfigError(label, problems + [p for p in explained if not _under(p[0], flagged)]) from None
    if problems:
        raise ConfigError(label, problems)
    problems = config.cross_check()
    if problems:
        raise ConfigError(label, problems)
    return config


def _explain(err: Any, document: dict[str, Any]) -> tuple[str, str, str]:
    loc = list(err["loc"])
    if len(loc) >= 3 and loc[0] in _TARGET_SECTIONS:
        # pydantic puts the discriminator value into the path of tagged unions; users never wrote it
        loc.pop(2)
    key = _dotted(loc)
    kind = err["type"]
    message = err["msg"].removeprefix("Value error, ")
    field = _field_description(loc, document)
    if kind == "missing":
        return key, "required key is missing", f"add it: {field}" if field else "add it"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], document)
        meant = did_you_mean(str(loc[-1]), allowed)
        return key, "unknown key", f"{meant}fix the spelling or remove it; allowed: {', '.join(allowed)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        expected = err.get("ctx", {}).get("expected_tags", "")
        return key + (".kind" if kind == "union_tag_invalid" else ""), message, f"set `kind:` to one of {expected}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return key, message, f"use one of {expected}" if expected else ""
    how = _TYPE_FIXES.get(kind)
    if how is None:  # a check of ours: its message already says what to write
        return key, message, ""
    return key, message, how + (f"; it is the {field}" if field else "")


def _under(key: str, flagged: set[str]) -> bool:
    """A key already reported (or one of its parents, whose error a placeholder below it causes)."""
    return any(f == key or f.startswith((f"{key}.", f"{key}[")) for f in flagged)


# how to fix a value of the wrong type, by pydantic's error type (the message says what is wrong)
_TYPE_FIXES = {
    "int_parsing": "write a whole number, e.g. 42",
    "int_type": "write a whole number, e.g. 42",
    "int_from_float": "write a whole number, e.g. 42",
    "float_parsing": "write a number, e.g. 0.5",
    "float_type": "write a number, e.g. 0.5",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "string_type": 'write a string (quote it: "..." if YAML reads it as something else)',
    "list_type": "write a list: [a, b] or one `- item` per line",
    "dict_type": "write a mapping: `key: value` lines indented under it",
    "model_type": "write a mapping: `key: value` lines indented under it",
    "model_attributes_type": "write a mapping: `key: value` lines indented under it",
    "too_short": "add at least one entry",
    "string_too_short": "give a non-empty value",
    "string_too_long": "shorten it",
    "greater_than": "raise it above the limit the message names",
    "greater_than_equal": "raise it to at least the limit the message names",
    "less_than": "lower it below the limit the message names",
    "less_than_equal": "lower it to at most the limit the message names",
    "string_pattern_mismatch": "write it in the form the message shows",
}


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _walk(loc: list[Any], document: Any = None) -> tuple[type[BaseModel] | None, str | None]:
    """The model and field description at ``loc``; for `kind` unions, the member the entry names."""
    model: type[BaseModel] | None = ReactorConfig
    description = None
    node = document
    annotation: Any = None
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else node[part] if _indexable(node, part) else None
        if isinstance(part, int):
            continue
        if model is None:
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            # a dict key (a target or source name): descend into the dict's value type
            model = _model_of(annotation, node)
            continue
        description = info.description
        annotation = info.annotation
        model = _model_of(annotation, node)
    return model, description


def _indexable(node: Any, part: Any) -> bool:
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _model_of(annotation: Any, node: Any = None) -> type[BaseModel] | None:
    from typing import get_args

    members = _models_in(annotation)
    kind = node.get("kind") if isinstance(node, dict) else None
    for member in members:
        field = member.model_fields.get("kind")
        if kind is not None and field is not None and kind in get_args(field.annotation):
            return member
    return members[0] if members else None


def _field_description(loc: list[Any], document: Any) -> str | None:
    return _walk(loc, document)[1]


def _allowed_keys(loc: list[Any], document: Any) -> list[str]:
    model, _ = _walk(loc, document)
    return sorted(model.model_fields) if model else []
