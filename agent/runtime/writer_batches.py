"""The in-process writer as a chat model the conversation graph can call from many threads.

Why: ``shopagent eval run --sessions`` (and the session training data) runs every session
through the real conversation graph, whose plan node asks a LangChain chat model for one call
at a time. One session at a time would pay a whole generation per model turn (~0.5 s on 2
cores); batched, 16 calls cost about 2 s together. So sessions run in threads, and each
thread's request waits a moment in
``WriterBatches`` until the others' have joined it: the batch then goes through the
``QueryWriter`` (the local model in process, ``agent.runtime.query_writer``) at once.
``WriterChatModel`` is the graph's side: LangChain messages and bound tools in, the reply
text out, parsed by the graph as any server's reply is.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from agent.protocol.writer_prompts import Prompt, QueryWriter
from tools.errors import BackendError

#: Seconds a batch waits for more requests once its first one came.
GATHER_S = 0.05
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class WriterBatches:
    """Prompts from many threads, answered in batches of at most ``batch_size``.

    A batch goes as soon as it is full, or ``GATHER_S`` after its first prompt: with as many
    threads as ``batch_size``, batches fill to the number of sessions waiting on the model.
    The worker thread starts with the first prompt: a run where the graph writes every
    search (no model) starts none.
    """

    def __init__(self, writer: QueryWriter, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.writer = writer
        self.batch_size = batch_size
        self.batches = 0
        self._requests: queue.Queue[tuple[Prompt, Future[str]]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def write(self, prompt: Prompt) -> str:
        """The writer's reply to one prompt (blocks until its batch is done)."""
        with self._start_lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._serve, name="writer-batches", daemon=True
                )
                self._worker.start()
        answer: Future[str] = Future()
        self._requests.put((prompt, answer))
        return answer.result()

    def _serve(self) -> None:
        while True:
            batch = [self._requests.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._requests.get(timeout=GATHER_S))
                except queue.Empty:
                    break
            try:
                replies = self.writer([prompt for prompt, _ in batch])
                if len(replies) != len(batch):
                    raise BackendError(f"the writer answered {len(replies)} of {len(batch)}")
            except Exception as error:  # every waiting session gets the error, none hangs
                for _, answer in batch:
                    answer.set_exception(error)
                continue
            self.batches += 1
            for (_, answer), reply in zip(batch, replies, strict=True):
                answer.set_result(reply)


class WriterChatModel(BaseChatModel):
    """A chat model whose replies come from ``WriterBatches`` (tools bound as OpenAI dicts)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model_name: str = "writer"
    _batches: WriterBatches = PrivateAttr()

    def __init__(self, batches: WriterBatches, model_name: str = "writer") -> None:
        super().__init__(model_name=model_name)
        self._batches = batches

    @property
    def _llm_type(self) -> str:
        return "shopagent-writer"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        conversation = tuple(
            {"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages
        )
        prompt = Prompt(messages=conversation, tools=tuple(kwargs.get("tools") or ()))
        text = self._batches.write(prompt)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
