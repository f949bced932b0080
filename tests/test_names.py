"""``tools.names``: the one rule for names that become folder names."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.runtime.model_store import resolve_model
from agent.runtime.policies import check_policy_name
from rl.checkpoints import check_run_name
from tools.errors import BadInput, NotFound
from tools.names import check_name
from tools.settings.config import Settings

SAFE = ["smollm2-135m", "a", "run_1.v2", "A" * 64]
UNSAFE = ["", ".hidden", "-x", "a/b", "../up", "a b", "a\n", "é", "A" * 65, "_x"]


@pytest.mark.parametrize("name", SAFE)
def test_safe_names_pass_and_stay_one_folder_down(name: str, tmp_path: Path) -> None:
    check_name("model", name)  # no BadInput
    folder = tmp_path / name
    folder.mkdir()
    assert folder.resolve().parent == tmp_path.resolve() and folder.resolve().name == name


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_names_are_refused_in_one_line(name: str) -> None:
    with pytest.raises(BadInput, match=r"^bad model name .*64 at most") as caught:
        check_name("model", name)
    assert "\n" not in str(caught.value).replace(repr(name), "")


@pytest.mark.parametrize("name", UNSAFE)
def test_every_kind_refuses_what_the_rule_refuses(name: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="bad policy name"):
        check_policy_name(name)
    with pytest.raises(BadInput, match=r"bad run name .*\(it becomes the model's name"):
        check_run_name(name)
    with pytest.raises(BadInput, match="bad model name"):
        resolve_model(Settings(home=tmp_path), name or "../x")  # "" means the default model


@pytest.mark.parametrize("name", SAFE)
def test_every_kind_accepts_what_the_rule_accepts(name: str, tmp_path: Path) -> None:
    check_policy_name(name)  # no BadInput from either
    check_run_name(name)
    with pytest.raises(NotFound, match="no stored model"):  # looked up, not refused
        resolve_model(Settings(home=tmp_path), name)
