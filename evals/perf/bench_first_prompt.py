"""A fresh data home to the chat's first prompt: the three commands of ``make chat``, timed.

``make chat`` runs ``index --if-missing --background`` (the lexical index now, the concept
index in a detached build), ``model init --if-missing`` (dequantize, merge the shipped policy,
convert for CTranslate2) and ``chat``; the shopper waits for all three. This runs them on a new
temporary ``SHOPAGENT_HOME`` (the installed venv and ``SHOPAGENT_DATA_DIR`` as they are) and
times each, the last to the ``you>`` prompt in a real pseudo-terminal. The detached concept
build is stopped and the home removed at the end.

    python -m evals.perf.bench_first_prompt [--dataset chorus]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect

SHOPAGENT = Path(sys.executable).with_name("shopagent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="chorus")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="shopagent-fresh-"))
    env = dict(os.environ, SHOPAGENT_HOME=str(home), COLUMNS="120")
    load = os.getloadavg()[0]
    try:
        started = time.perf_counter()
        steps = {}
        for name, argv in (
            ("index", ["index", "--dataset", args.dataset, "--if-missing", "--background"]),
            ("model init", ["model", "init", "--if-missing"]),
        ):
            begun = time.perf_counter()
            subprocess.run([str(SHOPAGENT), *argv], env=env, check=True, capture_output=True)
            steps[name] = time.perf_counter() - begun
        begun = time.perf_counter()
        chat = pexpect.spawn(
            str(SHOPAGENT),
            ["chat", "--dataset", args.dataset],
            env=env,
            encoding="utf-8",
            timeout=180,
        )
        chat.expect("you>")
        steps["chat to its prompt"] = time.perf_counter() - begun
        total = time.perf_counter() - started
        chat.sendline("/quit")
        chat.expect(pexpect.EOF)
    finally:
        _stop_builds(home)
        shutil.rmtree(home, ignore_errors=True)
    figures = {k: round(v, 1) for k, v in steps.items()}
    print(json.dumps({**figures, "total": round(total, 1), "load": [load, os.getloadavg()[0]]}))


def _stop_builds(home: Path) -> None:
    """The detached concept build of the temporary home (it would run on for minutes)."""
    found = subprocess.run(["pgrep", "-f", "tools.concept_build"], capture_output=True, text=True)
    for pid in found.stdout.split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"SHOPAGENT_HOME={home}".encode() in environ:
            os.kill(int(pid), signal.SIGTERM)


if __name__ == "__main__":
    main()
