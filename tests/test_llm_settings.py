"""LLM settings: defaults < config file [llm] < SHOPAGENT_LLM_* < CLI, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agent.runtime.llm_client import chat_model, complete_with_tools, openai_client
from agent.runtime.model_server import llm_endpoint
from tools.settings.config import load_settings
from tools.settings.llm import LLM_ENV, LLMSettings, load_llm_settings


@pytest.fixture(autouse=True)
def _clean_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in LLM_ENV.values():
        monkeypatch.delenv(var, raising=False)


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_defaults_mean_the_local_model(shopagent_home: Path) -> None:
    llm = load_settings().llm
    assert llm == LLMSettings()
    assert llm.is_local
    assert llm.model == "smollm2-135m"


def test_precedence_is_cli_then_env_then_file(
    shopagent_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        shopagent_home,
        'lexical_backend = "tantivy"\n[llm]\nmodel = "from-file"\ntemperature = 0.5\n'
        'max_tokens = 64\ntimeout = 9\nretries = 4\nbase_url = "http://file:1/v1/"\n',
    )
    monkeypatch.setenv("SHOPAGENT_LLM_MODEL", "from-env")
    monkeypatch.setenv("SHOPAGENT_LLM_MAX_TOKENS", "32")
    monkeypatch.setenv("SHOPAGENT_LLM_API_KEY", "sk-env")
    settings = load_settings({"llm": {"model": "from-cli", "temperature": None}})
    assert settings.lexical_backend == "tantivy"
    assert settings.llm == LLMSettings(
        base_url="http://file:1/v1",
        model="from-cli",
        api_key="sk-env",
        temperature=0.5,
        max_tokens=32,
        timeout_s=9.0,
        max_retries=4,
    )
    assert "sk-env" not in repr(settings.llm)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("SHOPAGENT_LLM_TEMPERATURE", "hot", "SHOPAGENT_LLM_TEMPERATURE: temperature must be a"),
        ("SHOPAGENT_LLM_MAX_TOKENS", "0", "max_tokens must be > 0"),
        ("SHOPAGENT_LLM_RETRIES", "1.5", "max_retries must be an integer"),
        ("SHOPAGENT_LLM_BASE_URL", "localhost:8000", "must start with http://"),
    ],
)
def test_bad_environment_values_fail_in_one_line(
    shopagent_home: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_unknown_keys_in_the_llm_table_are_refused(shopagent_home: Path) -> None:
    write_config(shopagent_home, '[llm]\nmodle = "typo"\n')
    with pytest.raises(ValueError, match=r"config.toml \[llm\]: unknown LLM settings \['modle'\]"):
        load_settings()


def test_the_llm_key_must_be_a_table(shopagent_home: Path) -> None:
    write_config(shopagent_home, 'llm = "gpt"\n')
    with pytest.raises(ValueError, match=r"\[llm\] must be a table"):
        load_settings()


def test_environment_is_read_from_the_given_mapping() -> None:
    llm = load_llm_settings(environ={"SHOPAGENT_LLM_TIMEOUT": "2.5", "SHOPAGENT_LLM_RETRIES": "0"})
    assert (llm.timeout_s, llm.max_retries) == (2.5, 0)


def test_clients_carry_endpoint_timeout_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = LLMSettings(
        base_url="http://127.0.0.1:9/v1", model="m", timeout_s=3.0, max_retries=5, max_tokens=77
    )
    client = openai_client(llm)
    assert str(client.base_url) == "http://127.0.0.1:9/v1/"
    assert (client.timeout, client.max_retries) == (3.0, 5)
    langchain = chat_model(llm)
    assert (langchain.model_name, langchain.max_tokens, langchain.max_retries) == ("m", 77, 5)
    assert langchain.openai_api_base == "http://127.0.0.1:9/v1"


def test_clients_need_an_endpoint() -> None:
    with pytest.raises(ValueError, match="no LLM endpoint"):
        openai_client(LLMSettings())


def test_a_configured_endpoint_is_used_as_is_without_starting_a_server(
    shopagent_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPAGENT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    settings = load_settings()
    with llm_endpoint(settings) as llm:
        assert llm is settings.llm
    assert not settings.models_dir.exists(), "no model may be created for a remote endpoint"


def test_stop_strings_come_from_the_file_and_the_environment(
    shopagent_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(shopagent_home, '[llm]\nstop = ["<tool_response>", "###"]\n')
    assert load_settings().llm.stop == ("<tool_response>", "###")
    monkeypatch.setenv("SHOPAGENT_LLM_STOP", "END")
    assert load_settings().llm.stop == ("END",)
    monkeypatch.delenv("SHOPAGENT_LLM_STOP")
    write_config(shopagent_home, "[llm]\nstop = []\n")
    assert load_settings().llm.stop == (), "an empty list turns the local model's stops off"
    assert LLMSettings().stop is None


@pytest.mark.parametrize("value", ['[""]', "3", '["ok", 4]'])
def test_bad_stop_strings_fail_in_one_line(shopagent_home: Path, value: str) -> None:
    write_config(shopagent_home, f"[llm]\nstop = {value}\n")
    with pytest.raises(ValueError, match="stop must be a string or a list") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def _capturing_http_client(bodies: list[dict[str, Any]]) -> httpx.Client:
    """An httpx client that records each request body and answers a one-line completion."""

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Here you go."},
                    }
                ],
            },
        )

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_stop_strings_reach_the_request_body_of_both_clients() -> None:
    llm = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", stop=("<tool_response>",))
    bodies: list[dict[str, Any]] = []
    http = _capturing_http_client(bodies)
    client = openai.OpenAI(base_url=llm.base_url, api_key="k", http_client=http)
    complete_with_tools(llm, [{"role": "user", "content": "drill"}], client=client)
    chat_model(llm, http_client=http).invoke([("user", "drill")])
    assert [body["stop"] for body in bodies] == [["<tool_response>"], ["<tool_response>"]]


def test_no_stop_strings_means_no_stop_parameter() -> None:
    """Some hosted reasoning models refuse ``stop``: it is sent only when configured."""
    llm = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m")
    bodies: list[dict[str, Any]] = []
    http = _capturing_http_client(bodies)
    client = openai.OpenAI(base_url=llm.base_url, api_key="k", http_client=http)
    complete_with_tools(llm, [{"role": "user", "content": "drill"}], client=client)
    chat_model(llm, http_client=http).invoke([("user", "drill")])
    assert len(bodies) == 2
    assert not any("stop" in body for body in bodies)
