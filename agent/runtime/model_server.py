"""Serve a stored model on loopback, for as long as a ``with`` lasts.

The agent only speaks the OpenAI protocol; this module is what makes "no endpoint configured"
mean "the local model": it starts the server as a subprocess (offline, a free port on
127.0.0.1, the model preloaded), waits until ``/health`` answers, and stops it on exit. The
server is the CTranslate2 one (``agent.runtime.ct2_server``, the default runtime) or
``transformers serve`` (``SHOPAGENT_LLM_RUNTIME=transformers``, and the fallback for a model
CTranslate2 cannot convert or a home its converted copy cannot be written to).
``transformers serve MODEL`` pins the server to MODEL and refuses requests naming anything
else, so the server runs in the directory's parent and is given the bare directory name: the
served model is then called by its store name (``smollm2-135m``), the same name
``SHOPAGENT_LLM_MODEL`` defaults to, and a client pointed at a running ``shopagent serve`` needs
only the base URL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from agent.protocol.chat_template import STOP_STRINGS
from agent.runtime.model_store import ensure_model
from tools.errors import BackendError, BadInput, NotFound
from tools.settings.config import Settings
from tools.settings.llm import LLMSettings

LOOPBACK = "127.0.0.1"


class ServerStartError(BackendError):
    """The server exited or never became healthy; the message ends with its log tail."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    base_url: str
    model: str
    port: int
    pid: int
    log_path: Path
    runtime: str = "transformers"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def server_command(model_name: str, port: int, *, device: str = "cpu") -> list[str]:
    """The ``transformers serve`` command line, run with this interpreter (the project's venv)."""
    return [
        sys.executable,
        "-m",
        "transformers.cli.transformers",
        "serve",
        model_name,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--device",
        device,
        "--log-level",
        "warning",
    ]


def ct2_server_command(model_name: str, port: int, *, threads: int | None = None) -> list[str]:
    """The CTranslate2 server's command line (``agent.runtime.ct2_server``), run from the
    model's parent folder like ``transformers serve``."""
    return [
        sys.executable,
        "-m",
        "agent.runtime.ct2_server",
        model_name,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--threads",
        str(threads or 0),
    ]


def choose_runtime(model_dir: Path, runtime: str, device: str) -> str:
    """``runtime`` when it can serve ``model_dir`` here, else ``transformers``: CTranslate2
    serves on the CPU a model it can convert, into a converted copy that can be written."""
    if runtime != "ctranslate2" or device != "cpu":
        return "transformers"
    from agent.runtime.ct2_model import ConversionError, ensure_converted

    try:
        ensure_converted(model_dir)
    except (ConversionError, OSError):
        return "transformers"
    return "ctranslate2"


@contextmanager
def serve_model_dir(
    model_dir: Path,
    *,
    port: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    startup_timeout_s: float = 300.0,
    log_path: Path | None = None,
    runtime: str = "transformers",
) -> Iterator[RunningServer]:
    """Serve one HF model directory; yields once ``/health`` is OK, stops the server on exit.

    ``threads`` caps the server's CPU threads (``OMP_NUM_THREADS``): on a shared machine one
    thread can be ten times faster than several fighting over busy cores. ``runtime``:
    ``ctranslate2`` or ``transformers`` (``choose_runtime`` says which can serve it).
    """
    model_dir = Path(model_dir).resolve()
    if not (model_dir / "config.json").is_file():
        raise NotFound(f"{model_dir}: not a model directory (no config.json)")
    if "@" in model_dir.name or ":" in model_dir.name:
        # transformers serve reads "name@revision" and "repo:file.gguf".
        raise BadInput(f"{model_dir}: transformers serve cannot load a name with '@' or ':'")
    port = port or free_port()
    with ExitStack() as stack:
        if log_path is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shopagent-")))
            log_path = log_dir / "transformers-serve.log"
        log = stack.enter_context(log_path.open("wb"))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        if runtime == "ctranslate2":
            command = ct2_server_command(model_dir.name, port, threads=threads)
            what = "the CTranslate2 server"
            # it runs in the model's parent folder and imports this project from its root
            root = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        else:
            command = server_command(model_dir.name, port, device=device)
            what = "transformers serve"
        process = subprocess.Popen(
            command,
            cwd=model_dir.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        _RUNNING.add(process)
        stack.callback(_stop, process)
        base = f"http://{LOOPBACK}:{port}"
        wait_healthy(process, f"{base}/health", startup_timeout_s, log_path, what)
        yield RunningServer(f"{base}/v1", model_dir.name, port, process.pid, log_path, runtime)


@contextmanager
def serve(
    settings: Settings,
    model: str | None = None,
    *,
    port: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    startup_timeout_s: float = 300.0,
) -> Iterator[LLMSettings]:
    """Serve a stored model by name; yields ``settings.llm`` pointed at it (``shopagent serve``).

    The served model speaks the project's tools template, so its stop strings come with it
    unless the settings name their own (``()``: none).
    """
    stored = ensure_model(settings, model)  # the embedded default is created on first use
    with serve_model_dir(
        stored.path,
        port=port,
        device=device,
        threads=threads,
        startup_timeout_s=startup_timeout_s,
        runtime=choose_runtime(stored.path, settings.llm.runtime, device),
    ) as server:
        stop = STOP_STRINGS if settings.llm.stop is None else settings.llm.stop
        yield replace(settings.llm, base_url=server.base_url, model=server.model, stop=stop)


@contextmanager
def llm_endpoint(
    settings: Settings, *, device: str = "cpu", threads: int | None = None
) -> Iterator[LLMSettings]:
    """The configured endpoint as is, or, with no ``base_url``, a local server for the run.

    ``shopagent chat`` and the eval suite wrap their run in this.
    """
    if not settings.llm.is_local:
        yield settings.llm
        return
    with serve(settings, device=device, threads=threads) as served:
        yield served


def wait_healthy(
    process: subprocess.Popen[bytes], url: str, timeout_s: float, log_path: Path, what: str
) -> None:
    """Return once ``url`` answers 200; ``ServerStartError`` (naming ``what``, with the log's
    tail) when the process exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"{what} exited with code {process.returncode}:\n{_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise ServerStartError(f"{what} not healthy after {timeout_s:.0f}s:\n{_tail(log_path)}")


#: How long the server gets to exit on SIGTERM. It holds nothing worth saving, and a server
#: still generating for a cancelled turn would hold a shopper's Ctrl-C for as long as uvicorn's
#: graceful shutdown waits on that request (15 s and more), so it is then killed.
STOP_GRACE_S = 1.0


#: The servers this process started and has not stopped yet (for ``kill_running_servers``).
_RUNNING: set[subprocess.Popen[bytes]] = set()


def kill_running_servers() -> None:
    """Kill every model server this process started, now: for an exit that cannot wait for
    the usual shutdown (Ctrl-C in the middle of a chat turn). Safe from a signal handler."""
    for process in list(_RUNNING):
        with contextlib.suppress(OSError):
            process.kill()


def _stop(process: subprocess.Popen[bytes]) -> None:
    _RUNNING.discard(process)
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _tail(log_path: Path, lines: int = 20) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])
