"""How to reach the LLM: one OpenAI-compatible endpoint, or the embedded local model.

No ``base_url`` means "the local model": ``model`` then names a directory in the model store
and ``agent.runtime.model_server`` starts ``transformers serve`` for it. With a ``base_url``
(OpenAI, vLLM, Ollama, llama.cpp's server, a running ``shopagent serve``) ``model`` is whatever
that server calls its model. Precedence, highest first, as in ``tools.settings.config``: CLI
flags, ``SHOPAGENT_LLM_*`` environment variables, the ``[llm]`` table of
``$SHOPAGENT_HOME/config.toml``, the defaults here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tools.errors import BadInput
from tools.settings.checks import checked, number, seconds, shown, temperature, text, url

DEFAULT_LOCAL_MODEL = "smollm2-135m"
#: Bounds of the integer settings: more is a typo, not a wish.
MAX_TOKENS = 1_000_000
MAX_RETRIES = 100


@dataclass(frozen=True, slots=True)
class LLMSettings:
    base_url: str | None = None
    model: str = DEFAULT_LOCAL_MODEL
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.0
    max_tokens: int = 256
    timeout_s: float = 120.0
    max_retries: int = 2
    #: Strings that end a reply where they start; ``None``: the served local model's own
    #: (``<tool_response>``: a small model that starts writing the tool's reply itself has
    #: stopped answering, grounding drops that text anyway, and generating it costs seconds),
    #: nothing for other endpoints, since some hosted reasoning models refuse the parameter.
    #: ``()`` sends none, even to the local model.
    stop: tuple[str, ...] | None = None
    #: Who writes the chat's replies: ``model`` (its prose, shown only when it passes the
    #: grounding checks), ``composed`` (the graph composes them from the results; the model
    #: only writes the search) or ``auto``: composed for the embedded local model (a 135M
    #: model cannot write trustworthy prose), model for a configured endpoint.
    prose: str = "auto"
    #: What serves the local model (ignored with a ``base_url``): ``ctranslate2`` (int8 CPU
    #: kernels, the default: several times faster on two cores, the same greedy tokens) or
    #: ``transformers`` (``transformers serve``; also what a model CTranslate2 cannot convert,
    #: or a home where its converted copy cannot be written, falls back to).
    runtime: str = "ctranslate2"

    @property
    def is_local(self) -> bool:
        """True when no endpoint is configured and the stored local model must be served."""
        return self.base_url is None


LLM_ENV: dict[str, str] = {
    "base_url": "SHOPAGENT_LLM_BASE_URL",
    "model": "SHOPAGENT_LLM_MODEL",
    "api_key": "SHOPAGENT_LLM_API_KEY",
    "temperature": "SHOPAGENT_LLM_TEMPERATURE",
    "max_tokens": "SHOPAGENT_LLM_MAX_TOKENS",
    "timeout_s": "SHOPAGENT_LLM_TIMEOUT",
    "max_retries": "SHOPAGENT_LLM_RETRIES",
    "stop": "SHOPAGENT_LLM_STOP",
    "prose": "SHOPAGENT_LLM_PROSE",
    "runtime": "SHOPAGENT_LLM_RUNTIME",
}

# The file accepts the field names, plus `timeout` and `retries` to match the env var names.
_FILE_ALIASES = {"timeout": "timeout_s", "retries": "max_retries"}


def load_llm_settings(
    from_file: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    file_label: str = "config.toml [llm]",
) -> LLMSettings:
    """Defaults, then the ``[llm]`` table, then the environment, then ``overrides`` (CLI flags)."""
    env = os.environ if environ is None else environ
    settings = LLMSettings()
    if from_file:
        table = {_FILE_ALIASES.get(k, k): v for k, v in from_file.items()}
        settings = replace(settings, **_validated(table, file_label))
    from_env = {name: env[var] for name, var in LLM_ENV.items() if env.get(var)}
    for name, raw in from_env.items():
        settings = replace(settings, **_validated({name: raw}, LLM_ENV[name]))
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        settings = replace(settings, **_validated(given, "command line"))
    return settings


def _validated(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Typed, range-checked values (``tools.settings.checks``); one ``BadInput`` line naming
    the source otherwise."""
    known = {f.name for f in fields(LLMSettings)}
    unknown = set(values) - known
    if unknown:
        raise BadInput(f"{source}: unknown LLM settings {sorted(unknown)}")
    return {name: checked(source, name, _CONVERT[name], value) for name, value in values.items()}


def _stop_strings(value: Any) -> tuple[str, ...]:
    """A list of strings (``config.toml``; ``[]`` for none), or one string (the environment)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(s, str) and s for s in items):
        raise ValueError(f"must be a string or a list of non-empty strings, got {shown(value)}")
    return tuple(items)


PROSE_MODES = ("auto", "model", "composed")


def prose_mode(llm: LLMSettings) -> str:
    """``model`` or ``composed``: ``auto`` resolved against the settings *before* the local
    model is served (serving fills in ``base_url``)."""
    if llm.prose != "auto":
        return llm.prose
    return "composed" if llm.is_local else "model"


def _prose(value: Any) -> str:
    mode = text(value).lower()
    if mode not in PROSE_MODES:
        raise ValueError(f"must be one of {', '.join(PROSE_MODES)}, got {shown(value)}")
    return mode


RUNTIMES = ("ctranslate2", "transformers")


def _runtime(value: Any) -> str:
    runtime = text(value).lower()
    if runtime not in RUNTIMES:
        raise ValueError(f"must be one of {', '.join(RUNTIMES)}, got {shown(value)}")
    return runtime


def _url(value: Any) -> str:
    return url(value).rstrip("/")


_CONVERT: dict[str, Any] = {
    "base_url": _url,
    "model": text,
    "api_key": text,
    "temperature": temperature,
    "max_tokens": number(0, MAX_TOKENS, integer=True, above_low=True),
    "timeout_s": seconds,
    "max_retries": number(0, MAX_RETRIES, integer=True),
    "stop": _stop_strings,
    "prose": _prose,
    "runtime": _runtime,
}
