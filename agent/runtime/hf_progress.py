"""transformers' progress bars, routed or silenced while a model is converted or merged.

Why: under the CLI's status line each redraw of a transformers bar printed as a line of its
own; the store (``agent.runtime.model_store``) converts and merges models inside these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import Any, TypeVar

#: Called with (tensors converted, tensors in the file) while the bundled GGUF is dequantized.
ConversionProgress = Callable[[int, int], None]
T = TypeVar("T")


@contextmanager
def gguf_progress(progress: ConversionProgress | None) -> Iterator[None]:
    """Route transformers' GGUF tensor loop to ``progress`` while the default model is made.

    transformers wraps that loop in a bare ``tqdm.auto.tqdm`` (no switch turns it off); under
    the CLI's status line every redraw of it was printed as a line of its own, ten or more
    per conversion. The loop is the module's only use of ``tqdm``. Its other bars ("Loading
    weights", "Writing model shards") obey its own switch, which is off for the block.
    """
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    def reporting(items: Iterable[T], *_: Any, **__: Any) -> Iterator[T]:
        total = len(items) if isinstance(items, Sized) else 0
        for done, item in enumerate(items, start=1):
            yield item
            if progress is not None:
                progress(done, total)

    original = gguf_utils.tqdm
    gguf_utils.tqdm = reporting
    try:
        with progress_bars_off():
            yield
    finally:
        gguf_utils.tqdm = original


@contextmanager
def progress_bars_off() -> Iterator[None]:
    """transformers' own bars ("Loading weights", "Writing model shards") off for the block:
    under the CLI's status line each redraw would print as a line of its own."""
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
