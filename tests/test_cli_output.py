"""What the commands print where a person is not looking at a wide terminal, and outside make.

- Eval tables through a pipe or in 80 columns: every metric name and number whole.
- ``eval run --json`` and ``search --json``: one JSON document on stdout, nothing else there.
- A dataset indexed from ``SHOPAGENT_DATA_DIR`` (what ``make chat`` sets) is found later by a
  command run with no environment at all, in the default home; no library prints a warning.
- The chat says, when the shopper leaves, that a background concept build goes on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from agent.terminal.chat_loop import ChatLoop
from evals.report import REPORT_HEADERS, terminal_table
from tools.search.chroma_build_state import BuildStatus, new_progress
from tools.settings.config import (
    DATA_DIR_RECORD,
    Settings,
    load_settings,
    recorded_data_dir,
    remember_data_dir,
)
from tools.settings.environment import PROCESS_DEFAULTS, apply_process_defaults

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: A Home Depot folder in miniature: the built-in layout ``SHOPAGENT_DATA_DIR`` points into.
PRODUCTS = [
    ("1", "Logitech Wireless Mouse M185"),
    ("2", "Razer Gaming Mouse DeathAdder"),
    ("3", "Logitech USB Keyboard K120"),
    ("4", "Mouse Pad Extended"),
    ("5", "HDMI Cable 6 ft"),
    ("6", "USB C Hub 7 in 1"),
]
#: Five queries with a positive judgment, all in Home Depot's ``train`` split (by their hash).
JUDGMENTS = [
    ("1", "wireless mouse", "3"),
    ("2", "wireless mouse", "1.33"),
    ("2", "cordless mouse", "3"),
    ("3", "usb keyboard", "2.67"),
    ("4", "mouse pad", "3"),
    ("5", "hdmi cable", "2.33"),
]


def write_homedepot(data_dir: Path) -> None:
    folder = data_dir / "homedepot"
    folder.mkdir(parents=True)
    rows = ["product_uid,product_title", *(f"{uid},{title}" for uid, title in PRODUCTS)]
    (folder / "products.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    titles = dict(PRODUCTS)
    judged = ["id,product_uid,product_title,search_term,relevance"] + [
        f"{n},{uid},{titles[uid]},{query},{relevance}"
        for n, (uid, query, relevance) in enumerate(JUDGMENTS, start=1)
    ]
    (folder / "judgments.csv").write_text("\n".join(judged) + "\n", encoding="utf-8")


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """A fresh shell's environment: HOME and PATH, nothing of shopagent's, make's or HF's."""
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **extra}


def shopagent(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,  # stdout is a pipe, as in `shopagent eval run ... | cat`
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME whose default data home indexed ``homedepot`` from ``SHOPAGENT_DATA_DIR``."""
    root = tmp_path_factory.mktemp("outside-make")
    write_homedepot(root / "data")
    home = root / "user"
    home.mkdir()
    built = shopagent(
        bare_env(home, SHOPAGENT_DATA_DIR=str(root / "data")),
        "index", "--dataset", "homedepot", "--no-concepts",
        cwd=root,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "tantivy: 6 products" in built.stdout
    return home


def test_a_dataset_indexed_under_make_is_found_with_no_environment(indexed: Path) -> None:
    result = shopagent(
        bare_env(indexed, COLUMNS="80"),
        "eval", "run", "--dataset", "homedepot", "--split", "train", "--strategy", "raw",
        "--runs", str(indexed / "runs"),
        cwd=indexed,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no third-party warning, no note
    for name in ("ndcg@10", "ndcg@100", "recall@10", "recall@100", "mrr", "p95 ms"):
        assert name in result.stdout, name
    assert "…" not in result.stdout
    assert re.search(r"│\s+\d\.\d{4} │", result.stdout)  # four decimals, whole
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    report = json.loads((indexed / "runs" / "homedepot-train-raw" / "report.json").read_text())
    assert len(report["per_query"]) == 5  # the judgments were found too


def test_eval_run_json_is_the_report_alone(indexed: Path) -> None:
    result = shopagent(
        bare_env(indexed),
        "eval", "run", "--dataset", "homedepot", "--split", "train", "--limit", "3",
        "--runs", str(indexed / "runs"), "--json",
        cwd=indexed,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # the whole of stdout is one document
    assert report["strategy"] == "raw" and report["limit"] == 3
    assert set(report["means"]) >= {"ndcg@10", "recall@100", "mrr"}
    assert len(report["per_query"]) == 3
    assert "run and reports in" in result.stderr


def test_search_json_is_the_results_alone(indexed: Path) -> None:
    result = shopagent(
        bare_env(indexed),
        "search", "wireless mouse", "--dataset", "homedepot", "--size", "2", "--json",
        cwd=indexed,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["query"] == "wireless mouse" and found["tool"] == "lexical"
    assert [hit["rank"] for hit in found["hits"]] == [1, 2]
    assert found["hits"][0]["product"]["title"] == "Logitech Wireless Mouse M185"
    nothing = shopagent(
        bare_env(indexed), "search", "zzzz", "--dataset", "homedepot", "--json", cwd=indexed
    )
    assert json.loads(nothing.stdout)["hits"] == []


# -- the pieces, in process ------------------------------------------------------------------

ROWS = [
    ["raw", "—", "20", "0.6424", "0.7134", "0.4776", "0.8535", "0.7523", "n/a", "1.8", "2.7"],
    ["policy", "smollm2-135m", "20", "0.6512", "0.7201", "0.4801", "0.8602", "0.7611",
     "100.0% (+0.0% repaired)", "96.4", "131.0"],
]  # fmt: skip


@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_a_metric_table_never_cuts_a_cell(width: int) -> None:
    table = terminal_table("", REPORT_HEADERS, ROWS, text_columns=("strategy", "model"))
    for terminal in (False, True):
        out = StringIO()
        Console(file=out, width=width, force_terminal=terminal, color_system=None).print(table)
        text = out.getvalue()
        assert "…" not in text
        for cell in [*REPORT_HEADERS, *ROWS[0], *ROWS[1]]:
            assert cell in text, (width, cell)
        if width >= 60:  # the widest column with the repeated first one fits
            assert max(len(line) for line in text.splitlines()) <= width


def test_a_table_that_fits_is_one_table() -> None:
    table = terminal_table("", REPORT_HEADERS, ROWS, text_columns=("strategy", "model"))
    out = StringIO()
    Console(file=out, width=200, color_system=None).print(table)
    assert out.getvalue().count("strategy") == 1


def test_the_data_folder_is_remembered_below_the_environment_and_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SHOPAGENT_HOME", str(home))
    monkeypatch.delenv("SHOPAGENT_DATA_DIR", raising=False)
    assert load_settings().data_dir is None
    assert remember_data_dir(Settings(home=home, data_dir=data))
    assert not remember_data_dir(Settings(home=home, data_dir=data))  # already recorded
    assert load_settings().data_dir == data.resolve()
    monkeypatch.setenv("SHOPAGENT_DATA_DIR", str(tmp_path / "env"))
    assert load_settings().data_dir == tmp_path / "env"
    monkeypatch.delenv("SHOPAGENT_DATA_DIR")
    (home / "config.toml").write_text(f'data_dir = "{tmp_path / "conf"}"\n', encoding="utf-8")
    assert load_settings().data_dir == tmp_path / "conf"
    (home / DATA_DIR_RECORD).write_text("{not json", encoding="utf-8")
    assert recorded_data_dir(home) is None  # a damaged record only loses the fallback


def test_process_defaults_never_override_the_user() -> None:
    environ = {"HF_HUB_OFFLINE": "0"}
    apply_process_defaults(environ)
    assert environ == {**PROCESS_DEFAULTS, "HF_HUB_OFFLINE": "0"}


def building(done: int, total: int) -> BuildStatus:
    return BuildStatus("building", new_progress(total=total, fingerprint="f", done=done))


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (building(420, 1000), "still building in the background (42%); it goes on after you quit"),
        (BuildStatus("starting"), "still building in the background (starting)"),
        (BuildStatus("ready"), None),
        (None, None),
    ],
)
def test_leaving_the_chat_says_the_concept_build_goes_on(
    status: BuildStatus | None, said: str | None
) -> None:
    session = SimpleNamespace(conversation_id="c1")
    for lines in (["/quit", "never read"], []):  # /quit, and the end of input (Ctrl-D)
        out = StringIO()
        loop = ChatLoop(
            session,  # type: ignore[arg-type]
            Console(file=out, width=200, color_system=None),
            concept_build=lambda: status,
        )
        loop.run(iter(lines))
        text = " ".join(out.getvalue().split())
        if said is None:
            assert "building" not in text
        else:
            assert said in text
