"""The model store: registering, listing and resolving HF directories (a tiny random model here;
the real SmolLM2 init is exercised once, in test_model_server_e2e.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.protocol.chat_template import RESPONSE_TEMPLATE, TEMPLATE_VERSION, tools_chat_template
from agent.runtime.model_store import (
    MANIFEST_NAME,
    ModelNotFound,
    bundled_gguf,
    list_models,
    read_model,
    register_model,
    resolve_model,
)
from tools.settings.config import Settings


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-token, one-layer Llama with a word-level tokenizer: a real HF directory in KBs."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<|im_start|>", "<|im_end|>", *(f"w{i}" for i in range(29))]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", unk_token="<unk>", pad_token="<|im_end|>"
    )
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        eos_token_id=2,
        pad_token_id=2,
    )
    directory = tmp_path_factory.mktemp("tiny-model")
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "optimizer.pt").write_bytes(b"trainer state the store must not copy")
    return directory


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_register_copies_the_model_and_installs_the_tools_template(
    settings: Settings, tiny_model_dir: Path
) -> None:
    stored = register_model(settings, tiny_model_dir, "tiny", base="my-base")
    assert stored.path == settings.models_dir / "tiny"
    assert (stored.path / "model.safetensors").is_file()
    assert not (stored.path / "optimizer.pt").exists()
    assert (stored.path / "chat_template.jinja").read_text() == tools_chat_template()
    tokenizer_config = json.loads((stored.path / "tokenizer_config.json").read_text())
    assert tokenizer_config["response_template"] == RESPONSE_TEMPLATE
    manifest = json.loads((stored.path / MANIFEST_NAME).read_text())
    assert manifest["name"] == "tiny"
    assert manifest["source"] == str(tiny_model_dir.resolve())
    assert manifest["base"] == "my-base"
    assert manifest["template_version"] == TEMPLATE_VERSION
    assert read_model(stored.path) == stored
    assert not (tiny_model_dir / "chat_template.jinja").exists(), "the source must stay untouched"


def test_a_registered_model_renders_tool_prompts(settings: Settings, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    stored = register_model(settings, tiny_model_dir, "tiny")
    tokenizer = AutoTokenizer.from_pretrained(stored.path)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "usb charger"}],
        tools=[{"type": "function", "function": {"name": "search_products", "parameters": {}}}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert '<tool_call>{"name": "search_products"' in prompt
    assert prompt.endswith("<|im_start|>user\nusb charger<|im_end|>\n<|im_start|>assistant\n")


def test_a_model_registered_from_the_store_records_its_base(
    settings: Settings, tiny_model_dir: Path
) -> None:
    first = register_model(settings, tiny_model_dir, "first")
    second = register_model(settings, first.path, "second")
    assert second.base == "first"


def test_keep_template_leaves_the_tokenizer_alone(settings: Settings, tiny_model_dir: Path) -> None:
    stored = register_model(settings, tiny_model_dir, "kept", keep_template=True)
    assert stored.template_version is None
    assert not (stored.path / "chat_template.jinja").exists()


def test_a_taken_name_is_refused_unless_overwriting(
    settings: Settings, tiny_model_dir: Path
) -> None:
    original = register_model(settings, tiny_model_dir, "tiny", base="one")
    with pytest.raises(ValueError, match="already stored"):
        register_model(settings, tiny_model_dir, "tiny", base="two")
    assert read_model(original.path).base == "one"
    replaced = register_model(settings, tiny_model_dir, "tiny", base="two", overwrite=True)
    assert read_model(replaced.path).base == "two"
    assert [p.name for p in settings.models_dir.iterdir()] == ["tiny"]


def test_list_and_resolve(settings: Settings, tiny_model_dir: Path) -> None:
    assert list_models(settings) == []
    register_model(settings, tiny_model_dir, "b-model")
    register_model(settings, tiny_model_dir, "a-model")
    (settings.models_dir / "not-a-model").mkdir()
    assert [m.name for m in list_models(settings)] == ["a-model", "b-model"]
    assert resolve_model(settings, "b-model").path == settings.models_dir / "b-model"


def test_resolving_a_missing_model_says_what_to_run(settings: Settings) -> None:
    with pytest.raises(ModelNotFound, match="shopagent model init"):
        resolve_model(settings)
    with pytest.raises(ModelNotFound, match="shopagent model list"):
        resolve_model(settings, "nope")
    with pytest.raises(ValueError, match="bad model name"):
        resolve_model(settings, "../escape")


def test_a_corrupt_manifest_is_a_clear_error(settings: Settings, tiny_model_dir: Path) -> None:
    stored = register_model(settings, tiny_model_dir, "tiny")
    (stored.path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="unreadable model manifest"):
        resolve_model(settings, "tiny")


@pytest.mark.parametrize(
    ("remove", "add", "message"),
    [
        (["config.json"], [], "no config.json"),
        (["config.json"], ["adapter_config.json"], "PEFT adapter"),
        (["tokenizer.json", "tokenizer_config.json"], [], "no tokenizer files"),
        (["model.safetensors"], [], "no model weights"),
    ],
)
def test_bad_sources_are_refused_and_nothing_is_stored(
    settings: Settings,
    tiny_model_dir: Path,
    tmp_path: Path,
    remove: list[str],
    add: list[str],
    message: str,
) -> None:
    source = tmp_path / "source"
    shutil.copytree(tiny_model_dir, source)
    for name in remove:
        (source / name).unlink()
    for name in add:
        (source / name).write_text("{}")
    with pytest.raises(ValueError, match=message):
        register_model(settings, source, "broken")
    assert not (settings.models_dir / "broken").exists()


def test_a_failure_while_writing_leaves_no_half_model(
    settings: Settings, tiny_model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(tiny_model_dir, source)
    (source / "tokenizer.json").write_text("not a tokenizer")
    with pytest.raises(Exception):  # noqa: B017 - whatever the tokenizer loader raises
        register_model(settings, source, "half")
    assert list(settings.models_dir.iterdir()) == []


def test_the_bundled_gguf_is_found_without_importing_its_package() -> None:
    path = bundled_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_the_template_renders_tool_history_as_taught(
    settings: Settings, tiny_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(register_model(settings, tiny_model_dir, "t").path)
    calls = [
        {
            "id": "a",
            "type": "function",
            "function": {"name": "get_product", "arguments": '{"product_id": "1"}'},
        },
        {
            "id": "b",
            "type": "function",
            "function": {"name": "get_product", "arguments": {"product_id": "2"}},
        },
    ]
    prompt = tokenizer.apply_chat_template(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "compare 1 and 2"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "a", "content": "Product 1"},
            {"role": "assistant", "content": "Both are fine."},
        ],
        tools=[{"type": "function", "function": {"name": "get_product", "parameters": {}}}],
        tokenize=False,
    )
    assert prompt.startswith("<|im_start|>system\nBe brief.\nTools:\n- get_product(): \n")
    assert (
        "<|im_start|>assistant\n"
        '<tool_call>{"name": "get_product", "arguments": {"product_id": "1"}}</tool_call>\n'
        '<tool_call>{"name": "get_product", "arguments": {"product_id": "2"}}</tool_call>'
        "<|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nProduct 1\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\nBoth are fine.<|im_end|>\n"
    ) in prompt
    assert "wireless headphones" not in prompt, "no example when search_products is not offered"


def test_a_model_stored_with_an_older_template_is_brought_up_to_date(
    settings: Settings, tiny_model_dir: Path
) -> None:
    stored = register_model(settings, tiny_model_dir, "old")
    (stored.path / "chat_template.jinja").write_text("{{ messages[0].content }}")
    manifest_path = stored.path / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["template_version"] = TEMPLATE_VERSION - 1
    manifest_path.write_text(json.dumps(manifest))

    refreshed = resolve_model(settings, "old")

    assert refreshed.template_version == TEMPLATE_VERSION
    assert (stored.path / "chat_template.jinja").read_text() == tools_chat_template()
    assert json.loads(manifest_path.read_text())["template_version"] == TEMPLATE_VERSION
    assert not [p for p in stored.path.iterdir() if p.name.startswith(".template-")]


def test_a_model_keeping_its_own_template_is_never_refreshed(
    settings: Settings, tiny_model_dir: Path
) -> None:
    register_model(settings, tiny_model_dir, "own", keep_template=True)
    assert resolve_model(settings, "own").template_version is None
    assert not (settings.models_dir / "own" / "chat_template.jinja").exists()


@pytest.mark.parametrize(
    ("tool", "argument"),
    [("search_concepts", '"concepts": ["'), ("search_titles", '"titles": ["')],
)
def test_each_search_tool_gets_a_worked_example_of_its_own(
    settings: Settings, tiny_model_dir: Path, tool: str, argument: str
) -> None:
    """Without an example of its own tool the 135M model never calls it (0% valid, measured)."""
    from transformers import AutoTokenizer

    stored = register_model(settings, tiny_model_dir, "tiny")
    tokenizer = AutoTokenizer.from_pretrained(stored.path)
    schema = {"type": "function", "function": {"name": tool, "parameters": {}}}
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "usb charger"}],
        tools=[schema],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert f'<tool_call>{{"name": "{tool}", "arguments": {{{argument}' in prompt
    assert "search_products" not in prompt


def test_the_chat_reads_the_writer_prompt_its_model_was_trained_on(tmp_path: Path) -> None:
    """A model records the writer prompt it learned (``writer_style``); the chat shows the
    served model that prompt, and the earlier policies' ``expand`` when none is recorded."""
    from dataclasses import replace

    from agent.runtime.model_dirs import StoredModel, read_model, write_manifest
    from agent.runtime.model_store import served_writer_style
    from tools.settings.llm import LLMSettings

    settings = Settings(home=tmp_path)
    for name, style in (("conv", "conversation"), ("old", None)):
        folder = settings.models_dir / name
        folder.mkdir(parents=True)
        stored = StoredModel(name, folder, "test", "2026-12-07", None, None, style)
        write_manifest(folder, stored)
        assert read_model(folder) == stored
    assert served_writer_style(replace(settings, llm=LLMSettings(model="conv"))) == "conversation"
    assert served_writer_style(replace(settings, llm=LLMSettings(model="old"))) == "expand"
    assert served_writer_style(replace(settings, llm=LLMSettings(model="gone"))) == "expand"
    remote = LLMSettings(model="conv", base_url="http://127.0.0.1:9/v1")
    assert served_writer_style(replace(settings, llm=remote)) == "expand"
