"""``tools.names``: the one rule for names that become folder names."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.runtime.model_store import resolve_model
from agent.runtime.policies import check_policy_name
from rl.checkpoints import check_run_name
from tools.errors import BadInput
from tools.names import check_name
from tools.settings.config import Settings


@pytest.mark.parametrize("name", ["smollm2-135m", "a", "run_1.v2", "A" * 64])
def test_safe_names_pass(name: str) -> None:
    check_name("model", name)


@pytest.mark.parametrize(
    "name", ["", ".hidden", "-x", "a/b", "../up", "a b", "a\n", "é", "A" * 65, "_x"]
)
def test_unsafe_names_are_refused_in_one_line(name: str) -> None:
    with pytest.raises(BadInput, match=r"^bad model name .*64 at most") as caught:
        check_name("model", name)
    assert "\n" not in str(caught.value).replace(repr(name), "")


def test_every_kind_uses_the_rule(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="bad policy name"):
        check_policy_name("a/b")
    with pytest.raises(BadInput, match=r"bad run name .*\(it becomes the model's name"):
        check_run_name("a\n")
    with pytest.raises(BadInput, match="bad model name"):
        resolve_model(Settings(home=tmp_path), "../x")
