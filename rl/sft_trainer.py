"""``shopagent train --algo sft --from-sessions FILE``: the conversation writer, supervised.

Each training session (``tools.catalog.sessions``; ``shopagent data sessions --split train``)
runs through the chat graph with the graph writing every search
(``agent.conversation.scripted_sessions``), so each earlier turn searched what the chat
would search without a model; the prompt is what the writer reads at the last turn
(``agent.conversation.writer.conversation_view``), and the completion is the call that
searches the session's judged query (``agent.protocol.chat_template.tool_call_text``).
Sessions whose query is not a training query are refused: dev and test must stay unseen.
The run around it is ``rl.base_trainer``'s (LoRA, TRL's SFTTrainer, merge and register).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Value

from agent.conversation.scripted_sessions import ScriptedSessions
from agent.protocol.chat_template import tool_call_text
from agent.protocol.tool_schemas import SEARCH_PRODUCTS, schema_for
from agent.protocol.writer_prompts import build_conversation_prompt
from rl.base_trainer import TrainedRun, run_training, trl_trainer
from rl.datasets import MESSAGES, assistant
from rl.sft_config import SFTRunConfig
from tools.catalog.judgments import Judgments
from tools.catalog.sessions import Session, read_sessions
from tools.catalog.splits import split_names, split_queries
from tools.errors import BadInput
from tools.settings.config import Settings

SFT_FEATURES = Features(
    {
        "prompt": MESSAGES,
        "completion": MESSAGES,
        "tools": Value("string"),
        "session_id": Value("string"),
        "kind": Value("string"),
    }
)


def training_sessions(
    sessions: Sequence[Session], judgments: Judgments, dataset: str
) -> list[Session]:
    """The sessions, refused whole if any stands for a query outside the train split."""
    if "train" not in split_names(dataset):
        raise BadInput(f"{dataset} has no train split: its sessions are for evaluation only")
    train = {q.id for q in split_queries(judgments, dataset, "train")}
    outside = [s.id for s in sessions if s.query_id not in train]
    if outside:
        raise BadInput(
            f"{len(outside)} session(s) stand for queries outside {dataset}'s train split "
            f"(e.g. {outside[0]}): training must never see dev or test queries"
        )
    return list(sessions)


def sft_rows(scripted: ScriptedSessions, sessions: Sequence[Session]) -> Dataset:
    """One row per session: the writer's last-turn prompt and the judged query's call."""
    tools = json.dumps([schema_for(SEARCH_PRODUCTS)])
    rows: dict[str, list[Any]] = {name: [] for name in SFT_FEATURES}
    for outcome in scripted.run(sessions):
        prompt = build_conversation_prompt(outcome.view)
        call = tool_call_text(SEARCH_PRODUCTS, {"query": outcome.session.query_text})
        rows["prompt"].append([dict(m) for m in prompt.messages])
        rows["completion"].append(assistant(call))
        rows["tools"].append(tools)
        rows["session_id"].append(outcome.session.id)
        rows["kind"].append(outcome.session.kind)
    return Dataset.from_dict(rows, features=SFT_FEATURES)


def train_sft(settings: Settings, sessions_path: Path, config: SFTRunConfig) -> TrainedRun:
    from tools.catalog.datasets import load_dataset
    from tools.search_tools import SearchToolbox

    judgments = load_dataset(config.dataset, settings).judgments()
    read = read_sessions(sessions_path, judgments)
    sessions = training_sessions(read.sessions, judgments, config.dataset)
    scripted = ScriptedSessions(
        SearchToolbox(settings, config.dataset),
        dataset=config.dataset,
        depth=10,
        batch_size=config.session_batch,
    )
    rows = sft_rows(scripted, sessions).shuffle(seed=config.seed).flatten_indices()
    facts = {
        "sessions": str(sessions_path),
        "sessions_sha256": hashlib.sha256(Path(sessions_path).read_bytes()).hexdigest(),
        "sessions_read": len(read.sessions),
        "rows_skipped": len(read.skipped),
        "examples": len(rows),
        "kinds": dict(Counter(rows["kind"])),
    }

    def make_trainer(model: Any, tokenizer: Any, data: Any, output_dir: str, peft: Any) -> Any:
        return trl_trainer("SFTTrainer", model, tokenizer, data, config.to_trl(output_dir), peft)

    return run_training(
        config, settings, train_dataset=rows, make_trainer=make_trainer, facts=facts
    )
