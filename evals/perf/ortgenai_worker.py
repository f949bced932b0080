"""ONNX Runtime GenAI, measured in its own process for ``evals.perf.bench_runtimes``.

ORT GenAI has no OpenAI server, and it lives in its own venv (``onnxruntime-genai`` and the
builder's torch are not project dependencies), so this file imports nothing from the project:
it is run as a script by that venv's interpreter, ``python ortgenai_worker.py EXPORT_DIR``,
and answers one JSON line on stdout for each JSON line on stdin:

- ``{"op": "first", "ids": [...]}``: seconds to the first generated token (prefill + 1 step);
- ``{"op": "call", "ids": [...], "max_new_tokens": 64}``: one greedy reply (batch 1);
- ``{"op": "batch", "prompts": [[...], ...], "max_new_tokens": 64}``: one greedy batch;
- ``{"op": "memory"}``: this process's peak resident memory (``VmHWM``, kB).

Prompts come as token ids (tokenized by the model directory's tokenizer in the benchmark), and
replies go back as ids up to and including the end token, so nothing is tokenized twice.
Timings are taken here, around the generation only (in-process figures: no HTTP, no JSON).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: ONNX Runtime GenAI is not a project dependency: this worker runs only in the benchmark's own
#: venv (``--venvs``), where ``bench_runtimes`` installs it; the project's venv never imports it.
og: Any = importlib.import_module("onnxruntime_genai")


class Worker:
    def __init__(self, export: Path) -> None:
        self.model = og.Model(str(export))
        config = json.loads((export / "genai_config.json").read_text(encoding="utf-8"))
        eos = config["model"]["eos_token_id"]
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.pad = int(config["model"].get("pad_token_id", min(self.eos)))

    def _generator(self, prompts: list[list[int]], max_new_tokens: int) -> Any:
        params = og.GeneratorParams(self.model)
        longest = max(len(p) for p in prompts)
        params.set_search_options(
            do_sample=False, max_length=longest + max_new_tokens, batch_size=len(prompts)
        )
        generator = og.Generator(self.model, params)
        if len(prompts) == 1:
            generator.append_tokens(np.asarray(prompts, dtype=np.int32))
        else:  # left-padded, as ORT GenAI's tokenizer pads a batch
            padded = [[self.pad] * (longest - len(p)) + p for p in prompts]
            generator.append_tokens(np.asarray(padded, dtype=np.int32))
        return generator

    def first(self, ids: list[int]) -> dict[str, object]:
        started = time.perf_counter()
        generator = self._generator([ids], 1)
        generator.generate_next_token()
        token = int(generator.get_next_tokens()[0])
        return {"seconds": time.perf_counter() - started, "token": token}

    def call(self, ids: list[int], max_new_tokens: int) -> dict[str, object]:
        started = time.perf_counter()
        generator = self._generator([ids], max_new_tokens)
        out: list[int] = []
        while not generator.is_done() and len(out) < max_new_tokens:
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            out.append(token)
            if token in self.eos:
                break
        return {"seconds": time.perf_counter() - started, "ids": out}

    def batch(self, prompts: list[list[int]], max_new_tokens: int) -> dict[str, object]:
        started = time.perf_counter()
        generator = self._generator(prompts, max_new_tokens)
        outs: list[list[int]] = [[] for _ in prompts]
        ended = [False] * len(prompts)
        while not generator.is_done() and not all(ended):
            generator.generate_next_token()
            for row, token in enumerate(generator.get_next_tokens()):
                if ended[row] or len(outs[row]) >= max_new_tokens:
                    continue
                outs[row].append(int(token))
                ended[row] = int(token) in self.eos or len(outs[row]) >= max_new_tokens
        return {"seconds": time.perf_counter() - started, "ids": outs}


def peak_kb() -> int:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    worker = Worker(Path(sys.argv[1]))
    print(json.dumps({"ready": True, "version": og.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "first":
            answer = worker.first(request["ids"])
        elif op == "call":
            answer = worker.call(request["ids"], request["max_new_tokens"])
        elif op == "batch":
            answer = worker.batch(request["prompts"], request["max_new_tokens"])
        elif op == "memory":
            answer = {"vmhwm_kb": peak_kb()}
        else:
            answer = {"error": f"unknown op {op!r}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
