"""LLM settings: defaults < config file [llm] < SHOPAGENT_LLM_* < CLI, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings
from agent.llm_client import chat_model, openai_client
from agent.llm_settings import LLM_ENV, LLMSettings, load_llm_settings
from agent.model_server import llm_endpoint


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
