"""All settings in one place.

Precedence, highest first: CLI flags (passed as ``overrides``), environment variables
(``SHOPAGENT_*``), the config file (``$SHOPAGENT_HOME/config.toml``), the data folder a
command recorded in the home (``remember_data_dir``), built-in defaults.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from tools.atomic_write import write_text
from tools.errors import BadInput
from tools.settings.llm import LLMSettings, load_llm_settings


def default_home() -> Path:
    return Path(os.environ.get("SHOPAGENT_HOME") or platformdirs.user_data_dir("shopagent"))


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path = field(default_factory=default_home)
    data_dir: Path | None = None
    es_url: str | None = None
    chroma_url: str | None = None
    lexical_backend: str = "auto"
    llm: LLMSettings = field(default_factory=LLMSettings)

    def index_dir(self, dataset: str) -> Path:
        """Where the embedded indexes of one dataset live."""
        return self.home / "indexes" / dataset

    def tantivy_dir(self, dataset: str) -> Path:
        return self.index_dir(dataset) / "tantivy"

    def chroma_dir(self, dataset: str) -> Path:
        return self.index_dir(dataset) / "chroma"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"


_ENV = {
    "data_dir": "SHOPAGENT_DATA_DIR",
    "es_url": "SHOPAGENT_ES_URL",
    "chroma_url": "SHOPAGENT_CHROMA_URL",
    "lexical_backend": "SHOPAGENT_LEXICAL_BACKEND",
}


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults, then the config file, then the environment, then ``overrides`` (CLI flags).

    The ``[llm]`` table and ``overrides["llm"]`` (a dict) feed ``tools.settings.llm``.
    """
    settings = Settings()
    names = {f.name for f in fields(Settings)} - {"llm"}
    llm_table: dict[str, Any] | None = None
    if settings.config_file.exists():
        try:
            with settings.config_file.open("rb") as handle:
                from_file = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise BadInput(f"{settings.config_file}: not valid TOML ({error})") from None
        llm_table = from_file.pop("llm", None)
        if llm_table is not None and not isinstance(llm_table, dict):
            raise BadInput(f"{settings.config_file}: [llm] must be a table")
        unknown = set(from_file) - names
        if unknown:
            raise BadInput(f"{settings.config_file}: unknown settings {sorted(unknown)}")
        settings = replace(settings, **_coerce(from_file))
    from_env = {name: os.environ[var] for name, var in _ENV.items() if os.environ.get(var)}
    settings = replace(settings, **_coerce(from_env))
    overrides = dict(overrides or {})
    llm_overrides = overrides.pop("llm", None)
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        settings = replace(settings, **_coerce(given))
    llm = load_llm_settings(llm_table, llm_overrides, file_label=f"{settings.config_file} [llm]")
    if settings.data_dir is None:
        settings = replace(settings, data_dir=recorded_data_dir(settings.home))
    return replace(settings, llm=llm)


# -- the data folder, remembered ------------------------------------------------------------

#: In the home: the data folder an ``index`` run read its dataset from.
DATA_DIR_RECORD = "data-dir.json"


def recorded_data_dir(home: Path) -> Path | None:
    """The data folder ``remember_data_dir`` recorded in ``home``; None if none (or unreadable:
    a damaged record only loses the fallback, and ``load_dataset`` then says how to get data).
    """
    try:
        recorded = json.loads((home / DATA_DIR_RECORD).read_text(encoding="utf-8"))["data_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(recorded) if isinstance(recorded, str) and recorded else None


def remember_data_dir(settings: Settings) -> bool:
    """Record ``settings.data_dir`` in the home as the data folder's default; True if written.

    ``make chat`` sets ``SHOPAGENT_DATA_DIR`` for the commands it runs; a shell opened later
    does not, and ``shopagent eval run --dataset chorus`` there found neither the catalog nor
    its judgments. ``shopagent index`` calls this when it reads a dataset from the data folder,
    so every later command with the same home finds the data it was indexed from (below the
    environment and the config file, which still win).
    """
    if settings.data_dir is None:
        return False
    folder = settings.data_dir.expanduser().resolve()
    if recorded_data_dir(settings.home) == folder:
        return False
    settings.home.mkdir(parents=True, exist_ok=True)
    write_text(settings.home / DATA_DIR_RECORD, json.dumps({"data_dir": str(folder)}) + "\n")
    return True


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key in ("home", "data_dir"):
        if out.get(key) is not None:
            if not isinstance(out[key], str | Path):
                raise BadInput(f"{key} must be a path, got {out[key]!r}")
            out[key] = Path(out[key]).expanduser()
    return out
