"""The gain reward (NDCG over the raw search's) on a real tiny tantivy index, the datasets that
drop groups without spread, the GRPO config's mapping onto TRL, and the learning curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.protocol.tool_calls import ToolCallParse, parse_tool_calls
from agent.protocol.tool_schemas import schema_for
from rl.curves import CURVES_FILE, curve_series, plot_learning_curves
from rl.datasets import Rollout as Sample
from rl.datasets import RolloutGroup, build_dpo_dataset, build_kto_dataset, build_rwr_dataset
from rl.grpo_config import GRPORunConfig
from rl.rewards import (
    FORMAT_INVALID,
    FORMAT_VALID,
    LiveSearch,
    RawBaseline,
    SearchRewardFunc,
    search_reward,
)
from rl.rollouts import CollectConfig, RolloutKey
from tests.catalog_samples import sample_products, sample_toolbox
from tests.rl_samples import PROSE, valid
from tools.catalog.judgments import Judgments, Query
from tools.errors import BadInput
from tools.metrics import ndcg
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

PRODUCTS_TOOL = [schema_for("search_products")]
#: The shopper wants the wireless mouse; the raw words rank a gaming mouse first.
SHOPPER = "mouse"
JUDGED = {"m3": 2.0}


def parse(text: str) -> ToolCallParse:
    return parse_tool_calls(text, PRODUCTS_TOOL)


def call(arguments: dict[str, object]) -> str:
    body = json.dumps({"name": "search_products", "arguments": arguments})
    return f"<tool_call>{body}</tool_call>"


@pytest.fixture()
def toolbox(tmp_path: Path) -> SearchToolbox:
    settings = Settings(home=tmp_path / "home")
    TantivyIndex(settings.tantivy_dir("samples"), create=True).index(sample_products())
    return SearchToolbox(settings, "samples")


def test_copying_the_query_earns_exactly_the_format(toolbox: SearchToolbox) -> None:
    baseline = RawBaseline(toolbox)
    raw = baseline(SHOPPER, JUDGED)
    assert 0 < raw < 1  # m3 is found, but not first
    copied = search_reward(parse(valid(SHOPPER)), JUDGED, LiveSearch(toolbox), raw_ndcg=raw)
    assert copied.gain == 0.0
    assert copied.total == FORMAT_VALID
    assert copied.components()["raw_ndcg@10"] == raw
    # a copy with an empty add_terms list is the same search
    empty = search_reward(
        parse(call({"query": SHOPPER, "add_terms": []})), JUDGED, LiveSearch(toolbox), raw_ndcg=raw
    )
    assert empty.total == FORMAT_VALID


def test_a_better_search_earns_its_gain_and_a_worse_one_loses_it(toolbox: SearchToolbox) -> None:
    raw = RawBaseline(toolbox)(SHOPPER, JUDGED)
    search = LiveSearch(toolbox)
    better = search_reward(
        parse(call({"query": SHOPPER, "add_terms": ["wireless"]})), JUDGED, search, raw_ndcg=raw
    )
    assert search.last is not None and search.last.ids[0] == "m3"
    assert better.ndcg == 1.0
    assert better.total == pytest.approx(FORMAT_VALID + 1.0 - raw)
    worse = search_reward(parse(valid("keyboard")), JUDGED, search, raw_ndcg=raw)
    assert worse.ndcg == 0.0
    assert worse.total == pytest.approx(FORMAT_VALID - raw)  # no clamp to 0: losing costs
    invalid = search_reward(parse(PROSE), JUDGED, search, raw_ndcg=raw)
    assert invalid.total == FORMAT_INVALID and invalid.gain is None
    # the absolute shape is still there when no raw NDCG is given
    absolute = search_reward(parse(valid("keyboard")), JUDGED, search)
    assert absolute.total == 0.0 and absolute.raw_ndcg is None


def test_the_raw_baseline_is_the_raw_search_and_is_cached(toolbox: SearchToolbox) -> None:
    baseline = RawBaseline(toolbox)
    from tools.search.request import SearchRequest

    expected = ndcg(toolbox.lexical.search(SearchRequest(SHOPPER, size=10)).ids, JUDGED, 10)
    assert baseline(SHOPPER, JUDGED) == expected
    assert baseline("!!!", JUDGED) == 0.0  # no word to search
    assert len(baseline._cache) == 2
    baseline(SHOPPER, JUDGED)
    assert len(baseline._cache) == 2


def test_grpo_reward_function_reads_query_text_and_logs_the_gain(toolbox: SearchToolbox) -> None:
    logged: dict[str, float] = {}
    func = SearchRewardFunc(LiveSearch(toolbox), baseline=RawBaseline(toolbox))
    completions = [valid(SHOPPER), call({"query": SHOPPER, "add_terms": ["wireless"]}), PROSE]
    rewards = func(
        prompts=["p"] * 3,
        completions=completions,
        judged=[json.dumps(JUDGED)] * 3,
        query_text=[SHOPPER] * 3,
        log_metric=logged.__setitem__,
    )
    raw = RawBaseline(toolbox)(SHOPPER, JUDGED)
    assert rewards == pytest.approx([FORMAT_VALID, FORMAT_VALID + 1 - raw, FORMAT_INVALID])
    assert logged["rewards/gain@10"] == pytest.approx((0 + (1 - raw) - raw) / 3)
    with pytest.raises(ValueError, match="query_text"):
        func(prompts=["p"], completions=[PROSE], judged=[json.dumps(JUDGED)])


# -- datasets: groups without spread are dropped -------------------------------------------------


def group(query_id: str, rewards: list[float]) -> RolloutGroup:
    key = RolloutKey("m", "policy", query_id)
    messages = ({"role": "user", "content": query_id},)
    made = RolloutGroup(key, "homedepot", query_id, messages)
    made.rollouts = [Sample(i, valid(f"q{i}"), "valid", r, 0.0) for i, r in enumerate(rewards)]
    return made


def test_groups_whose_samples_all_score_the_same_are_dropped() -> None:
    flat = group("flat", [0.1, 0.1, 0.1, 0.1])  # every sample copied the query: gain 0
    useful = group("useful", [0.1, 0.6, 0.1, -0.2])
    assert build_dpo_dataset([flat, useful], margin=0.0)["query_id"] == ["useful"]
    assert set(build_kto_dataset([flat, useful])["query_id"]) == {"useful"}
    # RWR keeps samples above min_reward: a flat group above it would still have been kept
    rwr = build_rwr_dataset([flat, useful], min_reward=0.05)
    assert set(rwr["query_id"]) == {"useful"}


def test_rwr_with_a_chosen_margin_clones_one_sample_per_request_copy_unless_beaten() -> None:
    flat = group("flat", [0.1, 0.1, 0.1, 0.1])  # nothing changes anything: the copy
    narrow = group("narrow", [0.1, 0.15, 0.1, -0.2])  # a change wins by a hair: the copy
    clear = group("clear", [0.1, 0.6, 0.7, -0.2])  # a change wins clearly: the best of them
    hurt = group("hurt", [-0.3, -0.35, -0.3, -0.4])  # the copy itself lost: nothing to imitate
    rows = build_rwr_dataset([flat, narrow, clear, hurt], chosen_margin=0.1)
    chosen = {row["query_id"]: row["completion"][0]["content"] for row in rows}
    assert chosen == {"flat": valid("q0"), "narrow": valid("q0"), "clear": valid("q2")}
    assert set(rows["weight"]) == {1.0}
    assert dict(zip(rows["query_id"], rows["advantage"], strict=True))["clear"] == pytest.approx(
        0.6
    )
    # a margin of 0 takes any strict improvement; ties stay with the copy
    loose = build_rwr_dataset([narrow, flat], chosen_margin=0.0)
    assert [row["completion"][0]["content"] for row in loose] == [valid("q1"), valid("q0")]
    with pytest.raises(BadInput, match="chosen_margin"):
        build_rwr_dataset([flat], chosen_margin=-0.1)


# -- configs -------------------------------------------------------------------------------------


def test_grpo_defaults_follow_rec_r1_and_map_onto_trl(tmp_path: Path) -> None:
    config = GRPORunConfig()
    assert config.num_generations >= 8
    assert config.kl_beta == pytest.approx(0.001)
    assert config.reward == "gain"
    trl = config.to_trl(str(tmp_path / "out"))
    assert trl.num_generations == config.num_generations
    assert trl.beta == config.kl_beta
    assert trl.per_device_train_batch_size == config.num_generations * config.prompts_per_step
    assert trl.per_device_train_batch_size % trl.num_generations == 0
    with pytest.raises(BadInput, match="reward"):
        GRPORunConfig(reward="ndcg")
    with pytest.raises(BadInput, match="reward"):
        CollectConfig(reward="best")


# -- learning curves -----------------------------------------------------------------------------


FAKE_HISTORY = [
    {"step": 5, "loss": 0.02, "reward": -0.2, "rewards/gain@10": -0.05, "rewards/ndcg@10": 0.3},
    {"step": 10, "loss": 0.01, "reward": 0.05, "rewards/gain@10": 0.0, "rewards/ndcg@10": 0.33},
    {"step": 10, "eval_ndcg@10": 0.35},
    {"step": 15, "loss": 0.03, "reward": 0.12, "rewards/gain@10": 0.02, "rewards/ndcg@10": 0.36},
    {"train_runtime": 12.0, "step": 15},
]


def test_curve_series_reads_the_measures_the_history_holds() -> None:
    series = curve_series(FAKE_HISTORY)
    assert series["reward"] == [(5.0, -0.2), (10.0, 0.05), (15.0, 0.12)]
    assert series["gain over raw (NDCG@10)"][-1] == (15.0, 0.02)
    assert series["dev NDCG@10"] == [(10.0, 0.35)]
    assert "DPO reward margin" not in series and "valid calls" not in series


def test_learning_curves_png_is_written_into_the_run_directory(tmp_path: Path) -> None:
    path = plot_learning_curves(FAKE_HISTORY, tmp_path / "run", title="grpo test")
    assert path == tmp_path / "run" / CURVES_FILE
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_learning_curves([{"train_runtime": 1.0}], tmp_path / "empty") is None
    assert not (tmp_path / "empty").exists()


# -- online GRPO: flat groups leave the loss -----------------------------------------------------


def test_flat_groups_are_masked_out_of_the_grpo_loss() -> None:
    import torch

    from rl.grpo_groups import drop_flat_groups, flat_group_rows, informative_grpo_trainer_class

    # two groups of 4: the first all copied the query (advantage 0), the second had spread
    advantages = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.2, -0.4, 0.0, -0.8])
    assert flat_group_rows(advantages, 4).tolist() == [True] * 4 + [False] * 4
    output = {
        "advantages": advantages,
        "completion_mask": torch.ones(8, 5, dtype=torch.int64),
        "num_items_in_batch": torch.tensor(40),
    }
    share = drop_flat_groups(output, 4, gather=lambda t: t.reshape(1))
    assert share == 0.5
    assert output["completion_mask"][:4].sum() == 0 and output["completion_mask"][4:].sum() == 20
    assert int(output["num_items_in_batch"]) == 20  # the normaliser counts kept tokens only
    # a row with advantage 0 inside a group with spread is kept
    assert output["completion_mask"][6].sum() == 5
    untouched = {"advantages": advantages[4:], "completion_mask": torch.ones(4, 5)}
    assert drop_flat_groups(untouched, 4, gather=lambda t: t.reshape(1)) == 0.0
    with pytest.raises(ValueError, match="whole groups"):
        flat_group_rows(advantages[:6], 4)
    from trl import GRPOTrainer

    assert issubclass(informative_grpo_trainer_class(), GRPOTrainer)


# -- dev NDCG@10 during training -----------------------------------------------------------------


class ScriptedGenerator:
    """Greedy replies by request: copy it, add the word that finds the judged product, or prose."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies
        self.temperatures: list[float] = []

    def generate(self, conversations, *, tools=None, max_new_tokens=64, temperature=0.0):  # type: ignore[no-untyped-def]
        self.temperatures.append(temperature)
        out = []
        for conversation in conversations:
            text = self.replies[str(conversation[-1]["content"])]
            out.append(type("Reply", (), {"parsed": parse_tool_calls(text, list(tools))})())
        return out


def dev_judgments() -> Judgments:
    judgments = Judgments()
    for text, product_id in (("mouse", "m3"), ("toner", "p1"), ("speaker", "s1")):
        judgments.add(Query.from_text(text), product_id, 1)
    return judgments


def test_dev_probe_scores_the_greedy_policy_like_the_eval(toolbox: SearchToolbox) -> None:
    from rl.dev_probe import build_dev_probe

    probe = build_dev_probe(dev_judgments(), "policy", toolbox, LiveSearch(toolbox))
    generator = ScriptedGenerator(
        {
            "mouse": call({"query": "mouse", "add_terms": ["wireless"]}),  # m3 first: NDCG 1
            "toner": valid("toner"),  # the raw search: gain 0
            "speaker": PROSE,  # invalid: NDCG 0
        }
    )
    metrics = probe.measure(generator)
    raw = [RawBaseline(toolbox)(t, {p: 1.0}) for t, p in (("mouse", "m3"), ("speaker", "s1"))]
    assert generator.temperatures == [0.0]
    assert metrics["dev_ndcg@10"] == pytest.approx((1.0 + 1.0 + 0.0) / 3, abs=1e-6)
    assert metrics["dev_gain@10"] == pytest.approx(((1.0 - raw[0]) + 0.0 - raw[1]) / 3, abs=1e-6)
    assert metrics["dev_valid_rate"] == pytest.approx(2 / 3, abs=1e-6)


def test_dev_probe_callback_logs_and_restores_the_policy(tmp_path: Path) -> None:
    toolbox = sample_toolbox(tmp_path / "probe", concepts=True)  # the expand prompt reads both
    from types import SimpleNamespace

    from rl.dev_probe import build_dev_probe, dev_probe_callback

    probe = build_dev_probe(dev_judgments(), "expand", toolbox, LiveSearch(toolbox))
    assert "Candidate words:" in str(probe.conversations[0][-1]["content"])
    copy = {
        str(c[-1]["content"]): valid(str(c[-1]["content"]).split("\n")[0])
        for c in probe.conversations
    }
    seen: list[tuple[bool, str]] = []

    class Model:
        training = True

        def eval(self) -> None:
            self.training = False

        def train(self) -> None:
            self.training = True

    model, tokenizer = Model(), SimpleNamespace(padding_side="right")

    def make_generator(m: Model, t: SimpleNamespace) -> ScriptedGenerator:
        seen.append((m.training, t.padding_side))
        return ScriptedGenerator(copy)

    callback = dev_probe_callback(probe, every=2, make_generator=make_generator)
    state = SimpleNamespace(global_step=0, log_history=[])
    kwargs = {"model": model, "processing_class": tokenizer}
    callback.on_train_begin(None, state, None, **kwargs)
    for step in (1, 2, 3):
        state.global_step = step
        callback.on_step_end(None, state, None, **kwargs)
    assert [entry["step"] for entry in state.log_history] == [0, 2]
    assert state.log_history[0]["dev_gain@10"] == 0.0  # copying is the raw search
    assert seen == [(False, "left"), (False, "left")]
    assert model.training and tokenizer.padding_side == "right"
    assert "dev NDCG@10" in curve_series(state.log_history)
