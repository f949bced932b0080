"""The CTranslate2 server's request reading and reply cutting, without a model.

Its end-to-end behaviour (real model, real HTTP, both runtimes side by side) is in
``tests/test_model_server_e2e.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.runtime.ct2_model import CONVERTED_DIR, STAMP_NAME, converted_dir, stamp_for
from agent.runtime.ct2_server import DEFAULT_MAX_TOKENS, ChatRequest, Reply, RequestError


def feed(reply: Reply, pieces: list[str]) -> str:
    """What a client receives when the decoded reply grows by ``pieces``."""
    text, sent = "", ""
    for piece in pieces:
        text += piece
        sent += reply.add(text)
    return sent + reply.finish()


def test_a_stop_string_split_across_tokens_is_never_sent() -> None:
    reply = Reply(stops=("<tool_response>",))
    sent = feed(reply, ["Here ", "you are <tool", "_resp", "onse>{'id': 1}"])
    assert sent == "Here you are "
    assert reply.stopped


def test_text_that_only_looked_like_a_stop_is_released() -> None:
    reply = Reply(stops=("<tool_response>",))
    assert reply.add("a <tool") == "a "
    assert reply.add("a <tool kit>") == "<tool kit>"
    assert not reply.stopped


def test_the_earliest_of_several_stops_wins() -> None:
    reply = Reply(stops=("END", "<|im_end|>"))
    assert feed(reply, ["one <|im_end|> two END"]) == "one "


def test_half_a_character_waits_for_its_other_bytes() -> None:
    reply = Reply(stops=())
    assert reply.add("caf\ufffd") == ""
    assert reply.add("café") == "café"


def test_a_request_takes_the_openai_fields_it_honours() -> None:
    request = ChatRequest.parse(
        {
            "model": "smollm2-135m",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "max_completion_tokens": 12,
            "temperature": 0.7,
            "top_p": 0.9,
            "seed": 3,
            "stop": "<tool_response>",
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert request.messages == [{"role": "user", "content": "hi"}]
    assert (request.sampling.max_new_tokens, request.sampling.seed) == (12, 3)
    assert request.sampling.options()["sampling_temperature"] == 0.7
    assert request.stop == ("<tool_response>",)
    assert request.stream and request.include_usage


def test_greedy_is_the_default_and_an_assistant_call_without_content_reads_as_empty() -> None:
    request = ChatRequest.parse(
        {"messages": [{"role": "assistant", "content": None, "tool_calls": []}]}
    )
    assert request.sampling.options() == {"max_length": DEFAULT_MAX_TOKENS, "sampling_topk": 1}
    assert request.messages[0]["content"] == ""


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "JSON object"),
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"content": "hi"}]}, "'role'"),
        ({"messages": [{"role": "user", "content": 3}]}, "string or a list"),
        ({"messages": [{"role": "user"}], "max_tokens": 0}, "from 1 to"),
        ({"messages": [{"role": "user"}], "max_tokens": 10**9}, "from 1 to"),
        ({"messages": [{"role": "user"}], "temperature": "hot"}, "number"),
        ({"messages": [{"role": "user"}], "tools": "search"}, "'tools'"),
    ],
)
def test_a_request_it_cannot_answer_is_one_clear_problem(body: object, problem: str) -> None:
    with pytest.raises(RequestError, match=problem):
        ChatRequest.parse(body)


def test_the_converted_copy_is_used_only_while_it_matches_its_model(tmp_path: Path) -> None:
    """A rebuilt model (a new manifest: another policy, another build) is converted again; the
    copy of the old weights is never served for it."""
    model = tmp_path / "smollm2-135m"
    (model / CONVERTED_DIR).mkdir(parents=True)
    manifest = model / "shopagent-model.json"
    manifest.write_text(json.dumps({"name": "smollm2-135m", "created": "2026-12-07T11:00"}))
    assert converted_dir(model) is None, "no stamp: not converted"
    (model / CONVERTED_DIR / STAMP_NAME).write_text(json.dumps(stamp_for(model)))
    assert converted_dir(model) == model / CONVERTED_DIR
    manifest.write_text(json.dumps({"name": "smollm2-135m", "created": "2026-12-08T09:00"}))
    assert converted_dir(model) is None
