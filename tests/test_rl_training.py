"""Two-step DPO, KTO, RWR and GRPO runs on the local SmolLM2: a run directory, a servable
merged model in the store (DPO, GRPO), an adapter that reloads onto the base (all), a
config.json that rebuilds the run's config, finite losses, and weights that moved.

Slow by nature (a 135M model trains for real), so kept tiny: batch 2-4, LoRA r=8, short
completions. Torch runs single-threaded here: on a 2-core machine shared with other jobs, two
OpenMP threads spin-wait on each other's time slices (decoding measured 10x slower than one).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from agent.protocol.chat_template import tools_chat_template
from agent.runtime.model_store import (
    BASE_LOCAL_MODEL,
    init_default_model,
    resolve_model,
    resolve_model_dir,
)
from rl.base_config import RunConfig
from rl.base_trainer import TrainedRun
from rl.checkpoints import file_sha256, read_run
from rl.config_builder import build_config
from rl.dpo_config import DPORunConfig
from rl.dpo_trainer import train_dpo
from rl.grpo_config import GRPORunConfig
from rl.grpo_trainer import train_grpo
from rl.kto_config import KTORunConfig
from rl.kto_trainer import train_kto
from rl.rwr_config import RWRRunConfig
from rl.rwr_trainer import train_rwr
from tests.local_models import LocalModels
from tests.rl_samples import PROSE, repaired, rollout, valid, write_log
from tools.catalog.datasets import load_dataset
from tools.catalog.judgments import Judgments
from tools.catalog.splits import select_split
from tools.errors import NotFound
from tools.search.tantivy_backend import TantivyIndex
from tools.settings.config import Settings

pytestmark = pytest.mark.slow

#: Runs train from the untrained base (the default model is the shipped policy merged in).
BASE = BASE_LOCAL_MODEL
TINY = {"lora_r": 8, "lora_alpha": 16, "learning_rate": 1e-3, "warmup_ratio": 0.0}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path, local_models: LocalModels
) -> Settings:
    """A home with the local model and a Home Depot index of a few hundred products."""
    home = tmp_path_factory.mktemp("rl-home")
    local_models.install(home)  # a copy of the session's store: converted once, not per module
    settings = Settings(home=home, data_dir=shared_data, lexical_backend="tantivy")
    init_default_model(settings)  # finds it stored
    return settings


@pytest.fixture(scope="module")
def judgments(settings: Settings) -> Judgments:
    """Three real training requests, indexed with their judged products and 300 others."""
    dataset = load_dataset("homedepot", settings)
    chosen = select_split(dataset.judgments(), "homedepot", "train", 3)
    judged = chosen.judged_products()
    products = [
        p
        for i, p in enumerate(dataset.products())
        if i < 300 or p.id in judged  # the full pass also finishes the import report
    ]
    TantivyIndex(settings.tantivy_dir("homedepot"), create=True).index(products)
    return chosen


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory: pytest.TempPathFactory, judgments: Judgments) -> Path:
    """Four samples per request, rewards spread so every group yields a pair and a GRPO prompt."""
    records = []
    for query in judgments:
        samples = [valid(query.text), PROSE, repaired(query.text), valid(f"{query.text} set")]
        records += [
            rollout(query, index, text, ndcg)
            for index, (text, ndcg) in enumerate(zip(samples, (0.6, 0.0, 0.4, 0.0), strict=True))
        ]
    return write_log(tmp_path_factory.mktemp("traj") / "rollouts.jsonl", records)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "model.safetensors")


def changed_tensors(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> list[str]:
    assert before.keys() == after.keys()
    assert all(torch.isfinite(t).all() for t in after.values())
    return [name for name in before if not torch.equal(before[name], after[name])]


def test_two_step_dpo_saves_registers_and_reloads(settings: Settings, trajectories: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = DPORunConfig(
        base_model=BASE, run_name="dpo-test", max_steps=2, batch_size=2, max_length=256, **TINY
    )
    run = train_dpo(settings, trajectories, config)

    saved = read_run(settings, "dpo-test")
    assert run.run_dir == settings.home / "training" / "dpo-test"
    assert saved["config"]["algo"] == "dpo" and saved["config"]["lora_r"] == 8
    assert saved["data"]["examples"] == 3
    assert saved["data"]["trajectories_sha256"] == file_sha256(trajectories)
    assert saved["metrics"]["global_step"] == 2
    assert saved["metrics"]["step_time"]["steps"] == 2
    assert saved["metrics"]["peak_memory_mb"] > 0
    assert not list((settings.home / "training").glob(".*partial*"))

    stored = resolve_model(settings, "dpo-test")
    assert stored.base == BASE
    assert resolve_model_dir(settings, "dpo-test") == stored.path  # what eval --model loads
    base_dir = resolve_model(settings, BASE).path
    trained = weights(stored.path)
    moved = changed_tensors(weights(base_dir), trained)
    assert moved and all("proj" in name for name in moved)  # LoRA targets only
    tokenizer = AutoTokenizer.from_pretrained(stored.path)
    assert tokenizer.chat_template == tools_chat_template()

    base_model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base_model, run.run_dir / "adapter").merge_and_unload()
    state = reloaded.state_dict()
    for name in moved:
        torch.testing.assert_close(state[name], trained[name], rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match=r"already stored|exists"):
        train_dpo(settings, trajectories, config)


def assert_unregistered_run_with_a_moving_adapter(
    settings: Settings, run: TrainedRun, config: RunConfig
) -> dict[str, Any]:
    """What every offline run without ``register`` must show; returns the run's three files.

    Its config.json rebuilds the config it trained with; every logged loss is finite; the
    adapter is written, loads onto the base model and moves LoRA targets only (LoRA's B
    factors start at zero, so a step that changed nothing would merge back to the base).
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    name = config.run_name
    saved = read_run(settings, name)
    assert run.run_dir == settings.home / "training" / name and run.model is None
    assert saved["metrics"]["model"] is None
    with pytest.raises(NotFound):
        resolve_model(settings, name)  # register=False: nothing in the store
    rebuilt = build_config(None, path=run.run_dir / "config.json")
    assert rebuilt == dataclasses.replace(config, device="cpu")
    assert saved["metrics"]["global_step"] == config.max_steps
    losses = [entry["loss"] for entry in saved["metrics"]["log_history"] if "loss" in entry]
    assert len(losses) == config.max_steps
    assert all(math.isfinite(loss) for loss in [*losses, saved["metrics"]["train"]["train_loss"]])
    assert not list((settings.home / "training").glob(".*partial*"))

    lora = load_file(run.run_dir / "adapter" / "adapter_model.safetensors")
    trained_b = [t for key, t in lora.items() if "lora_B" in key]
    assert trained_b and any(t.abs().sum() > 0 for t in trained_b)
    base_dir = resolve_model(settings, BASE).path
    base_model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base_model, run.run_dir / "adapter").merge_and_unload()
    state = {key: value.detach() for key, value in merged.state_dict().items()}
    base = weights(base_dir)
    moved = changed_tensors(base, {key: state[key] for key in base})
    assert moved and all("proj" in key for key in moved)
    return saved


def test_two_step_rwr_trains_on_replicated_good_samples(
    settings: Settings, trajectories: Path
) -> None:
    config = RWRRunConfig(
        base_model=BASE,
        run_name="rwr-test",
        max_steps=2,
        batch_size=2,
        max_length=256,
        logging_steps=1,
        register=False,
        **TINY,
    )
    run = train_rwr(settings, trajectories, config)

    saved = assert_unregistered_run_with_a_moving_adapter(settings, run, config)
    facts = saved["data"]
    assert facts["trajectories_sha256"] == file_sha256(trajectories)
    # only the samples above min_reward (the prose scores below it) are imitated, replicated
    # by their weights: three requests, each with more than one sample kept
    assert 3 <= facts["weighted_examples"] < facts["rollout_records"] == 12
    assert facts["examples"] >= facts["weighted_examples"]
    assert (facts["beta"], facts["max_weight"]) == (config.beta, config.max_weight)


def test_two_step_kto_balances_its_labels_and_records_the_weights(
    settings: Settings, trajectories: Path
) -> None:
    config = KTORunConfig(
        base_model=BASE,
        run_name="kto-test",
        max_steps=2,
        batch_size=2,
        max_length=256,
        logging_steps=1,
        register=False,
        **TINY,
    )
    run = train_kto(settings, trajectories, config)

    facts = json.loads((run.run_dir / "data.json").read_text())
    desirable, undesirable = facts["desirable"], facts["undesirable"]
    assert desirable > 0 and undesirable > 0 and desirable + undesirable == facts["examples"]
    weights = config.label_weights(desirable, undesirable)
    assert weights[0] * desirable == pytest.approx(weights[1] * undesirable)  # balanced
    settled = dataclasses.replace(
        config, desirable_weight=weights[0], undesirable_weight=weights[1]
    )
    assert_unregistered_run_with_a_moving_adapter(settings, run, settled)


def test_two_step_grpo_rewards_from_the_live_index(
    settings: Settings, trajectories: Path, judgments: Judgments
) -> None:
    config = GRPORunConfig(
        base_model=BASE,
        run_name="grpo-test",
        max_steps=2,
        num_generations=4,
        prompts_per_step=2,  # two groups a step: one that scores alike still leaves a gradient
        max_completion_length=40,
        logging_steps=1,
        **TINY,
    )
    run = train_grpo(settings, trajectories, config, judgments=judgments)

    assert run.metrics["global_step"] == 2
    logged = [entry for entry in run.metrics["log_history"] if "reward" in entry]
    assert len(logged) == 2
    assert all(-1.0 <= entry["reward"] <= 1.1 for entry in logged)
    assert all("rewards/valid_rate" in entry for entry in logged)
    facts = json.loads((run.run_dir / "data.json").read_text())
    assert facts["examples"] == 3 and facts["dataset_name"] == "homedepot"
    spread = [entry.get("reward_std", 0.0) for entry in logged]
    assert any(std > 0 for std in spread), "every sampled group scored alike: no gradient"
    base = weights(resolve_model(settings, BASE).path)
    assert changed_tensors(base, weights(resolve_model(settings, "grpo-test").path))


def test_training_refuses_a_file_without_rollouts(settings: Settings, tmp_path: Path) -> None:
    empty = write_log(tmp_path / "none.jsonl", [])
    empty.touch()
    with pytest.raises(ValueError, match="no training examples"):
        train_dpo(settings, empty, DPORunConfig(base_model=BASE, run_name="never"))
    assert not (settings.home / "training" / "never").exists()
    assert list(itertools.chain((settings.home / "training").glob(".never*"))) == []


def test_two_step_sft_learns_the_judged_query_from_the_last_turns_prompt(
    settings: Settings, judgments: Judgments, tmp_path: Path
) -> None:
    """Each training session runs through the chat graph; the row is the conversation prompt
    of its last turn (both messages, the graph's earlier search) and the judged query's call."""
    from agent.protocol.chat_template import tool_call_text
    from rl.sft_config import SFTRunConfig
    from rl.sft_trainer import train_sft
    from tools.catalog.sessions import Session, write_sessions

    sessions = []
    for n, query in enumerate(judgments):
        words = query.text.split()
        sessions.append(
            Session(
                f"w{n}",
                (f"hi! any {query.text} around? thanks",),
                query.id,
                query.text,
                {"kind": "wordy"},
            )
        )
        sessions.append(
            Session(
                f"p{n}",
                (words[-1], " ".join(words[:-1]) or "please"),
                query.id,
                query.text,
                {"kind": "product_then_modifiers"},
            )
        )
    path = tmp_path / "train-sessions.jsonl"
    write_sessions(path, sessions)
    config = SFTRunConfig(
        base_model=BASE,
        run_name="sft-test",
        max_steps=2,
        batch_size=2,
        max_length=512,
        logging_steps=1,
        register=False,
        session_batch=2,
        **TINY,
    )
    run = train_sft(settings, path, config)

    saved = assert_unregistered_run_with_a_moving_adapter(settings, run, config)
    facts = saved["data"]
    assert facts["examples"] == len(sessions) == 6
    assert facts["kinds"] == {"wordy": 3, "product_then_modifiers": 3}
    assert facts["sessions_sha256"] == file_sha256(path)

    from agent.conversation.scripted_sessions import ScriptedSessions
    from rl.sft_trainer import sft_rows
    from tools.search_tools import SearchToolbox

    rows = sft_rows(ScriptedSessions(SearchToolbox(settings, "homedepot"), depth=10), sessions)
    two_turns = rows[1]
    assert two_turns["session_id"] == "p0"
    user = two_turns["prompt"][-1]["content"]
    first, second = sessions[1].turns
    assert f"Shopper: {first}\nShopper: {second}" in user
    assert f"Last search: {first}" in user  # what the chat searched at the first turn
    target = tool_call_text("search_products", {"query": sessions[1].query_text})
    assert two_turns["completion"] == [{"role": "assistant", "content": target}]


def test_sft_refuses_sessions_of_queries_outside_the_train_split(settings: Settings) -> None:
    from rl.sft_trainer import training_sessions
    from tools.catalog.sessions import Session
    from tools.errors import BadInput

    every = load_dataset("homedepot", settings).judgments()
    dev = select_split(every, "homedepot", "dev", 1)
    (query,) = list(dev)
    leaked = Session("d0", ("hello",), query.id, query.text, {})
    with pytest.raises(BadInput, match="outside homedepot's train split"):
        training_sessions([leaked], every, "homedepot")
    with pytest.raises(BadInput, match="no train split"):
        training_sessions([leaked], every, "chorus")
