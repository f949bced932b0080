"""Hostile pass, item 9: settings a user can get wrong, through the real ``shopagent`` command.

Every value passes the checks of ``tools.settings.checks`` wherever it comes from: the config
file (``$SHOPAGENT_HOME/config.toml``), a ``SHOPAGENT_*`` variable or a flag. A bad one is
one ``error:`` line naming the file and key, the variable or the flag, and exit 1; before,
``nan`` and ``inf`` were accepted and failed every chat turn, a Latin-1 or deeply nested
``config.toml`` was a bug-path ``unexpected`` line, and a URL that does not parse reached the
HTTP clients. The home follows the documented precedence: ``SHOPAGENT_HOME``, never a key in
the file that lives in it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.hostile_helpers import FIXTURES, import_catalog, shopagent
from tools.settings.checks import number, seconds, temperature, url

#: A model server nobody listens on: settings are checked before any request is made.
DEAD_LLM = {"SHOPAGENT_LLM_BASE_URL": "http://127.0.0.1:9", "SHOPAGENT_LLM_MODEL": "fake"}


def one_error_line(result: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    """The single ``error:`` line of a failed command, holding every needle."""
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 1, (result.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "unexpected" not in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the ``mini`` catalog indexed, to copy config files into."""
    home = tmp_path_factory.mktemp("hostile-settings") / "home"
    catalog = FIXTURES / "generic" / "catalog.jsonl"
    assert import_catalog(home, catalog, "jsonl", "mini").returncode == 0
    built = shopagent(home, "index", "--dataset", "mini", "--no-concepts")
    assert built.returncode == 0, built.stderr
    return home


@pytest.fixture()
def home(indexed: Path) -> Path:
    """The indexed home, with no config file left by another test."""
    (indexed / "config.toml").unlink(missing_ok=True)
    return indexed


def write_config(home: Path, content: bytes) -> None:
    (home / "config.toml").write_bytes(content)


# -- config.toml -----------------------------------------------------------------------------

NESTED_ARRAYS = b"x = " + b"[" * 2000 + b"]" * 2000 + b"\n"
NESTED_TABLES = b"x = " + b"{a=" * 2000 + b"1" + b"}" * 2000 + b"\n"


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b'es_url = "caf\xe9"\n', ["config.toml: not UTF-8", "0xe9", "save it as UTF-8"]),
        (NESTED_ARRAYS, ["config.toml: not valid TOML", "nested too deeply"]),
        (NESTED_TABLES, ["config.toml: not valid TOML", "nested too deeply"]),
        (b"es_url = [1, 2]\n", ["config.toml: es_url must be an http:// or https:// URL", "[1,"]),
        (b"chroma_url = 5\n", ["config.toml: chroma_url must be an http:// or https:// URL"]),
        (b"lexical_backend = 5\n", ["config.toml: lexical_backend must be a non-empty string"]),
        (b'es_url = "http://[::1"\n', ["config.toml: es_url is not a valid URL", "http://[::1"]),
        (b'chroma_url = "http://[::1"\n', ["config.toml: chroma_url is not a valid URL"]),
        (b'chroma_url = "http://h:99999"\n', ["chroma_url is not a valid URL", "99999"]),
        (b'[llm]\nbase_url = "http://[::1"\n', ["config.toml [llm]: base_url is not a valid URL"]),
        (b"[llm]\ntemperature = nan\n", ["[llm]: temperature must be a finite number", "nan"]),
        (b"[llm]\ntimeout = inf\n", ["[llm]: timeout_s must be a finite number", "inf"]),
        (b"[llm]\nmax_tokens = 1e400\n", ["[llm]: max_tokens must be a finite number"]),
    ],
    ids=[
        "latin-1",
        "nested-arrays",
        "nested-tables",
        "es-url-list",
        "chroma-url-int",
        "backend-int",
        "es-url-bad",
        "chroma-url-bad",
        "chroma-port-bad",
        "llm-url-bad",
        "temperature-nan",
        "timeout-inf",
        "max-tokens-inf",
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_key(
    home: Path, content: bytes, needles: list[str]
) -> None:
    write_config(home, content)
    one_error_line(shopagent(home, "search", "mouse", "--dataset", "mini"), *needles)


def test_a_config_file_with_a_utf8_bom_is_read(home: Path) -> None:
    # What Notepad writes: the BOM is not part of the TOML.
    write_config(home, b'\xef\xbb\xbflexical_backend = "tantivy"\n')
    found = shopagent(home, "search", "wireless mouse", "--dataset", "mini")
    assert found.returncode == 0, found.stderr
    assert b"Wireless Mouse M185" in found.stdout


def test_the_environment_names_the_home_and_the_config_file_cannot_move_it(
    home: Path, tmp_path: Path
) -> None:
    # README: flags > environment > config file > defaults, and the home is set by
    # SHOPAGENT_HOME only. A `home` key in the file that lives in that home used to win over
    # the environment: every command silently used another folder.
    elsewhere = tmp_path / "elsewhere"
    write_config(home, f'home = "{elsewhere}"\n'.encode())
    refused = shopagent(home, "search", "wireless mouse", "--dataset", "mini")
    one_error_line(refused, "config.toml: `home` cannot be set", "SHOPAGENT_HOME")
    assert not elsewhere.exists()
    (home / "config.toml").unlink()
    found = shopagent(home, "search", "wireless mouse", "--dataset", "mini")
    assert found.returncode == 0 and b"Wireless Mouse M185" in found.stdout, found.stderr


# -- the environment -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "needles"),
    [
        ("SHOPAGENT_LLM_TIMEOUT", "nan", ["SHOPAGENT_LLM_TIMEOUT: timeout_s must be a finite"]),
        ("SHOPAGENT_LLM_TIMEOUT", "inf", ["SHOPAGENT_LLM_TIMEOUT", "finite"]),
        ("SHOPAGENT_LLM_TIMEOUT", "1e308", ["SHOPAGENT_LLM_TIMEOUT", "at most 86400 seconds"]),
        ("SHOPAGENT_LLM_TEMPERATURE", "nan", ["SHOPAGENT_LLM_TEMPERATURE: temperature", "nan"]),
        ("SHOPAGENT_LLM_TEMPERATURE", "inf", ["SHOPAGENT_LLM_TEMPERATURE", "at most 2"]),
        ("SHOPAGENT_LLM_TEMPERATURE", "-1", ["SHOPAGENT_LLM_TEMPERATURE", ">= 0"]),
        ("SHOPAGENT_LLM_MAX_TOKENS", "1e3", ["SHOPAGENT_LLM_MAX_TOKENS", "an integer"]),
        ("SHOPAGENT_LLM_BASE_URL", "http://[::1", ["SHOPAGENT_LLM_BASE_URL: base_url is not a"]),
    ],
)
def test_bad_llm_variables_stop_the_chat_in_one_line(
    home: Path, variable: str, value: str, needles: list[str]
) -> None:
    # Before: `nan` was accepted and the first turn raised `cannot convert float NaN to
    # integer`; a temperature of `nan` or `inf` went to the model server with every request.
    chatted = shopagent(
        home, "chat", "--dataset", "mini", stdin=b"/quit\n", env={**DEAD_LLM, variable: value}
    )
    one_error_line(chatted, *needles)


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        (
            {"SHOPAGENT_CHROMA_TIMEOUT": "1e308", "SHOPAGENT_CHROMA_URL": "http://127.0.0.1:9"},
            ["SHOPAGENT_CHROMA_TIMEOUT", "at most 86400 seconds", "1e308"],
        ),
        (
            {"SHOPAGENT_CHROMA_TIMEOUT": "nan", "SHOPAGENT_CHROMA_URL": "http://127.0.0.1:9"},
            ["SHOPAGENT_CHROMA_TIMEOUT", "finite"],
        ),
        ({"SHOPAGENT_CHROMA_URL": "http://[::1"}, ["SHOPAGENT_CHROMA_URL: chroma_url is not"]),
        ({"SHOPAGENT_ES_URL": "http://[::1"}, ["SHOPAGENT_ES_URL: es_url is not a valid URL"]),
        (
            {"SHOPAGENT_EMBEDDING_BACKEND": "tensorflow"},
            ["SHOPAGENT_EMBEDDING_BACKEND: must be one of onnx, torch", "tensorflow"],
        ),
    ],
    ids=["chroma-timeout-huge", "chroma-timeout-nan", "chroma-url-bad", "es-url-bad", "embedder"],
)
def test_bad_backend_variables_are_one_line(
    home: Path, env: dict[str, str], needles: list[str]
) -> None:
    # Before: 1e308 s reached the socket layer (`OverflowError: timestamp out of range`), and
    # `http://[::1` the HTTP clients (`ValueError: Invalid IPv6 URL`), as bugs.
    found = shopagent(home, "search", "mouse", "--dataset", "mini", "--tool", "concepts", env=env)
    one_error_line(found, *needles)


# -- flags -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1e308"])
def test_a_turn_timeout_that_is_not_a_time_is_refused(home: Path, value: str) -> None:
    # Before: nan and inf started the chat and its first turn failed as a bug; -1 and 0 said
    # "timeouts must be positive" without naming the flag.
    chatted = shopagent(
        home, "chat", "--dataset", "mini", "--turn-timeout", value, stdin=b"/quit\n", env=DEAD_LLM
    )
    one_error_line(chatted, "--turn-timeout must be", "at most 86400 seconds")


# -- the checks themselves -------------------------------------------------------------------


def test_every_number_check_refuses_non_finite_values() -> None:
    for check in (seconds, temperature, number(0, 10, integer=True)):
        for bad in ("nan", "inf", "-inf", float("nan"), float("inf"), True, [1], 10**400):
            with pytest.raises(ValueError, match="must be"):
                check(bad)
    assert seconds("2.5") == 2.5
    assert temperature(0) == 0.0
    assert number(0, 10, integer=True)("3") == 3


@pytest.mark.parametrize(
    "bad", ["http://[::1", "http://host:99999", "http://host:port", "http://", "ftp://h", 5, [1]]
)
def test_the_url_check_refuses_what_would_not_parse(bad: object) -> None:
    with pytest.raises(ValueError):
        url(bad)
    assert url(" https://example.com:8443/v1 ") == "https://example.com:8443/v1"
