"""``shopagent model init`` as a library: store a bundled base, and the default model on it.

Without a base named, SmolLM2-135M-Instruct is stored untrained as ``smollm2-135m-base`` and
the shipped policy merged into it as the default model (``model_store.init_default_model``);
with one (``smollm2-135m-base``, ``gemma3-270m-base``), only that base, untrained. The model a
chat would serve is also converted for the configured runtime (CTranslate2: ~15 s), so the
first chat does not wait for it.
"""

from __future__ import annotations

from agent.runtime.bundled_bases import SMOLLM2_135M, BundledBase, bundled_base
from agent.runtime.model_server import choose_runtime
from agent.runtime.model_store import (
    BASE_LOCAL_MODEL,
    ConversionProgress,
    StoredModel,
    init_base_model,
    init_default_model,
    resolve_model,
)
from tools.settings.config import Settings


def chosen_base(base: str | None) -> BundledBase:
    """The bundled base ``base`` names (SmolLM2-135M when None); unknown names are refused."""
    return SMOLLM2_135M if base is None else bundled_base(base)


def init_models(
    settings: Settings,
    base: str | None = None,
    *,
    overwrite: bool = True,
    progress: ConversionProgress | None = None,
) -> list[tuple[StoredModel, str]]:
    """Store the models; each stored model with what it is: ``untrained`` or its source."""
    if base is not None:
        chosen = chosen_base(base)
        stored = init_base_model(settings, chosen, overwrite=overwrite, progress=progress)
        return [(stored, "untrained")]
    stored = init_default_model(settings, overwrite=overwrite, progress=progress)
    choose_runtime(stored.path, settings.llm.runtime, "cpu")  # converts once, or falls back
    return [(resolve_model(settings, BASE_LOCAL_MODEL), "untrained"), (stored, stored.source)]
