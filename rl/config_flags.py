"""``shopagent train``'s options, generated from the run-config dataclasses.

Typer reads a command's options from its function's signature, so ``with_run_config_flags``
builds that signature: one option per field of any algorithm's run config
(``rl.config_builder``), each with the field's ``metadata["help"]``. Adding a field to a config
adds its flag, its ``--config`` key and its help at once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from rl.config_builder import fields_by_algorithm

#: Older or shorter spellings kept for run configs' flags (``--base`` predates ``--base-model``).
TRAIN_FLAG_ALIASES = {"base_model": ("--base",)}


def with_run_config_flags(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` plus one option per field of any algorithm's run config, as ``overrides``.

    Typer reads options from a function's signature, so this one is generated from the config
    dataclasses (``rl.config_builder``): a field added to a config is a flag at once, with its
    ``metadata["help"]`` as the help. Every generated option defaults to None ("not given"), so
    ``--config`` and the dataclass defaults keep anything the command line leaves alone, and a
    flag of another algorithm is refused by ``build_config`` with a line saying whose it is.
    """
    by_algo = fields_by_algorithm()
    names = list(dict.fromkeys(name for fields in by_algo.values() for name in fields))
    generated = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=run_config_option(
                {algo: fields[name] for algo, fields in by_algo.items() if name in fields},
                every_algo=all(name in fields for fields in by_algo.values()),
            ),
        )
        for name in names
    ]
    fixed = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.name != "overrides"
    ]

    @functools.wraps(command)
    def with_flags(**values: Any) -> None:
        overrides = {name: values.pop(name) for name in names}
        command(**values, overrides=overrides)

    parameters = [*fixed, *generated]
    with_flags.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_flags.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_flags


def run_config_option(owners: dict[str, Any], *, every_algo: bool) -> Any:
    """The typer annotation of one config field, shared by the algorithms in ``owners``."""
    first = next(iter(owners.values()))
    kinds = {item.kind for item in owners.values()}
    if len(kinds) != 1:  # a programming error: one flag cannot take two types
        raise TypeError(f"{first.name} has different types across algorithms: {kinds}")
    decls = [f"{first.flag}/--no-{first.flag[2:]}" if first.kind is bool else first.flag]
    decls += TRAIN_FLAG_ALIASES.get(first.name, ())
    helps: dict[str, list[str]] = {}
    defaults: dict[str, list[str]] = {}
    for algo, item in owners.items():
        helps.setdefault(item.help, []).append(algo)
        defaults.setdefault(shown_default(item.default), []).append(algo)
    if every_algo and len(helps) == 1:
        text = first.help
    else:
        text = "; ".join(f"{'/'.join(a)}: {h.rstrip('.')}" for h, a in helps.items()) + "."
    if len(defaults) > 1:
        text += " Default: " + "; ".join(f"{'/'.join(a)} {d}" for d, a in defaults.items()) + "."
    elif "unset" not in defaults:  # a field that may be unset says in its help what that means
        text += f" Default: {next(iter(defaults))}."
    value_type = str if first.kind is tuple else first.kind
    return Annotated[
        value_type | None,
        typer.Option(
            *decls,
            help=text,
            metavar="NAME,NAME,..." if first.kind is tuple else None,
            rich_help_panel="Run config" if every_algo else "Algorithm settings",
        ),
    ]


def shown_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)
