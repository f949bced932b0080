"""``shopagent train``: every run-config field is a flag and a --config key; flags win.

The command is run through ``cli.main`` with ``rl.train`` replaced by a recorder, so what is
checked is the config the trainer would get, without loading a model.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer

import cli
import rl
from rl.base_config import RunConfig
from rl.config_builder import build_config, config_fields
from tools.errors import BadInput

ALGORITHMS = rl.ALGORITHMS


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SHOPAGENT_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "300")


@pytest.fixture()
def trained(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """The configs ``shopagent train`` hands to ``rl.train`` (which trains nothing here)."""
    seen: list[RunConfig] = []

    def record(settings: Any, algo: str, trajectories: Path, config: RunConfig) -> Any:
        assert algo == config.algo
        seen.append(config)
        return SimpleNamespace(name="run", run_dir=Path("run"), model=None, metrics={})

    monkeypatch.setattr(rl, "train", record)
    return seen


def run_train(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``shopagent train ARGS`` with the input file its algorithm trains from."""
    sft = any(a == "sft" and b == "--algo" for b, a in itertools.pairwise(args))
    source = ["--from-sessions", "sessions.jsonl"] if sft else ["--from-trajectories", "r.jsonl"]
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", *source, *args])
    code = exited.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


def changed_value(algo: str, field: dataclasses.Field[Any]) -> Any:
    """A valid value other than the field's default, of the field's type."""
    default = field.default
    kind = next(f.kind for f in config_fields(algo) if f.name == field.name)
    if field.name == "device":
        return "auto"
    if field.name == "reward":  # GRPO's reward shape: one of a list
        from rl.rewards import REWARD_SHAPES

        return next(shape for shape in REWARD_SHAPES if shape != default)
    if kind is bool:
        return not default
    if kind is tuple:
        return ("q_proj", "v_proj")
    if kind is int:
        return (default or 0) + 2
    if kind is float:
        return default / 2 if default else 0.5
    return f"{field.name}-x"


def settable_fields(algo: str) -> list[dataclasses.Field[Any]]:
    # GRPO derives its batch size (test_a_derived_value_cannot_be_set_to_another).
    cls = rl.config_class(algo)
    return [f for f in dataclasses.fields(cls) if not (algo == "grpo" and f.name == "batch_size")]


def as_flags(values: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, tuple):
            args += [flag, ",".join(value)]
        else:
            args += [flag, str(value)]
    return args


def as_toml(values: dict[str, Any]) -> str:
    lines = []
    for name, value in values.items():
        if isinstance(value, tuple):
            value = list(value)
        lines.append(f"{name} = {json.dumps(value)}")  # JSON scalars and lists are TOML too
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_field_has_a_flag_with_its_help(algo: str) -> None:
    train = typer.main.get_command(cli.app).commands["train"]  # type: ignore[attr-defined]
    options = {opt: param for param in train.params for opt in param.opts}
    fields = dataclasses.fields(rl.config_class(algo))
    assert len(fields) >= 20
    for field in fields:
        help_text = field.metadata.get("help", "")
        assert help_text, f"{algo}.{field.name} has no metadata['help']"
        option = options.get("--" + field.name.replace("_", "-"))
        assert option is not None, f"{algo}.{field.name} has no flag"
        assert help_text.rstrip(".") in option.help


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_field_set_by_flag_reaches_the_config(
    algo: str, capsys: pytest.CaptureFixture[str], trained: list[RunConfig]
) -> None:
    wanted = {f.name: changed_value(algo, f) for f in settable_fields(algo)}
    code, err = run_train(capsys, "--algo", algo, *as_flags(wanted))
    assert code == 0, err
    [config] = trained
    assert {name: getattr(config, name) for name in wanted} == wanted
    assert type(config) is rl.config_class(algo)


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_field_set_in_the_file_reaches_the_config(algo: str, tmp_path: Path) -> None:
    wanted = {f.name: changed_value(algo, f) for f in settable_fields(algo)}
    path = tmp_path / "run.toml"
    path.write_text(f'algo = "{algo}"\n' + as_toml(wanted), encoding="utf-8")
    config = build_config(None, path=path)  # the algorithm comes from the file
    assert {name: getattr(config, name) for name in wanted} == wanted


def test_flags_override_the_file_which_overrides_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trained: list[RunConfig]
) -> None:
    path = tmp_path / "run.toml"
    path.write_text("beta = 0.3\nlora_r = 8\nmargin = 0.25\n", encoding="utf-8")
    code, err = run_train(capsys, "--algo", "dpo", "--config", str(path), "--beta", "0.2")
    assert code == 0, err
    [config] = trained
    assert (config.beta, config.lora_r, config.margin) == (0.2, 8, 0.25)  # type: ignore[attr-defined]
    assert config.loss_type == "sigmoid"  # type: ignore[attr-defined]  # the default
    assert config.learning_rate == 5e-5


def test_the_old_base_flag_still_sets_the_base_model(
    capsys: pytest.CaptureFixture[str], trained: list[RunConfig]
) -> None:
    code, err = run_train(capsys, "--algo", "rwr", "--base", "dpo-r1", "--max-steps", "3")
    assert code == 0, err
    assert (trained[0].base_model, trained[0].max_steps) == ("dpo-r1", 3)


@pytest.mark.parametrize(
    ("file_text", "flags", "message"),
    [
        ("lora_rank = 8\n", (), "'lora_rank' is not a dpo setting"),
        ("num_generations = 8\n", (), "'num_generations' is a grpo setting, not a dpo one"),
        ("beta = 'high'\n", (), "beta must be a number, got 'high'"),
        ("lora_r = 2.5\n", (), "lora_r must be an integer, got 2.5"),
        ("[dpo]\nbeta = 0.2\n", (), "'dpo' is not a dpo setting"),
        ("beta = \n", (), "not valid TOML"),
        ('algo = "kto"\n', (), "is a kto config; it cannot train --algo dpo"),
        ("", ("--num-generations", "6"), "--num-generations is a grpo setting, not a dpo one"),
        ("", ("--lora-r", "0"), "lora_r must be at least 1"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained: list[RunConfig],
    file_text: str,
    flags: tuple[str, ...],
    message: str,
) -> None:
    path = tmp_path / "run.toml"
    path.write_text(file_text, encoding="utf-8")
    code, err = run_train(capsys, "--algo", "dpo", "--config", str(path), *flags)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message in err
    assert not trained


def test_without_an_algorithm_it_says_how_to_choose(
    capsys: pytest.CaptureFixture[str], trained: list[RunConfig]
) -> None:
    code, err = run_train(capsys)
    assert code == 1 and "--algo dpo|kto|rwr|grpo" in err


def test_a_derived_value_cannot_be_set_to_another() -> None:
    with pytest.raises(BadInput, match="grpo sets batch_size itself"):
        build_config("grpo", flags={"batch_size": 3})
    same = build_config("grpo", flags={"batch_size": 8, "num_generations": 4})
    assert same.batch_size == 8


def test_a_run_s_recorded_config_rebuilds_the_same_config(tmp_path: Path) -> None:
    """config.json as ``rl.base_trainer`` writes it holds every field and is a valid --config."""
    from rl.base_trainer import config_record

    config = build_config(
        "kto",
        flags={"beta": 0.2, "device": "auto", "desirable_weight": 1.5, "undesirable_weight": 1.0},
    )
    record = config_record(config, run_name="kto-1", base_model_dir=tmp_path / "base", device="cpu")
    assert set(record) >= {f.name for f in dataclasses.fields(config)}
    assert (record["run_name"], record["device"], record["beta"]) == ("kto-1", "cpu", 0.2)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(record, default=str), encoding="utf-8")
    rebuilt = build_config(None, path=path)  # the algorithm comes from the record
    resolved = dataclasses.replace(config, run_name="kto-1", device="cpu")
    assert rebuilt == resolved


def test_the_toml_helper_writes_what_toml_reads() -> None:
    values = {"beta": 0.5, "register": False, "lora_target_modules": ("q_proj",), "seed": 3}
    assert tomllib.loads(as_toml(values)) == {**values, "lora_target_modules": ["q_proj"]}


def test_kto_records_the_label_weights_it_trains_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's config.json holds the weights the loss used, not "balance them"."""
    import rl.kto_trainer as kto_trainer
    from rl.kto_config import KTORunConfig
    from tests.rl_samples import MODEL, PROSE, rollout, valid, write_log
    from tools.catalog.judgments import Query

    tile, oil = Query.from_text("porcelain tile"), Query.from_text("fuel oil")
    path = write_log(
        tmp_path / "rollouts.jsonl",
        [
            rollout(tile, 0, valid("porcelain tile"), 0.5),
            rollout(tile, 1, PROSE, 0.0),
            rollout(tile, 2, valid("tile"), 0.0),
            rollout(tile, 3, valid("porcelain floor tile"), 0.8),
            rollout(oil, 0, PROSE, 0.0),
            rollout(oil, 1, PROSE, 0.0),
            rollout(oil, 2, valid("fuel oil"), 0.3),
            rollout(oil, 3, PROSE, 0.0),
        ],
    )
    seen: list[KTORunConfig] = []
    monkeypatch.setattr(kto_trainer, "run_training", lambda config, *a, **k: seen.append(config))
    kto_trainer.train_kto(SimpleNamespace(), path, KTORunConfig(rollout_model=MODEL))
    [config] = seen
    labels = kto_trainer.kto_dataset(kto_trainer.read_rollouts(path, model_id=MODEL), config)[
        "label"
    ]
    desirable = sum(labels)
    assert 0 < desirable < len(labels)
    assert (config.desirable_weight, config.undesirable_weight) == config.label_weights(
        desirable, len(labels) - desirable
    )
    assert max(config.desirable_weight, config.undesirable_weight) > 1.0  # type: ignore[arg-type]


def test_each_algorithm_names_the_file_it_trains_from(
    capsys: pytest.CaptureFixture[str], trained: list[RunConfig]
) -> None:
    for args, wanted in (
        (["--algo", "sft", "--from-trajectories", "r.jsonl"], "--from-sessions"),
        (["--algo", "rwr", "--from-sessions", "s.jsonl"], "--from-trajectories"),
        (["--algo", "rwr"], "--from-trajectories"),
    ):
        with pytest.raises(SystemExit) as exited:
            cli.main(["train", *args])
        assert exited.value.code == 1
        assert wanted in capsys.readouterr().err
    assert trained == []
