"""A run config from a file and from flags: how ``shopagent train`` settles every knob.

Every field of an algorithm's config (``rl/<algo>_config.py``) can be set, in a TOML file
(``--config run.toml``, flat ``key = value`` lines, optionally ``algo = "dpo"``) or the
``config.json`` a finished run wrote, and by a flag; a flag wins over the file, the file over
the dataclass default. Keys and values are checked here against the fields and their types, so
a typo or a wrong type is one line naming the key and where it came from, never a TypeError
from deep inside TRL. ``config_fields`` is what the CLI generates its flags from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl import ALGORITHMS, config_class
from rl.base_config import RunConfig
from tools.errors import BadInput, NotFound

#: Keys a run's ``config.json`` records beside the fields; a file may hold them, they set nothing.
RECORDED_ONLY = frozenset({"algo", "writer_style", "base_model_dir", "versions", "created_at"})

_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One settable field: its name, value type, whether it may be unset, default and help."""

    name: str
    kind: type  # bool, int, float, str or tuple (a tuple of strings)
    optional: bool
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def config_fields(algo: str) -> tuple[ConfigField, ...]:
    """Every field of ``algo``'s run config, in declaration order."""
    cls = config_class(algo)
    hints = typing.get_type_hints(cls)
    out = []
    for item in dataclasses.fields(cls):
        kind, optional = _kind_of(hints[item.name], f"{cls.__name__}.{item.name}")
        out.append(
            ConfigField(
                name=item.name,
                kind=kind,
                optional=optional,
                default=item.default,
                help=str(item.metadata.get("help", "")),
            )
        )
    return tuple(out)


def fields_by_algorithm() -> dict[str, dict[str, ConfigField]]:
    """``{algo: {field name: ConfigField}}`` for every algorithm."""
    return {algo: {f.name: f for f in config_fields(algo)} for algo in ALGORITHMS}


def read_config_file(path: Path) -> dict[str, Any]:
    """The top-level table of a TOML file (or of a run's ``config.json``), unchecked."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no config file at {path}")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except ValueError as error:  # UnicodeDecodeError, JSONDecodeError, TOMLDecodeError
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise BadInput(f"{path}: not valid {kind} ({error})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a table of settings, got {type(data).__name__}")
    return data


def build_config(
    algo: str | None,
    *,
    path: Path | None = None,
    flags: Mapping[str, Any] | None = None,
) -> RunConfig:
    """``algo``'s config: defaults, then the file at ``path``, then ``flags`` (set values only).

    ``algo`` may be None when the file says ``algo = "..."``; both given must agree. Unknown
    keys, keys of another algorithm, wrong types and values the config refuses are ``BadInput``.
    """
    from_file = read_config_file(path) if path is not None else {}
    algo = _choose_algorithm(algo, from_file.get("algo"), path)
    known = fields_by_algorithm()
    fields = known[algo]
    values: dict[str, Any] = {}
    for key, value in from_file.items():
        if key in RECORDED_ONLY:
            continue
        if key not in fields:
            raise BadInput(f"{path}: {_not_a_setting(repr(key), key, algo, known)}")
        values[key] = coerce(fields[key], value, f"{path}: {key}")
    for key, value in (flags or {}).items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if key not in fields:
            raise BadInput(_not_a_setting(flag, key, algo, known))
        values[key] = coerce(fields[key], value, flag)
    config = config_class(algo)(**values)
    _refuse_overridden(config, values)
    return config


def coerce(item: ConfigField, value: Any, where: str) -> Any:
    """``value`` as ``item``'s type, or ``BadInput`` naming ``where`` it came from."""
    if value is None:
        if item.optional:
            return None
        raise BadInput(f"{where} must be set ({_describe(item)})")
    if item.kind is tuple:
        parts = value.split(",") if isinstance(value, str) else value
        if isinstance(parts, list | tuple) and all(isinstance(p, str) for p in parts):
            names = tuple(p.strip() for p in parts if p.strip())
            if names:
                return names
        raise BadInput(f"{where} must be {_describe(item)}, got {value!r}")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if item.kind is float and number and math.isfinite(value):
        return float(value)
    if item.kind is int and number and isinstance(value, int):
        return value
    if item.kind in (bool, str) and isinstance(value, item.kind):
        return value
    raise BadInput(f"{where} must be {_describe(item)}, got {value!r}")


def _choose_algorithm(flag: str | None, in_file: Any, path: Path | None) -> str:
    if in_file is not None and in_file not in ALGORITHMS:
        raise BadInput(f"{path}: unknown algo {in_file!r}; choose one of {list(ALGORITHMS)}")
    if flag is not None and flag not in ALGORITHMS:
        raise BadInput(f"unknown algorithm {flag!r}; choose one of {list(ALGORITHMS)}")
    if flag is not None and in_file is not None and flag != in_file:
        raise BadInput(f"{path} is a {in_file} config; it cannot train --algo {flag}")
    algo = flag or in_file
    if algo is None:
        choices = "|".join(ALGORITHMS)
        raise BadInput(f"choose an algorithm: --algo {choices} (or algo = ... in the config file)")
    return str(algo)


def _not_a_setting(
    label: str, key: str, algo: str, known: Mapping[str, Mapping[str, ConfigField]]
) -> str:
    owners = [other for other, fields in known.items() if key in fields]
    if owners:
        return f"{label} is a {'/'.join(owners)} setting, not a {algo} one"
    return f"{label} is not a {algo} setting (see `shopagent train --help`)"


def _refuse_overridden(config: RunConfig, values: Mapping[str, Any]) -> None:
    """A value the config derives itself (GRPO's batch size) cannot be set to something else."""
    for key, wanted in values.items():
        actual = getattr(config, key)
        if actual != wanted:
            raise BadInput(
                f"{config.algo} sets {key} itself ({actual} here), so {wanted!r} cannot be "
                f"used: {_help_of(config, key)}"
            )


def _help_of(config: RunConfig, key: str) -> str:
    return next(f.metadata.get("help", "") for f in dataclasses.fields(config) if f.name == key)


def _describe(item: ConfigField) -> str:
    if item.kind is tuple:
        return "a non-empty list of names (comma-separated on the command line)"
    return _KINDS[item.kind]


def _kind_of(hint: Any, where: str) -> tuple[type, bool]:
    """``(base type, optional)`` of a field's annotation; anything else is a programming error."""
    args = typing.get_args(hint)
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise TypeError(f"{where}: only X | None unions can become a flag, not {hint}")
        hint, optional = rest[0], True
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args == (str, Ellipsis):
        return tuple, optional
    if hint in _KINDS:
        return hint, optional
    raise TypeError(f"{where}: no flag type for {hint!r}")
