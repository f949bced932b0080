"""CPU runtimes for the query writer, side by side: the same model, the same real prompts.

Run: ``python -m evals.perf.bench_runtimes [--queries 24] [--rounds 2] [--threads 2]
[--runtimes transformers,ctranslate2,llamacpp-q8_0,llamacpp-f16,ortgenai-int4,ortgenai-int8]
[--work-dir /tmp/shopagent-bench-runtimes] [--json out.json]``.

The prompts are the writer's real ones: the ``expand`` prompt the chat sends
(``styled_prompt(SEARCH_PRODUCTS, "expand", text, toolbox, fallback=True)``) for the first
``--queries`` Home Depot dev queries, generated greedily (temperature 0) for at most
``--max-tokens`` (64) tokens. Every runtime serves the stored model (the shipped policy merged
into its base):

- ``transformers``: ``transformers serve`` (PyTorch float32), OpenAI chat completions over HTTP;
- ``ctranslate2``: the project's CTranslate2 int8 server (``agent.runtime.ct2_server``), same;
- ``llamacpp-q8_0`` / ``llamacpp-f16``: ``llama-cpp-python``'s server on a GGUF converted from
  the model directory (``evals.perf.runtime_exports.export_gguf``), from its own venv. Its chat
  endpoint would render the prompt with its own chat format, so it is sent the prompt text the
  model directory's template renders (``agent.runtime.rendering.render_prompt``, what the other
  servers render) on ``/v1/completions``, and its reply text is parsed by the same rules.
  llama-cpp-python keeps the KV cache of the previous request and reuses its longest common
  prefix with the next prompt (the expand prompts share their system prompt and example), which
  no other server here does: its calls are timed so (as the chat would get them), its first
  token cold (an untimed unrelated prompt first) and, in a note, warm;
- ``ortgenai-int4`` / ``ortgenai-int8``: ONNX Runtime GenAI on its model builder's CPU export,
  from its own venv. It has no OpenAI server, so it is measured in process
  (``evals/perf/ortgenai_worker.py``, no HTTP) on the token ids of the same rendered prompts.

The servers get the same client (``agent.runtime.llm_client``: ``openai_client``,
``complete_with_tools`` for chat, the same client's ``completions`` for llama.cpp) and the same
thread count (``--threads``: torch's ``OMP_NUM_THREADS``, CTranslate2's intra threads,
llama.cpp's ``n_threads``/``n_threads_batch``, ORT's ``intra_op_num_threads``).

Figures, each the best of ``--rounds`` (the rounds visit the runtimes in turn, so a busy spell
on this shared machine hits all of them alike):

- first token: a streamed request capped at 1 new token, until its first content chunk
  (prefill + one step + the protocol; a full streamed reply would not do: the chat servers hold
  a tool call's text back until the call is complete). Mean over the prompts.
- tokens/s at batch 1: completion tokens over wall time of one non-streamed call at a time;
  the whole call's mean and p50 come from the same calls.
- tokens/s at batch 8: 8 concurrent requests per chunk of 8 prompts (one batch of 8 for ORT);
  a server that queues requests shows about its batch 1 speed here.
- peak memory: the server process's ``VmHWM`` (ORT: its worker's), read after the last round.
- same: replies whose parsed calls (name, arguments, class, prose) equal transformers serve's
  for the same prompt, out of N.
- install: what setting the runtime up took (``--venvs``/install-times.json records the venvs'
  installs); convert: making its converted copy (recorded when it was made).
Completion tokens count the end token for every runtime (llama.cpp's count gets it added).

The venvs (``--venvs``, default /work/bench-venvs; neither runtime is a project dependency),
with their wall times recorded in ``install-times.json`` there
(``{"llamacpp": {"time": "10:12", "what": "..."}, "ortgenai": {...}}``)::

    python3 -m venv llamacpp && llamacpp/bin/pip install 'llama-cpp-python[server]==0.3.36'
    python3 -m venv ortgenai && ortgenai/bin/pip install torch==2.13.0 transformers==5.25.0 \\
        onnx onnx_ir onnxruntime-genai

A runtime whose venv is missing gets a row saying so. The converted copies (GGUF q8_0/f16, the
ORT GenAI exports) are made on first use under ``--work-dir`` (``runtime_exports``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.protocol.chat_template import STOP_STRINGS
from agent.protocol.tool_calls import ToolCallParse, parse_tool_calls
from agent.protocol.tool_schemas import SEARCH_PRODUCTS
from agent.protocol.writer_prompts import Prompt, styled_prompt
from agent.runtime.llm_client import chat_completion_kwargs, complete_with_tools, openai_client
from agent.runtime.model_server import (
    LOOPBACK,
    ServerStartError,
    free_port,
    serve_model_dir,
    wait_healthy,
)
from agent.runtime.model_store import bundled_gguf, ensure_model
from agent.runtime.rendering import render_prompt
from evals.perf import runtime_exports
from evals.perf.timing import print_table
from tools.metrics.percentile import percentile
from tools.settings.config import load_settings
from tools.settings.llm import LLMSettings

BATCH = 8
DATASET = "homedepot"
SPLIT = "dev"
REFERENCE = "transformers"
RUNTIMES = (
    "transformers",
    "ctranslate2",
    "llamacpp-q8_0",
    "llamacpp-f16",
    "ortgenai-int4",
    "ortgenai-int8",
)
ALIASES = {"llamacpp": "llamacpp-q8_0", "ortgenai": "ortgenai-int4"}
DEFAULT_WORK_DIR = Path("/tmp/shopagent-bench-runtimes")
DEFAULT_VENVS = Path("/work/bench-venvs")
INSTALL_TIMES = "install-times.json"
PROJECT_INSTALL = "project venv"


# --- the prompts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One writer prompt: the conversation, and the text and ids the template renders."""

    query: str
    prompt: Prompt
    text: str
    ids: tuple[int, ...]


def writer_cases(model_dir: Path, count: int) -> list[Case]:
    """The expand prompts of the first ``count`` Home Depot dev queries, rendered."""
    from transformers import AutoTokenizer

    from evals.suite import load_judgments
    from tools.catalog.splits import select_split
    from tools.search_tools import SearchToolbox

    settings = load_settings()
    judgments = select_split(load_judgments(settings, DATASET), DATASET, SPLIT)
    texts = [query.text for query in judgments.queries.values()][:count]
    toolbox = SearchToolbox(settings, DATASET)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    cases = []
    for text in texts:
        prompt = styled_prompt(SEARCH_PRODUCTS, "expand", text, toolbox, fallback=True)
        rendered = render_prompt(tokenizer, prompt.messages, prompt.tools)
        ids = tokenizer.encode(rendered, add_special_tokens=False)
        cases.append(Case(text, prompt, rendered, tuple(ids)))
    return cases


def canonical(parsed: ToolCallParse) -> str:
    """A reply as the agent reads it: its calls, their class and the prose around them."""
    calls = [[call.name, call.arguments] for call in parsed.calls]
    body = {"calls": calls, "class": parsed.parse_class.value, "content": parsed.content}
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


# --- the runtimes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    seconds: float
    tokens: int
    text: str  # canonical()


class Runtime:
    """One runtime, started: a first token, a call, a batch, its peak memory."""

    name: str
    label: str
    api: str
    install: str
    convert: str
    version: str = ""
    install_detail: str = ""

    def first(self, case: Case) -> float:
        raise NotImplementedError

    def first_warm(self, case: Case) -> float | None:
        """The first token with a cache of earlier prompts (None: this runtime keeps none)."""
        return None

    def call(self, case: Case) -> Reply:
        raise NotImplementedError

    def batch(self, cases: Sequence[Case]) -> tuple[float, list[Reply]]:
        """8 concurrent calls (servers): the chunk's wall time and its replies."""
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(cases)) as pool:
            replies = list(pool.map(self.call, cases))
        return time.perf_counter() - started, replies

    def peak_kb(self) -> int:
        raise NotImplementedError


def vmhwm_kb(pid: int) -> int:
    """A process's peak resident memory (``VmHWM`` in ``/proc/PID/status``), kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class ChatServer(Runtime):
    """An OpenAI chat-completions server (transformers serve, CTranslate2)."""

    api = "chat, HTTP"

    def __init__(self, name: str, label: str, llm: LLMSettings, pid: int) -> None:
        self.name, self.label, self.llm, self.pid = name, label, llm, pid
        self.client = openai_client(llm)
        self.install = PROJECT_INSTALL
        self.convert = "-"

    def first(self, case: Case) -> float:
        kwargs = {**chat_completion_kwargs(self.llm), "max_tokens": 1}
        started = time.perf_counter()
        stream = self.client.chat.completions.create(
            messages=[dict(m) for m in case.prompt.messages],  # type: ignore[misc]
            tools=[dict(t) for t in case.prompt.tools],  # type: ignore[misc]
            stream=True,
            **kwargs,
        )
        return _first_chunk(stream, started)

    def call(self, case: Case) -> Reply:
        started = time.perf_counter()
        response, parsed = complete_with_tools(
            self.llm, case.prompt.messages, tools=case.prompt.tools, client=self.client
        )
        seconds = time.perf_counter() - started
        tokens = response.usage.completion_tokens if response.usage else 0
        return Reply(seconds, tokens, canonical(parsed))

    def peak_kb(self) -> int:
        return vmhwm_kb(self.pid)


def _first_chunk(stream: Any, started: float) -> float:
    """Seconds from ``started`` to the first chunk carrying generated text (or the end)."""
    first = None
    with stream:
        for chunk in stream:
            choice = chunk.choices[0] if chunk.choices else None
            if choice is None or first is not None:
                continue
            delta = getattr(choice, "delta", None)
            text = getattr(choice, "text", None)  # completions
            if text or (delta is not None and (delta.content or delta.tool_calls)):
                first = time.perf_counter() - started
    return first if first is not None else time.perf_counter() - started


class RawCompletionServer(Runtime):
    """llama-cpp-python's server, sent the rendered prompt on ``/v1/completions``."""

    api = "raw completions, HTTP"

    def __init__(self, name: str, label: str, llm: LLMSettings, pid: int) -> None:
        self.name, self.label, self.llm, self.pid = name, label, llm, pid
        self.client = openai_client(llm)
        self.install = "-"
        self.convert = "-"

    def _create(self, case: Case, max_tokens: int, stream: bool) -> Any:
        return self.client.completions.create(
            model=self.llm.model,
            prompt=case.text,
            max_tokens=max_tokens,
            temperature=self.llm.temperature,
            stop=list(self.llm.stop or ()) or None,
            stream=stream,
        )

    def first(self, case: Case) -> float:
        """Cold, like the other servers: a short unrelated prompt first (untimed) leaves the
        server no prefix of ``case`` to reuse."""
        self.client.completions.create(
            model=self.llm.model, prompt="Hello", max_tokens=1, temperature=0.0
        )
        return self.first_warm(case)

    def first_warm(self, case: Case) -> float:
        """Right after the previous prompt, whose shared prefix the server reuses."""
        started = time.perf_counter()
        return _first_chunk(self._create(case, 1, stream=True), started)

    def call(self, case: Case) -> Reply:
        started = time.perf_counter()
        response = self._create(case, self.llm.max_tokens, stream=False)
        seconds = time.perf_counter() - started
        choice = response.choices[0]
        text = choice.text or ""
        tokens = response.usage.completion_tokens if response.usage else 0
        # llama.cpp does not count the end token the other runtimes count; a stop string
        # (also "stop") is counted the same way, one token too many, in a rare reply.
        tokens += 1 if choice.finish_reason == "stop" else 0
        return Reply(seconds, tokens, canonical(parse_tool_calls(text, case.prompt.tools)))

    def peak_kb(self) -> int:
        return vmhwm_kb(self.pid)


class OrtWorker(Runtime):
    """ONNX Runtime GenAI in its worker process (``ortgenai_worker.py``), in process there."""

    api = "in process"

    def __init__(
        self, name: str, label: str, process: subprocess.Popen[str], max_tokens: int, decode: Any
    ) -> None:
        self.name, self.label, self.process = name, label, process
        self.max_tokens, self.decode = max_tokens, decode
        self.install = "-"
        self.convert = "-"

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the ORT GenAI worker exited")
        return json.loads(line)

    def _reply(self, case: Case, seconds: float, ids: list[int]) -> Reply:
        text = self.decode(ids)
        return Reply(seconds, len(ids), canonical(parse_tool_calls(text, case.prompt.tools)))

    def first(self, case: Case) -> float:
        return float(self._ask({"op": "first", "ids": list(case.ids)})["seconds"])

    def call(self, case: Case) -> Reply:
        answer = self._ask({"op": "call", "ids": list(case.ids), "max_new_tokens": self.max_tokens})
        return self._reply(case, float(answer["seconds"]), answer["ids"])

    def batch(self, cases: Sequence[Case]) -> tuple[float, list[Reply]]:
        prompts = [list(case.ids) for case in cases]
        answer = self._ask({"op": "batch", "prompts": prompts, "max_new_tokens": self.max_tokens})
        seconds = float(answer["seconds"])
        replies = [
            self._reply(c, seconds, ids) for c, ids in zip(cases, answer["ids"], strict=True)
        ]
        return seconds, replies

    def peak_kb(self) -> int:
        return int(self._ask({"op": "memory"})["vmhwm_kb"])


class Unavailable(Exception):
    """A runtime that cannot run here; its row says why."""


@dataclass(slots=True)
class Setup:
    """What every runtime starts from."""

    model_dir: Path
    work_dir: Path
    venvs: Path
    threads: int
    max_tokens: int
    stack: ExitStack
    installs: dict[str, tuple[str, str]] = field(default_factory=dict)

    def llm(self, base_url: str, model: str) -> LLMSettings:
        return replace(
            load_settings().llm,
            base_url=base_url,
            model=model,
            temperature=0.0,
            max_tokens=self.max_tokens,
            stop=STOP_STRINGS,
            max_retries=0,
            timeout_s=600.0,
        )


def _seconds(export: runtime_exports.Export) -> str:
    return f"{export.seconds:.1f} s" + ("" if export.made_now else " (recorded)")


def start_transformers(setup: Setup) -> Runtime:
    log = setup.work_dir / "transformers-serve.log"
    server = setup.stack.enter_context(
        serve_model_dir(
            setup.model_dir, threads=setup.threads, runtime="transformers", log_path=log
        )
    )
    llm = setup.llm(server.base_url, server.model)
    runtime = ChatServer("transformers", "transformers serve fp32", llm, server.pid)
    runtime.version = f"{_version('transformers')}, {_version('torch')}"
    runtime.convert = "none (safetensors)"
    return runtime


def start_ctranslate2(setup: Setup) -> Runtime:
    from agent.runtime.ct2_model import ensure_converted

    ensure_converted(setup.model_dir)  # what the server loads
    timed = runtime_exports.export_ct2(setup.model_dir, setup.work_dir)
    log = setup.work_dir / "ct2-server.log"
    server = setup.stack.enter_context(
        serve_model_dir(setup.model_dir, threads=setup.threads, runtime="ctranslate2", log_path=log)
    )
    llm = setup.llm(server.base_url, server.model)
    runtime = ChatServer("ctranslate2", "CTranslate2 int8", llm, server.pid)
    runtime.version = _version("ctranslate2")
    runtime.convert = _seconds(timed)
    return runtime


def start_llamacpp(setup: Setup, qtype: str) -> Runtime:
    python = setup.venvs / "llamacpp" / "bin" / "python"
    if not python.is_file():
        raise Unavailable(f"no llama-cpp-python venv at {python.parent.parent}")
    probe = subprocess.run(
        [str(python), "-c", "import llama_cpp.server.app, llama_cpp; print(llama_cpp.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise Unavailable(
            "llama-cpp-python's server extras are missing (pip install 'llama-cpp-python[server]')"
        )
    version = probe.stdout.strip()
    label = f"llama.cpp {qtype}"
    try:
        export = runtime_exports.export_gguf(setup.model_dir, setup.work_dir, qtype)
        model_path, convert = export.path, _seconds(export)
    except (ValueError, OSError, KeyError) as error:  # fall back: speed only
        model_path, convert = bundled_gguf(), f"failed ({error}); BASE Q4_1 GGUF used"
        label = "llama.cpp UNTRAINED BASE Q4_1 (speed only)"
    port = free_port()
    log_path = setup.work_dir / f"llamacpp-{qtype}.log"
    log = setup.stack.enter_context(log_path.open("wb"))
    command = [
        *(str(python), "-m", "llama_cpp.server", "--model", str(model_path)),
        *("--model_alias", setup.model_dir.name, "--host", LOOPBACK, "--port", str(port)),
        *("--n_threads", str(setup.threads), "--n_threads_batch", str(setup.threads)),
        *("--n_ctx", "2048", "--chat_format", "chatml", "--verbose", "False"),
    ]
    process = _popen(setup, command, log)
    base = f"http://{LOOPBACK}:{port}"
    _wait_ready(process, f"{base}/v1/models", log_path)
    llm = setup.llm(f"{base}/v1", setup.model_dir.name)
    runtime = RawCompletionServer(f"llamacpp-{qtype}", label, llm, process.pid)
    runtime.install, runtime.install_detail = setup.installs.get("llamacpp", ("?", "not recorded"))
    runtime.convert = convert
    runtime.version = f"llama-cpp-python {version}"
    return runtime


def start_ortgenai(setup: Setup, precision: str) -> Runtime:
    python = setup.venvs / "ortgenai" / "bin" / "python"
    if not python.is_file():
        raise Unavailable(f"no onnxruntime-genai venv at {python.parent.parent}")
    try:
        export = runtime_exports.export_ortgenai(setup.model_dir, setup.work_dir, python, precision)
    except RuntimeError as error:
        raise Unavailable(str(error)) from None
    runtime_exports.set_ortgenai_threads(export.path, setup.threads)
    worker = Path(__file__).with_name("ortgenai_worker.py")
    log = setup.stack.enter_context((setup.work_dir / f"ortgenai-{precision}.log").open("w"))
    process = subprocess.Popen(
        [str(python), str(worker), str(export.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": str(setup.threads)},
    )
    setup.stack.callback(_end, process)
    assert process.stdout is not None
    hello = json.loads(process.stdout.readline() or "{}")
    if not hello.get("ready"):
        raise Unavailable(f"the ORT GenAI worker did not start (see {log.name})")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(setup.model_dir)

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=True)

    label = f"ORT GenAI {precision}"
    runtime = OrtWorker(f"ortgenai-{precision}", label, process, setup.max_tokens, decode)
    runtime.version = f"onnxruntime-genai {hello.get('version')}"
    runtime.install, runtime.install_detail = setup.installs.get("ortgenai", ("?", "not recorded"))
    runtime.convert = _seconds(export)
    return runtime


STARTERS: dict[str, Callable[[Setup], Runtime]] = {
    "transformers": start_transformers,
    "ctranslate2": start_ctranslate2,
    "llamacpp-q8_0": lambda setup: start_llamacpp(setup, "q8_0"),
    "llamacpp-f16": lambda setup: start_llamacpp(setup, "f16"),
    "ortgenai-int4": lambda setup: start_ortgenai(setup, "int4"),
    "ortgenai-int8": lambda setup: start_ortgenai(setup, "int8"),
}


def _popen(setup: Setup, command: list[str], log: Any) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    setup.stack.callback(_end, process)
    return process


def _end(process: subprocess.Popen[Any]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float = 300.0
) -> None:
    try:
        wait_healthy(process, url, timeout_s, log_path, "the server")
    except ServerStartError as error:
        raise Unavailable(str(error).replace("\n", " | ")) from None


# --- measuring -----------------------------------------------------------------------------


@dataclass(slots=True)
class Round:
    first_s: list[float]
    calls: list[Reply]
    batch_seconds: float
    batch_tokens: int
    first_warm_s: list[float] = field(default_factory=list)

    @property
    def first_ms(self) -> float:
        return statistics.fmean(self.first_s) * 1000

    @property
    def first_warm_ms(self) -> float:
        return statistics.fmean(self.first_warm_s) * 1000 if self.first_warm_s else float("nan")

    @property
    def tps1(self) -> float:
        seconds = sum(r.seconds for r in self.calls)
        return sum(r.tokens for r in self.calls) / seconds if seconds else 0.0

    @property
    def tps8(self) -> float:
        return self.batch_tokens / self.batch_seconds if self.batch_seconds else 0.0

    @property
    def call_mean_ms(self) -> float:
        return statistics.fmean(r.seconds for r in self.calls) * 1000

    @property
    def call_p50_ms(self) -> float:
        return percentile([r.seconds * 1000 for r in self.calls], 50)


def measure(runtime: Runtime, cases: Sequence[Case]) -> Round:
    first = [runtime.first(case) for case in cases]
    warm = [runtime.first_warm(case) for case in cases]
    calls = [runtime.call(case) for case in cases]
    batch_seconds, batch_tokens = 0.0, 0
    for start in range(0, len(cases), BATCH):
        seconds, replies = runtime.batch(cases[start : start + BATCH])
        batch_seconds += seconds
        batch_tokens += sum(r.tokens for r in replies)
    warm_s = [w for w in warm if w is not None]
    return Round(first, calls, batch_seconds, batch_tokens, warm_s)


@dataclass(slots=True)
class Result:
    name: str
    label: str = ""
    api: str = ""
    install: str = ""
    convert: str = ""
    version: str = ""
    install_detail: str = ""
    rounds: list[Round] = field(default_factory=list)
    peak_kb: int = 0
    why_not: str | None = None

    def best(self, figure: Callable[[Round], float], lowest: bool) -> float:
        values = [figure(r) for r in self.rounds]
        return (min if lowest else max)(values) if values else float("nan")

    def figures(self) -> dict[str, float]:
        return {
            "first_token_ms": self.best(lambda r: r.first_ms, lowest=True),
            "first_token_warm_ms": self.best(lambda r: r.first_warm_ms, lowest=True),
            "tokens_per_s_batch1": self.best(lambda r: r.tps1, lowest=False),
            "tokens_per_s_batch8": self.best(lambda r: r.tps8, lowest=False),
            "call_mean_ms": self.best(lambda r: r.call_mean_ms, lowest=True),
            "call_p50_ms": self.best(lambda r: r.call_p50_ms, lowest=True),
            "peak_rss_mb": self.peak_kb / 1024,
        }

    def texts(self) -> list[str]:
        return [r.text for r in self.rounds[0].calls] if self.rounds else []

    def tokens(self) -> int:
        return sum(r.tokens for r in self.rounds[0].calls) if self.rounds else 0


def parse_runtimes(text: str) -> list[str]:
    names = [ALIASES.get(n.strip(), n.strip()) for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in STARTERS]
    if unknown:
        raise SystemExit(f"unknown runtimes {unknown}; choose from {', '.join(RUNTIMES)}")
    return names


def load_installs(venvs: Path) -> dict[str, tuple[str, str]]:
    """``{venv: (wall time, what was installed)}`` from ``install-times.json`` beside the venvs
    (``{"llamacpp": {"time": "10:12", "what": "..."}}``), written when they were made."""
    try:
        found = json.loads((venvs / INSTALL_TIMES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {
        str(name): (str(entry.get("time", "?")), str(entry.get("what", "")))
        for name, entry in found.items()
        if isinstance(entry, dict)
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return package


def _why(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or [""]
    return f"{type(error).__name__}: {lines[0][:200]}"


def start(name: str, setup: Setup, result: Result, warm_up: Case) -> Runtime | None:
    """The runtime started and warmed up (its first request pays one-off setup), or None with
    ``result.why_not`` saying why not: one runtime that cannot run leaves a row, not a crash."""
    try:
        runtime = STARTERS[name](setup)
        runtime.first(warm_up)
        runtime.call(warm_up)
    except Exception as error:
        result.why_not = _why(error)
        return None
    result.label, result.api = runtime.label, runtime.api
    result.install, result.convert = runtime.install, runtime.convert
    result.version, result.install_detail = runtime.version, runtime.install_detail
    return runtime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), type=parse_runtimes)
    parser.add_argument("--model", help="stored model name (default: settings.llm.model)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--venvs", type=Path, default=DEFAULT_VENVS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    settings = load_settings({"llm": {"model": args.model}})
    stored = ensure_model(settings)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    cases = writer_cases(stored.path, args.queries)
    results: dict[str, Result] = {}
    with ExitStack() as stack:
        setup = Setup(
            stored.path,
            args.work_dir,
            args.venvs,
            args.threads,
            args.max_tokens,
            stack,
            load_installs(args.venvs),
        )
        runtimes: list[Runtime] = []
        for name in args.runtimes:
            result = results[name] = Result(name)
            runtime = start(name, setup, result, cases[0])
            if runtime is None:
                print(f"{name}: not measured ({result.why_not})", flush=True)
                continue
            runtimes.append(runtime)
            print(f"{name}: started ({runtime.label})", flush=True)
        for number in range(args.rounds):
            for runtime in list(runtimes):
                began = time.perf_counter()
                try:
                    found = measure(runtime, cases)
                except Exception as error:  # a runtime that breaks mid-run leaves its row
                    results[runtime.name].why_not = f"failed in round {number + 1}: {_why(error)}"
                    runtimes.remove(runtime)
                    continue
                results[runtime.name].rounds.append(found)
                print(
                    f"round {number + 1}: {runtime.name}: {found.tps1:.1f} tok/s at batch 1, "
                    f"{found.tps8:.1f} at batch 8, first token {found.first_ms:.0f} ms "
                    f"({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
        for runtime in runtimes:
            results[runtime.name].peak_kb = runtime.peak_kb()
    load_after = os.getloadavg()
    report(args, stored.name, cases, results, load_before, load_after)


def report(
    args: argparse.Namespace,
    model: str,
    cases: Sequence[Case],
    results: dict[str, Result],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    reference = results.get(REFERENCE)
    reference_texts = reference.texts() if reference and reference.rounds else []
    rows = []
    for name in args.runtimes:
        result = results[name]
        if result.why_not is not None or not result.rounds:
            rows.append(_empty_row(name, result.why_not or "not measured"))
            continue
        figures = result.figures()
        texts = result.texts()
        same = (
            f"{sum(a == b for a, b in zip(texts, reference_texts, strict=True))}/{len(texts)}"
            if reference_texts
            else "-"
        )
        rows.append(
            {
                "runtime": result.label,
                "API": result.api,
                "tokens": result.tokens(),
                "1st token ms": f"{figures['first_token_ms']:.0f}",
                "tok/s b1": f"{figures['tokens_per_s_batch1']:.1f}",
                "tok/s b8": f"{figures['tokens_per_s_batch8']:.1f}",
                "call mean ms": f"{figures['call_mean_ms']:.0f}",
                "call p50 ms": f"{figures['call_p50_ms']:.0f}",
                "peak RSS MB": f"{figures['peak_rss_mb']:.0f}",
                "install": result.install,
                "convert": result.convert,
                "same as TF": same,
            }
        )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} threads"
    load = f"load {load_before[0]:.2f} -> {load_after[0]:.2f}"
    prompt_tokens = statistics.fmean(len(c.ids) for c in cases) if cases else 0
    print_table(
        f"{model}: {len(cases)} Home Depot dev expand prompts (~{prompt_tokens:.0f} tokens), "
        f"greedy, <= {args.max_tokens} new tokens, best of {args.rounds} ({machine}, {load})",
        rows,
    )
    for name in args.runtimes:
        result = results[name]
        if result.why_not is not None or not result.rounds:
            print(f"  {name}: not measured: {result.why_not or 'no round finished'}")
            continue
        install = f"; install: {result.install_detail}" if result.install_detail else ""
        warm = result.figures()["first_token_warm_ms"]
        reused = (
            f"; 1st token {warm:.0f} ms with the previous prompt's prefix" if warm == warm else ""
        )
        print(f"  {result.label}: {result.version}, {result.api}{install}{reused}")
    print(
        "  first token: streamed, capped at 1 new token; same as TF: parsed calls equal to "
        "transformers serve's; llama.cpp reuses the previous request's KV prefix in its calls "
        "(1st token: cold, its cache cleared by an untimed unrelated prompt)"
    )
    ratios = []
    if reference is not None and reference.rounds:
        base = reference.figures()
        for name in args.runtimes:
            result = results[name]
            if name == REFERENCE or result.why_not is not None or not result.rounds:
                continue
            figures = result.figures()
            ratios.append(
                {
                    "runtime": result.label,
                    "1st token speed-up": _times(
                        base["first_token_ms"] / figures["first_token_ms"]
                    ),
                    "tok/s b1": _times(
                        figures["tokens_per_s_batch1"] / base["tokens_per_s_batch1"]
                    ),
                    "tok/s b8": _times(
                        figures["tokens_per_s_batch8"] / base["tokens_per_s_batch8"]
                    ),
                    "call p50 speed-up": _times(base["call_p50_ms"] / figures["call_p50_ms"]),
                    "peak RSS": _times(figures["peak_rss_mb"] / base["peak_rss_mb"]),
                }
            )
        print_table("Against transformers serve (same run; >1x: better, RSS: share)", ratios)
    figures_out = {
        "model": model,
        "dataset": f"{DATASET} {SPLIT}",
        "queries": len(cases),
        "prompt_tokens_mean": round(prompt_tokens, 1),
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "threads": args.threads,
        "machine": machine,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "runtimes": {name: _result_json(results[name], reference_texts) for name in args.runtimes},
    }
    summary = {
        **figures_out,
        "runtimes": {
            name: {k: v for k, v in entry.items() if k != "replies"}
            for name, entry in figures_out["runtimes"].items()
        },
    }
    print(json.dumps(summary))  # the replies themselves go to --json only
    if args.json:
        args.json.write_text(json.dumps(figures_out, indent=2) + "\n", encoding="utf-8")


def _number(value: float) -> float | None:
    """A figure for the JSON: rounded, and null where there is none (NaN)."""
    return None if value != value else round(value, 2)


def _times(value: float) -> str:
    return f"{value:.2f}x"


def _empty_row(name: str, why: str) -> dict[str, object]:
    row: dict[str, object] = {"runtime": name, "API": "not measured"}
    for column in (
        "tokens",
        "1st token ms",
        "tok/s b1",
        "tok/s b8",
        "call mean ms",
        "call p50 ms",
        "peak RSS MB",
        "install",
        "convert",
        "same as TF",
    ):
        row[column] = "-"
    return row


def _result_json(result: Result, reference_texts: list[str]) -> dict[str, Any]:
    if result.why_not is not None or not result.rounds:
        return {"measured": False, "why_not": result.why_not}
    texts = result.texts()
    return {
        "measured": True,
        "label": result.label,
        "api": result.api,
        "version": result.version,
        "install": result.install,
        "install_detail": result.install_detail,
        "convert": result.convert,
        "completion_tokens": result.tokens(),
        **{k: _number(v) for k, v in result.figures().items()},
        "same_as_transformers": (
            sum(a == b for a, b in zip(texts, reference_texts, strict=True))
            if reference_texts
            else None
        ),
        "rounds": [
            {
                "first_token_ms": round(r.first_ms, 1),
                "first_token_warm_ms": _number(r.first_warm_ms),
                "tokens_per_s_batch1": round(r.tps1, 2),
                "tokens_per_s_batch8": round(r.tps8, 2),
                "call_p50_ms": round(r.call_p50_ms, 1),
            }
            for r in result.rounds
        ],
        "replies": texts,
    }


if __name__ == "__main__":
    main()
