"""Chat turns as a shopper feels them: Enter to the next prompt, in a real pseudo-terminal.

Run: ``python -m evals.perf.bench_chat_pty [--dataset chorus] [--chats 1] [--think 3]`` after
``shopagent index --dataset chorus`` and ``shopagent model init``.

Each chat is the real ``shopagent chat`` command in its own pty (``pexpect``), on the embedded
model. The time to the first prompt is measured from the process start; the shopper then
"types" for ``--think`` seconds before each message (what the warm-up overlaps), and each turn
is timed from Enter to the next ``you>`` prompt. Which turns called the model comes from the
trajectory records the chat writes (``model_ms`` > 0): "model turns" and "graph-only turns"
(answered from the state: "the second one", "compare 1 and 2") are reported apart, and the
first model turn against their median. With ``--chats N`` the chats run at once against one
``shopagent serve`` (several shoppers, one model server). The machine's load average is
printed with the figures: on a loaded machine every figure is slower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from agent.trajectory.log import TrajectoryLog, default_log_path
from evals.chat_pty import PROJECT_ROOT, PROMPT, first_prompt, spawn_chat, turn_records
from evals.perf.timing import print_table
from tools.metrics.percentile import percentile
from tools.settings.config import load_settings

#: A scripted conversation: new requests (the model writes each search), refinements and
#: references (the graph answers some alone). Your own wording, not the eval queries.
CONVERSATION = [
    "hi! i'm looking for a wireless mouse for my laptop",
    "under 40 dollars",
    "the second one",
    "now a usb keyboard",
    "compare 1 and 2",
    "something for video calls, a webcam",
    "only logitech",
    "a 27 inch monitor",
    "cheaper",
    "noise cancelling headphones",
    "i need a printer for photos",
    "an external hard drive with 1tb",
    "a laptop bag",
    "the first one",
    "a projector for movies at home",
    "hdmi cable",
    "compare 2 and 3",
    "a tablet for drawing",
    "a router for the whole house",
    "a gaming keyboard with lights",
    "memory card for my camera",
    "bluetooth speaker for the beach",
    "a cheap smartwatch",
    "an ink cartridge for hp printers",
    "usb hub with 4 ports",
]


@dataclass(slots=True)
class ChatTiming:
    conversation_id: str = ""
    first_prompt_s: float = 0.0
    turns_s: list[float] = field(default_factory=list)
    model_ms: list[float] = field(default_factory=list)


def run_chat(
    dataset: str, turns: list[str], think_s: float, base_url: str | None, timing: ChatTiming
) -> None:
    """One ``shopagent chat`` in a pty: the first prompt, then each turn Enter to prompt."""
    started = time.perf_counter()
    child = spawn_chat(dataset, base_url=base_url)
    try:
        timing.conversation_id = first_prompt(child)
        timing.first_prompt_s = time.perf_counter() - started
        for text in turns:
            time.sleep(think_s)
            child.sendline(text)
            sent = time.perf_counter()
            child.expect(PROMPT)
            timing.turns_s.append(time.perf_counter() - sent)
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def serve_for(chats: int) -> tuple[subprocess.Popen[bytes], str]:
    """``shopagent serve`` on a free port, for several chats at once."""
    from agent.runtime.model_server import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(port)],
        cwd=str(PROJECT_ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/models", timeout=2).close()
            return process, base
        except OSError:
            if process.poll() is not None:
                raise SystemExit("shopagent serve exited") from None
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"shopagent serve not ready for {chats} chats after 300 s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="chorus")
    parser.add_argument("--chats", type=int, default=1, help="Chats at once (one server).")
    parser.add_argument("--turns", type=int, default=len(CONVERSATION))
    parser.add_argument("--think", type=float, default=3.0, help="Seconds before each message.")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    log = TrajectoryLog(default_log_path(load_settings().home))
    skip = len(log.read().records)
    load_before = os.getloadavg()[0]
    turns = CONVERSATION[: args.turns]
    server, base_url = serve_for(args.chats) if args.chats > 1 else (None, None)
    timings = [ChatTiming() for _ in range(args.chats)]
    try:
        threads = [
            threading.Thread(
                target=run_chat, args=(args.dataset, turns, args.think, base_url, timing)
            )
            for timing in timings
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    model_flags: list[bool] = []
    for timing in timings:
        records = turn_records(log.read().records[skip:], timing.conversation_id)
        if len(records) != len(timing.turns_s):
            raise SystemExit(
                f"{len(records)} records for {len(timing.turns_s)} turns of conversation "
                f"{timing.conversation_id}: cannot tell model turns from graph-only ones"
            )
        model_flags += [float(r["latency"]["model_ms"]) > 0 for r in records]
    all_turns = [t for timing in timings for t in timing.turns_s]
    model_turns = [t for t, m in zip(all_turns, model_flags, strict=True) if m]
    graph_turns = [t for t, m in zip(all_turns, model_flags, strict=True) if not m]
    first_model = next(
        (t for t, m in zip(timings[0].turns_s, model_flags, strict=False) if m), float("nan")
    )
    median_model = statistics.median(model_turns) if model_turns else float("nan")
    rows = [
        {"measure": "first prompt (process start)", "s": max(t.first_prompt_s for t in timings)},
        {"measure": f"model turns: {len(model_turns)}", "s": float("nan")},
        {"measure": "  p50", "s": percentile(model_turns, 50) if model_turns else float("nan")},
        {"measure": "  p95", "s": percentile(model_turns, 95) if model_turns else float("nan")},
        {"measure": "  first model turn", "s": first_model},
        {"measure": f"graph-only turns: {len(graph_turns)}", "s": float("nan")},
        {"measure": "  max", "s": max(graph_turns) if graph_turns else float("nan")},
        {"measure": "all turns p95", "s": percentile(all_turns, 95)},
    ]
    load_after = os.getloadavg()[0]
    print_table(
        f"shopagent chat --dataset {args.dataset} in a pty: {args.chats} chat(s) x "
        f"{len(turns)} turns, think {args.think:.0f} s (load {load_before:.1f} -> "
        f"{load_after:.1f})",
        rows,
    )
    ratio = first_model / median_model if model_turns else float("nan")
    print_table("Ratios", [{"measure": "first model turn / median model turn", "ratio": ratio}])
    figures = {
        "chats": args.chats,
        "turns": len(all_turns),
        "first_prompt_s": round(max(t.first_prompt_s for t in timings), 2),
        "model_turns": len(model_turns),
        "model_p50_s": round(percentile(model_turns, 50), 3) if model_turns else None,
        "model_p95_s": round(percentile(model_turns, 95), 3) if model_turns else None,
        "first_model_turn_ratio": round(ratio, 2),
        "graph_turns": len(graph_turns),
        "graph_max_s": round(max(graph_turns), 3) if graph_turns else None,
        "all_p95_s": round(percentile(all_turns, 95), 3),
        "load": [round(load_before, 2), round(load_after, 2)],
    }
    print(json.dumps(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
