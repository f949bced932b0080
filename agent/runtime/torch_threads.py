"""How many CPU threads torch may use while the local model works in this process.

On a shared machine torch's default (every core) makes a generating or training process fight
its neighbours, and one thread can beat two several times over; ``collect`` and ``train`` both
take ``--threads``. It lives with the runtime, below both, so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch CPU threads (None: leave the setting alone), then restore."""
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
