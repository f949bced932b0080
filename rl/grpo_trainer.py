"""``shopagent train --algo grpo``: TRL's GRPOTrainer with LoRA and the live search reward.

Prompts reach TRL as text, rendered here with the model's tools template and each row's
tools. Why not conversational prompts: GRPOTrainer renders those with trainer-level ``tools``
callables, which also switches on its multi-turn tool-execution loop; here a reply is one
search call that the reward function runs and scores itself. The rendered text is exactly
what ``agent.runtime.generation`` feeds the model (it is checked that tokenizing adds no special
tokens), so GRPO samples from the same distribution that eval measures. Groups whose samples
all scored the same are masked out of each step's loss (``rl.grpo_groups``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import Dataset

from agent.protocol.tool_search import SearchBackends
from rl.base_trainer import TrainedRun, data_facts, run_training, trl_trainer
from rl.datasets import RolloutData, build_grpo_dataset, read_rollouts
from rl.dev_probe import build_dev_probe, dev_probe_callback
from rl.grpo_config import GRPORunConfig
from rl.grpo_groups import informative_grpo_trainer_class
from rl.rewards import LiveSearch, RawBaseline, SearchFn, SearchRewardFunc
from tools.catalog.judgments import Judgments
from tools.errors import BadInput
from tools.settings.config import Settings


def grpo_dataset(
    data: RolloutData, config: GRPORunConfig, judgments: Judgments | None, settings: Settings
) -> tuple[str, Dataset]:
    """The rollouts' dataset name and its GRPO prompts (judgments default to the dataset's)."""
    names = sorted({group.dataset for group in data.groups})
    if len(names) > 1:
        raise BadInput(f"grpo: the rollouts span several datasets {names}; filter the file first")
    if not names:
        raise BadInput("grpo: the trajectory file holds no rollouts")
    if judgments is None:
        from tools.catalog.datasets import load_dataset

        judgments = load_dataset(names[0], settings).judgments()
    dataset = build_grpo_dataset(data.groups, judgments, only_informative=config.only_informative)
    return names[0], dataset


def render_prompts(dataset: Dataset, tokenizer: Any) -> Dataset:
    """Conversational ``prompt`` + ``tools`` -> the prompt text generation sees."""

    def render(row: dict[str, Any]) -> dict[str, Any]:
        text = tokenizer.apply_chat_template(
            row["prompt"],
            tools=json.loads(row["tools"]),
            add_generation_prompt=True,
            tokenize=False,
        )
        return {"prompt": text}

    rendered = dataset.map(render, features=None)
    sample = rendered[0]["prompt"] if len(rendered) else ""
    if tokenizer(sample)["input_ids"] != tokenizer(sample, add_special_tokens=False)["input_ids"]:
        raise BadInput("this tokenizer adds special tokens to text: GRPO prompts would drift")
    return rendered


def build_grpo_trainer(
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    args: Any,
    peft_config: Any,
    search_fn: SearchFn,
    *,
    k: int,
    baseline: RawBaseline | None = None,
) -> Any:
    return trl_trainer(
        informative_grpo_trainer_class(),
        model,
        tokenizer,
        render_prompts(train_dataset, tokenizer),
        args,
        peft_config,
        reward_funcs=[SearchRewardFunc(search_fn, k=k, baseline=baseline)],
    )


def train_grpo(
    settings: Settings,
    trajectories: Path,
    config: GRPORunConfig,
    *,
    judgments: Judgments | None = None,
    search_fn: SearchFn | None = None,
    backends: SearchBackends | None = None,
) -> TrainedRun:
    """GRPO on the requests of ``trajectories``, rewarded by the live index of their dataset.

    ``judgments`` and ``search_fn`` default to the dataset's own judgments and a
    ``LiveSearch`` over its ``SearchToolbox``; with ``config.reward == "gain"`` the reward
    subtracts the raw search's NDCG, run on ``backends`` (default: that toolbox).
    """
    data = read_rollouts(trajectories, model_id=config.rollout_model)
    dataset_name, dataset = grpo_dataset(data, config, judgments, settings)
    if search_fn is None or (backends is None and config.reward == "gain"):
        from tools.search_tools import SearchToolbox

        toolbox = SearchToolbox(settings, dataset_name)
        backends = backends or toolbox
        search_fn = search_fn or LiveSearch(toolbox, size=config.k)
    baseline = RawBaseline(backends, k=config.k) if config.reward == "gain" else None
    live_search = search_fn
    probe = None
    if config.dev_queries:
        from tools.catalog.datasets import load_dataset
        from tools.catalog.splits import select_split

        if backends is None:
            from tools.search_tools import SearchToolbox

            backends = SearchToolbox(settings, dataset_name)
        dev = select_split(
            load_dataset(dataset_name, settings).judgments(),
            dataset_name,
            "dev",
            config.dev_queries,
        )
        strategy = data.groups[0].key.strategy
        probe = build_dev_probe(dev, strategy, backends, live_search, k=config.k)

    def make_trainer(model: Any, tokenizer: Any, rows: Any, output_dir: str, peft: Any) -> Any:
        trainer = build_grpo_trainer(
            model,
            tokenizer,
            rows,
            config.to_trl(output_dir),
            peft,
            live_search,
            k=config.k,
            baseline=baseline,
        )
        if probe is not None:
            trainer.add_callback(dev_probe_callback(probe, config.dev_every))
        return trainer

    return run_training(
        config,
        settings,
        train_dataset=dataset,
        make_trainer=make_trainer,
        facts=data_facts(
            trajectories,
            data,
            dataset,
            dataset_name=dataset_name,
            only_informative=config.only_informative,
        ),
    )
