"""How the CLI fails: a user's mistake is one line, a bug is one line plus a hint to --debug.

Most cases run ``cli.main`` in process (so a command's internals can be monkeypatched to raise
a bug); one runs the real entry point in a subprocess to pin the exit code and stderr there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SHOPAGENT_HOME", str(home))
    for name in ("SHOPAGENT_DEBUG", "SHOPAGENT_ES_URL", "SHOPAGENT_CHROMA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    return home


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit code and stderr of ``shopagent ARGS`` run through ``cli.main``."""
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    code = exited.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


def inject_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """``data import`` hits a KeyError deep inside, the kind of bug a one-liner would hide."""
    import tools.catalog.datasets

    def broken(*args: object, **kwargs: object) -> None:
        return {}["missing-key"]

    monkeypatch.setattr(tools.catalog.datasets, "import_dataset", broken)


BUGGY_IMPORT = ("data", "import", str(FIXTURES / "generic" / "catalog.jsonl"), "--format", "jsonl")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", "mouse", "--dataset", "absent"), "shopagent index --dataset absent"),
        (("search", "mouse", "--max-price", "cheap"), "--max-price must be a number"),
        (("export", "out.jsonl", "--since", "someday"), "--since 'someday' is not a time"),
        (("export", "out.jsonl", "--format", "xml"), "unknown export format 'xml'"),
        (("eval", "compare", "no-run-a", "no-run-b"), "no eval report for 'no-run-a'"),
        (("eval", "run", "--dataset", "absent"), "dataset 'absent' not found"),
        (("train", "--algo", "ppo", "--from-trajectories", "x.jsonl"), "unknown algorithm"),
        (("train", "--algo", "dpo", "--from-trajectories", "absent.jsonl"), "no such trajectory"),
        (("serve", "--model", "absent"), "no stored model 'absent'"),
        (("data", "fetch", "wands"), "no public download"),
    ],
)
def test_a_user_error_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, err = run_main(capsys, *args)
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err
    assert "--debug" not in err  # a user's mistake is not reported as a bug


def test_a_file_that_is_not_a_run_report_is_a_user_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    picture = tmp_path / "chorus-all-ndcg@10.png"  # what a shell glob over runs/ also matches
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (tmp_path / "empty.json").write_text("{}", encoding="utf-8")
    for ref in (picture, tmp_path / "empty.json"):
        code, err = run_main(capsys, "eval", "compare", str(ref), str(ref))
        assert code == 1
        assert err.count("\n") == 1 and "not an eval report" in err, err
        assert "--debug" not in err


def test_a_damaged_config_file_is_a_user_error(
    capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    clean_env.mkdir(parents=True)
    (clean_env / "config.toml").write_text("data_dir = [\n", encoding="utf-8")
    code, err = run_main(capsys, "search", "mouse")
    assert code == 1
    assert err.count("\n") == 1 and "config.toml: not valid TOML" in err


def test_a_bug_is_one_line_with_the_debug_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_bug(monkeypatch)
    code, err = run_main(capsys, *BUGGY_IMPORT)
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("error: unexpected KeyError: 'missing-key'")
    assert "run with --debug for the traceback" in err
    assert "Traceback" not in err


def test_debug_flag_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_bug(monkeypatch)
    code, err = run_main(capsys, "--debug", *BUGGY_IMPORT)
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "in broken" in err and "KeyError: 'missing-key'" in err
    assert err.rstrip().splitlines()[-1] == "error: unexpected KeyError: 'missing-key'"


def test_debug_environment_variable_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_bug(monkeypatch)
    monkeypatch.setenv("SHOPAGENT_DEBUG", "1")
    code, err = run_main(capsys, *BUGGY_IMPORT)
    assert code == 1
    assert "Traceback (most recent call last)" in err and "in broken" in err


def test_debug_also_traces_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(capsys, "--debug", "search", "mouse", "--dataset", "absent")
    assert code == 1
    assert "Traceback" in err and "IndexMissing" in err
    assert err.rstrip().splitlines()[-1].startswith("error: no lexical index")


def test_a_usage_error_stays_click_s_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(capsys, "search", "mouse", "--size", "0")
    assert code == 2
    assert "--size" in err and "Traceback" not in err


def test_the_installed_entry_point_fails_the_same_way(tmp_path: Path) -> None:
    """Through ``python -m cli`` (what the console script runs): real stderr and exit codes."""
    env = {**os.environ, "SHOPAGENT_HOME": str(tmp_path / "home"), "COLUMNS": "300"}
    for name in ("SHOPAGENT_DEBUG", "SHOPAGENT_ES_URL"):
        env.pop(name, None)
    user_error = subprocess.run(
        [sys.executable, "-m", "cli", "search", "mouse", "--dataset", "absent"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert user_error.returncode == 1
    assert user_error.stderr.count("\n") == 1 and "Traceback" not in user_error.stderr
    buggy = (
        "import tools.catalog.datasets as d, cli\n"
        "d.import_dataset = lambda *a, **k: [][1]\n"
        "cli.main()\n"
    )
    for debug, traced in (("", False), ("1", True)):
        bug = subprocess.run(
            [sys.executable, "-c", buggy, *BUGGY_IMPORT],
            cwd=PROJECT_ROOT,
            env={**env, "SHOPAGENT_DEBUG": debug},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bug.returncode == 1
        assert "unexpected IndexError: list index out of range" in bug.stderr
        assert ("Traceback" in bug.stderr) is traced
        assert ("run with --debug" in bug.stderr) is not traced
