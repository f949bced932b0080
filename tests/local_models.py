"""What the tests make once per session (``tests/conftest.py``) and copy into homes of their own:
the local models as ``shopagent model init`` stores them (``local_models``) and the MiniLM
encoder's ONNX export (``embedding_exports``); and ``printed_meanwhile``, the file-descriptor
capture that watches the models' conversion."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.settings.config import Settings


@contextmanager
def printed_meanwhile() -> Iterator[list[str]]:
    """Everything written meanwhile to file descriptors 1 and 2 and to ``sys.stdout`` and
    ``sys.stderr`` (what ``capfd`` sees, out and err together), appended to the yielded list
    when the block ends. For a session fixture, where ``capfd`` cannot be used."""
    printed: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    with tempfile.TemporaryFile() as sink:
        # one open file behind fds 1 and 2 and the stream: one offset, nothing overwritten
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        stream = io.TextIOWrapper(
            open(sink.fileno(), "wb", buffering=0, closefd=False),  # noqa: SIM115
            encoding="utf-8",
            errors="replace",
            write_through=True,
        )
        sys.stdout = sys.stderr = stream
        try:
            yield printed
        finally:
            stream.close()  # flushed; the sink's descriptor stays open (closefd=False)
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            sink.seek(0)
            printed.append(sink.read().decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class LocalModels:
    """The local models as ``shopagent model init`` stores them, made once per session.

    Dequantizing the GGUF and converting for CTranslate2 take about a minute; every test
    module that needs the real local model copies this store into a home of its own
    (``install``, about a second), so none can change what another one reads.
    """

    models_dir: Path
    #: What ``init_default_model`` reported to its ``progress`` callback while converting.
    progress_calls: tuple[tuple[int, int], ...]
    #: What reached stdout and stderr (fds and streams) during ``init_default_model``.
    printed: str
    #: Whether transformers' progress bars were on again right after it.
    bars_on_after: bool

    def install(self, home: Path) -> Settings:
        """``home`` with a copy of the stored models; its settings."""
        settings = Settings(home=home)
        shutil.copytree(self.models_dir, settings.models_dir, symlinks=True, dirs_exist_ok=True)
        return settings


def store_local_models(home: Path) -> LocalModels:
    """What ``shopagent model init`` stores in ``home``: the default model, made by
    ``init_default_model`` while watched (what ``tests/test_model_conversion_progress.py``
    checks), then its CTranslate2 copy (``init_models``, as the command goes on)."""
    from transformers.utils import logging as hf_logging

    from agent.runtime.model_init import init_models
    from agent.runtime.model_store import init_default_model

    settings = Settings(home=home)
    calls: list[tuple[int, int]] = []
    with printed_meanwhile() as printed:
        init_default_model(settings, progress=lambda done, total: calls.append((done, total)))
    bars_on_after = hf_logging.is_progress_bar_enabled()
    init_models(settings, overwrite=False)  # keeps the stored models, converts the default one
    return LocalModels(settings.models_dir, tuple(calls), "".join(printed), bars_on_after)


def export_embeddings(cache_root: Path) -> Path:
    """``cache_root`` holding a real ONNX export of the bundled encoder, as a first embedding
    in a home writes it (same label, so a home seeded with it finds it)."""
    from tools.search.embeddings import BUNDLED_MODEL, model_path, open_onnx_encoder

    assert open_onnx_encoder(model_path(), cache_root, label=BUNDLED_MODEL).backend == "onnx"
    return cache_root


def seed_embedding_exports(exports: Path, home: Path) -> None:
    """``home``'s export cache seeded with ``exports`` (a copy): the product's processes in
    that home load the encoder without exporting it again."""
    from tools.search.embeddings import EXPORT_CACHE

    shutil.copytree(exports, Settings(home=home).models_dir / EXPORT_CACHE, dirs_exist_ok=True)
