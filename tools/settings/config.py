"""All settings in one place.

Precedence, highest first: CLI flags (passed as ``overrides``), environment variables
(``SHOPAGENT_*``), the config file (``$SHOPAGENT_HOME/config.toml``), the data folder a
command recorded in the home (``remember_data_dir``), built-in defaults.
"""

from __future__ import annotations

import codecs
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from tools.atomic_write import write_text
from tools.errors import BadInput
from tools.names import check_name
from tools.settings.checks import checked, flag_value, path_text, seconds, shown, text, url
from tools.settings.llm import LLMSettings, load_llm_settings


def default_home() -> Path:
    """``SHOPAGENT_HOME``, else the platform's user data folder. Only the environment (or a
    caller's ``overrides``) sets it: ``config.toml`` lives in the home, so it cannot move it."""
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
        """Where the embedded indexes of one dataset live; the dataset's name is checked
        (``tools.names``) so that no name (``../../etc``) reaches outside ``indexes/``."""
        check_name("dataset", dataset)
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
#: ``SHOPAGENT_CHROMA_TIMEOUT``: seconds any one request to a Chroma server may take.
CHROMA_TIMEOUT_ENV = "SHOPAGENT_CHROMA_TIMEOUT"
CHROMA_TIMEOUT_S = 30.0
#: ``SHOPAGENT_EMBEDDING_BACKEND``: how MiniLM runs (``tools.search.embeddings``): ``onnx``, the
#: default, or ``torch`` to force sentence-transformers on PyTorch. Both give the same vectors.
EMBEDDING_BACKEND_ENV = "SHOPAGENT_EMBEDDING_BACKEND"
EMBEDDING_BACKENDS = ("onnx", "torch")
#: The settings ``config.toml`` may hold besides ``[llm]``: the home is not one of them (the
#: file lives in the home; ``SHOPAGENT_HOME`` moves it).
FILE_KEYS = ("data_dir", "es_url", "chroma_url", "lexical_backend")


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults, then the config file, then the environment, then ``overrides`` (CLI flags).

    The ``[llm]`` table and ``overrides["llm"]`` (a dict) feed ``tools.settings.llm``. Every
    value passes the checks of ``tools.settings.checks`` wherever it comes from, and one that
    fails is one ``BadInput`` line naming the file and key, the variable or the flag.
    """
    settings = Settings()
    llm_table: dict[str, Any] | None = None
    if settings.config_file.exists():
        from_file = read_config_file(settings.config_file)
        llm_table = from_file.pop("llm", None)
        if llm_table is not None and not isinstance(llm_table, dict):
            raise BadInput(f"{settings.config_file}: [llm] must be a table")
        if "home" in from_file:
            raise BadInput(
                f"{settings.config_file}: `home` cannot be set in the config file (the file "
                "lives in the home): set SHOPAGENT_HOME instead"
            )
        unknown = set(from_file) - set(FILE_KEYS)
        if unknown:
            raise BadInput(f"{settings.config_file}: unknown settings {sorted(unknown)}")
        settings = replace(settings, **_coerce(from_file, str(settings.config_file)))
    for name, var in _ENV.items():
        if os.environ.get(var):
            settings = replace(settings, **_coerce({name: os.environ[var]}, var))
    chroma_timeout()  # read where a Chroma server is used; checked here with the rest
    embedding_backend()  # read where the encoder is loaded (Chroma rebuilds it from a config)
    overrides = dict(overrides or {})
    llm_overrides = overrides.pop("llm", None)
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        settings = replace(settings, **_coerce(given, "command line"))
    llm = load_llm_settings(llm_table, llm_overrides, file_label=f"{settings.config_file} [llm]")
    if settings.data_dir is None:
        settings = replace(settings, data_dir=recorded_data_dir(settings.home))
    return replace(settings, llm=llm)


def read_config_file(path: Path) -> dict[str, Any]:
    """``config.toml`` as a table: UTF-8 (a BOM, as Windows editors write it, is accepted),
    valid TOML, not nested past what the parser can take; else one ``BadInput`` line."""
    raw = path.read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = raw[error.start : error.start + 1].hex()
        raise BadInput(
            f"{path}: not UTF-8 text (byte 0x{byte} at offset {error.start}); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{path}: not valid TOML ({error})") from None
    except RecursionError:
        raise BadInput(f"{path}: not valid TOML (arrays or tables nested too deeply)") from None


def chroma_timeout(environ: Mapping[str, str] | None = None) -> float:
    """``SHOPAGENT_CHROMA_TIMEOUT`` seconds if set (above 0, at most a day), else 30."""
    raw = (os.environ if environ is None else environ).get(CHROMA_TIMEOUT_ENV, "").strip()
    if not raw:
        return CHROMA_TIMEOUT_S
    return float(checked(CHROMA_TIMEOUT_ENV, "timeout", seconds, raw))


def embedding_backend(environ: Mapping[str, str] | None = None) -> str:
    """``SHOPAGENT_EMBEDDING_BACKEND`` if set (``onnx`` or ``torch``), else ``onnx``.

    An environment variable, not a ``Settings`` field: Chroma builds the embedding function
    from the collection's stored config, where no ``Settings`` reaches it.
    """
    raw = (os.environ if environ is None else environ).get(EMBEDDING_BACKEND_ENV, "").strip()
    if not raw:
        return EMBEDDING_BACKENDS[0]
    if raw.lower() not in EMBEDDING_BACKENDS:
        raise BadInput(
            f"{EMBEDDING_BACKEND_ENV}: must be one of {', '.join(EMBEDDING_BACKENDS)}, "
            f"got {shown(raw)}"
        )
    return raw.lower()


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


#: What each setting must be (``tools.settings.checks``).
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "es_url": url,
    "chroma_url": url,
    "lexical_backend": text,
}


def _coerce(values: dict[str, Any], source: str) -> dict[str, Any]:
    """``values`` checked and typed; ``source`` (the file, the variable, ``command line``)
    names where a bad one came from."""
    out = dict(values)
    for key, value in values.items():
        label = f"{source}: {key}"
        if key in ("home", "data_dir"):
            if value is not None:
                path = value if isinstance(value, Path) else flag_value(label, path_text, value)
                out[key] = Path(path).expanduser()
        elif key in _CONVERT and value is not None:
            out[key] = flag_value(label, _CONVERT[key], value)
    return out
