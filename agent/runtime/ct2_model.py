"""The local model on CTranslate2 (int8): converted once beside its weights, generated fast.

Why: a chat turn waits on the query writer, and ``transformers`` generation on two CPU cores
took 2-4 s for a 20-token call of the 135M model; CTranslate2's int8 CPU kernels write the same
tokens (greedy, checked on the Home Depot dev and Chorus prompts) in a fraction of that
(``evals/perf/bench_runtimes.py``). The conversion is a derived copy of a stored model's weights
(``ctranslate2-int8/`` inside its directory, 130 MB for SmolLM2-135M, ~15 s): made by ``model
init`` and on first use, remade when the model is rebuilt, never edited by hand.

Prompts are rendered by the model directory's own tokenizer and chat template, exactly as for
``transformers`` (``agent.runtime.generation.render_prompt``), so both runtimes see the same
text; only the kernels differ.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.protocol.chat_template import TURN_END, call_close_start_id, complete_call_close
from agent.protocol.tool_calls import parse_tool_calls
from agent.protocol.tool_schemas import TOOL_SCHEMAS
from agent.runtime.rendering import Generation, Message, render_prompt
from tools.atomic_write import replace_directory
from tools.errors import BackendError, NotFound

#: The converted copy's folder inside a model directory.
CONVERTED_DIR = "ctranslate2-int8"
#: Written last into the converted copy: what it was converted from.
STAMP_NAME = "shopagent-converted.json"
COMPUTE_TYPE = "int8"
#: A prompt head shorter than this is not worth a cache entry.
MIN_STATIC_TOKENS = 64
#: Distinct prompt heads remembered (to tell the ones that repeat); forgotten past this.
MAX_HEADS_SEEN = 4096
_CONVERTING = threading.Lock()


class ConversionError(BackendError):
    """CTranslate2 cannot convert this model (an architecture it does not know)."""


def stamp_for(model_dir: Path) -> dict[str, Any]:
    """What identifies the weights a conversion was made from: the model's manifest (its
    source and creation time) or, for a bare Hugging Face directory, the weights' size and
    modification time."""
    import ctranslate2

    manifest = model_dir / "shopagent-model.json"
    if manifest.is_file():
        made_from: Any = json.loads(manifest.read_text(encoding="utf-8"))
    else:
        made_from = sorted(
            (path.name, path.stat().st_size, path.stat().st_mtime_ns)
            for path in model_dir.glob("*.safetensors")
        )
    return {
        "made_from": made_from,
        "quantization": COMPUTE_TYPE,
        "ctranslate2": ctranslate2.__version__,
    }


def converted_dir(model_dir: Path) -> Path | None:
    """The model's current converted copy, or None when there is none or it is stale."""
    target = Path(model_dir) / CONVERTED_DIR
    try:
        stamp = json.loads((target / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return target if stamp == json.loads(json.dumps(stamp_for(Path(model_dir)))) else None


def ensure_converted(model_dir: Path) -> Path:
    """The model's int8 copy, converted now when missing or stale (built aside, then swapped in,
    so a crash or a second process never sees half of one)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise NotFound(f"{model_dir}: not a model directory (no config.json)")
    found = converted_dir(model_dir)
    if found is not None:
        return found
    with _CONVERTING:
        found = converted_dir(model_dir)
        if found is not None:
            return found
        target = model_dir / CONVERTED_DIR
        staging = Path(tempfile.mkdtemp(prefix=f".{CONVERTED_DIR}.", dir=model_dir))
        try:
            _convert(model_dir, staging)
            (staging / STAMP_NAME).write_text(
                json.dumps(stamp_for(model_dir), indent=2) + "\n", encoding="utf-8"
            )
            replace_directory(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def _convert(model_dir: Path, output: Path) -> None:
    import ctranslate2

    try:
        converter = ctranslate2.converters.TransformersConverter(
            str(model_dir), low_cpu_mem_usage=True
        )
        converter.convert(str(output), quantization=COMPUTE_TYPE, force=True)
    except (ValueError, NotImplementedError, KeyError) as error:
        raise ConversionError(
            f"CTranslate2 cannot convert {model_dir.name} ({str(error).splitlines()[0][:160]}); "
            "serve it with SHOPAGENT_LLM_RUNTIME=transformers"
        ) from None


@dataclass(frozen=True, slots=True)
class Sampling:
    """How to pick each token: greedy when ``temperature`` is 0 (the chat and the evals)."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def options(self) -> dict[str, Any]:
        if self.temperature <= 0:
            return {"max_length": self.max_new_tokens, "sampling_topk": 1}
        options: dict[str, Any] = {
            "max_length": self.max_new_tokens,
            "sampling_topk": 0,  # the whole distribution, cut by top_p
            "sampling_topp": self.top_p,
            "sampling_temperature": self.temperature,
        }
        return options


@dataclass(frozen=True, slots=True)
class PreparedPrompt:
    """A rendered prompt, split into a head CTranslate2 keeps computed (``static``: the system
    prompt and worked example every writer request repeats) and the rest."""

    text: str
    static: tuple[str, ...]
    dynamic: tuple[str, ...]

    @property
    def tokens(self) -> int:
        return len(self.static) + len(self.dynamic)

    def options(self) -> dict[str, Any]:
        return {"static_prompt": list(self.static)} if self.static else {}


class Ct2Generator:
    """A stored model on CTranslate2: ``generate`` for batches (the evals), ``stream`` for one
    reply token by token (the server). Same prompts, replies and parse as ``LocalGenerator``.

    ``inter_threads`` replicas of the model answer sub-batches in parallel, each on
    ``threads`` cores. Why the evals want one replica per core with one thread each: at the
    writer's batch of 16 on 2 cores, two parallel sub-batches of 8 write a call in 114-120 ms
    against 178 ms for one batch on both cores (``evals/perf``; threads in one small matrix
    product wait on each other more than they help). One request alone (the chat) is fastest
    on all cores: the server keeps the defaults.
    """

    def __init__(self, model_dir: Path, *, threads: int = 0, inter_threads: int = 1) -> None:
        import ctranslate2
        from transformers import AutoTokenizer, GenerationConfig

        self.model_dir = Path(model_dir)
        converted = ensure_converted(self.model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.generator = ctranslate2.Generator(
            str(converted),
            device="cpu",
            compute_type=COMPUTE_TYPE,
            intra_threads=threads,
            inter_threads=inter_threads,
        )
        try:
            eos: Any = GenerationConfig.from_pretrained(self.model_dir).eos_token_id
        except OSError:
            eos = None
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        self.end_ids = sorted(ids)
        #: Where a demanded call's reply ends (``call_close_start_id``); None: at the turn end.
        self.call_close_id = call_close_start_id(self.tokenizer)
        self.replicas = max(1, inter_threads)
        self._heads_seen: dict[tuple[str, ...], int] = {}
        self._heads_lock = threading.Lock()

    def render(
        self,
        conversation: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None = TOOL_SCHEMAS,
        **template_kwargs: Any,
    ) -> str:
        return render_prompt(self.tokenizer, conversation, tools, **template_kwargs)

    def prompt_tokens(self, prompt: str) -> list[str]:
        ids = self.tokenizer.encode(prompt, add_special_tokens=False)
        return self.tokenizer.convert_ids_to_tokens(ids)

    def prepare(
        self,
        conversation: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None = TOOL_SCHEMAS,
        **template_kwargs: Any,
    ) -> PreparedPrompt:
        """The prompt, with its head (every message before the last) marked static once that
        head has been seen before.

        Why: the writer prompt is ~260 tokens of which ~240 (the system prompt and the worked
        example) are the same on every request; CTranslate2 computes a static prompt once and
        reuses it, so a request pays only for its own ~20 tokens before the first reply token.
        A head seen once (a chat's growing history) is not cached: it will not come again.
        The tokens are the same either way (checked: a head that does not tokenize as a prefix
        of the whole prompt is not split).
        """
        text = self.render(conversation, tools, **template_kwargs)
        tokens = tuple(self.prompt_tokens(text))
        if len(conversation) < 2:
            return PreparedPrompt(text, (), tokens)
        head_text = render_prompt(
            self.tokenizer, conversation[:-1], tools, generation_prompt=False, **template_kwargs
        )
        head = tuple(self.prompt_tokens(head_text))
        if len(head) < MIN_STATIC_TOKENS or tokens[: len(head)] != head or len(head) == len(tokens):
            return PreparedPrompt(text, (), tokens)
        with self._heads_lock:
            if len(self._heads_seen) >= MAX_HEADS_SEEN:
                self._heads_seen.clear()
            seen = self._heads_seen.get(head, 0)
            self._heads_seen[head] = seen + 1
        if not seen:
            return PreparedPrompt(text, (), tokens)
        return PreparedPrompt(text, head, tokens[len(head) :])

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = TOOL_SCHEMAS,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        written_start: str = "",
        **template_kwargs: Any,
    ) -> list[Generation]:
        """One batch of conversations; replies cut at the turn end and parsed for tool calls.

        ``written_start``: the reply's opening, written for the model (a demanded tool's call
        opening, ``agent.protocol.chat_template.demanded_call_opening``, as the server writes
        it); the model continues from it and the reply text includes it. Such a reply is one
        call: it ends where the call's closing tag starts, and the tag is written out.
        """
        if not conversations:
            return []
        prepared = [self.prepare(c, tools, **template_kwargs) for c in conversations]
        heads = {p.static for p in prepared}
        shared = next(iter(heads)) if len(heads) == 1 else ()
        opening = self.prompt_tokens(written_start) if written_start else []
        prompts = [
            [*p.dynamic, *opening] if shared else [*p.static, *p.dynamic, *opening]
            for p in prepared
        ]
        sampling = Sampling(max_new_tokens, temperature, top_p, seed)
        self._seed(seed)
        options = {
            "include_prompt_in_result": False,
            "end_token": self.end_ids_for(call_written=bool(written_start)),
            "return_end_token": True,  # counted, as transformers counts it
            **({"static_prompt": list(shared)} if shared else {}),
            **sampling.options(),
        }
        # a batch is padded to its longest prompt: split over replicas, each gets prompts of
        # like length (one replica keeps the order it was given: the same padding either way)
        order = list(range(len(prompts)))
        if self.replicas > 1:
            order.sort(key=lambda i: len(prompts[i]))
        size = -(-len(prompts) // self.replicas)
        pending = [
            self.generator.generate_batch(
                [prompts[i] for i in order[start : start + size]], asynchronous=True, **options
            )
            for start in range(0, len(order), size)
        ]
        results: list[Any] = [None] * len(prompts)
        for position, answer in zip(order, (a for part in pending for a in part), strict=True):
            results[position] = answer.result()
        generations = []
        for prompt, result in zip(prepared, results, strict=True):
            completion = list(result.sequences_ids[0])
            text = self.tokenizer.decode(completion, skip_special_tokens=True)
            text = complete_call_close((written_start + text).split(TURN_END, 1)[0])
            generations.append(
                Generation(
                    text=text,
                    parsed=parse_tool_calls(text, tools),
                    prompt_tokens=prompt.tokens,
                    completion_ids=tuple(completion),
                )
            )
        return generations

    def end_ids_for(self, *, call_written: bool) -> list[int]:
        """The tokens a reply ends on: the turn's end, and after a written call opening
        (``call_written``) also the start of the call's closing tag."""
        if call_written and self.call_close_id is not None:
            return sorted({*self.end_ids, self.call_close_id})
        return self.end_ids

    def stream(
        self, prompt: PreparedPrompt, sampling: Sampling, continuation: Sequence[str] = ()
    ) -> Iterator[int]:
        """The reply's token ids as they are generated, the end token last (counted, as
        ``transformers`` counts it; decoding skips it). Closing the iterator stops the
        generation. After a ``continuation`` (a call opening the caller wrote) the reply also
        ends on the start of the call's closing tag, as in ``generate``."""
        self._seed(sampling.seed)
        ends = self.end_ids_for(call_written=bool(continuation))
        steps = self.generator.generate_tokens(
            [*prompt.dynamic, *continuation],  # the reply's start, when the caller wrote it
            end_token=ends,
            **prompt.options(),
            **sampling.options(),
        )
        try:
            for step in steps:
                yield step.token_id
                if step.token_id in ends:
                    return
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _seed(seed: int | None) -> None:
        if seed is not None:
            import ctranslate2

            ctranslate2.set_random_seed(seed)
