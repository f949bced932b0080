"""Training benchmark: step time and peak memory of ``shopagent train`` against bare TRL.

Run: ``python -m evals.perf.bench_train --trajectories FILE [--algo dpo] [--steps 6]
[--batch-size 4] [--device cpu] [--threads N] [--repeats 1] [--out result.json]``.

Both sides train the same base model with the same LoRA, the same TRL config (the run
config's ``to_trl``) on the same rows (``rl``'s dataset builders) for ``--steps`` optimiser
steps, each in a fresh Python process, so peak memory is that run's alone (resident set on
CPU, peak allocated memory on CUDA; the same instrument reads both sides). "shopagent" is the
whole ``rl.train`` path: run directory, data hashes, training, adapter save, merge and
registration (the run and its model are deleted afterwards). "bare TRL" builds the TRL trainer
directly and calls ``train()``. Step time is the median over steps after the first (which
pays lazy initialisation). The ratio is ours over bare TRL; the target is <= 1.1 for both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from evals.perf.timing import print_table

RESULT_PREFIX = "BENCH-RESULT "


def run_config(algo: str, base: str, steps: int, batch_size: int, device: str) -> Any:
    import rl

    options: dict[str, Any] = {"base_model": base, "max_steps": steps, "device": device}
    if algo == "grpo":
        options["prompts_per_step"] = max(1, batch_size // 4)
    else:
        options["batch_size"] = batch_size
    return rl.config_class(algo)(**options)


def ours(algo: str, trajectories: Path, config: Any) -> dict[str, Any]:
    import rl
    from tools.settings.config import load_settings

    settings = load_settings()
    config.run_name = f"bench-{algo}-{uuid.uuid4().hex[:8]}"
    run = rl.train(settings, algo, trajectories, config)
    try:
        return {"step_time": run.metrics["step_time"]}
    finally:
        shutil.rmtree(run.run_dir, ignore_errors=True)
        if run.model is not None:
            shutil.rmtree(run.model.path, ignore_errors=True)


def bare(algo: str, trajectories: Path, config: Any) -> dict[str, Any]:
    """The same training with TRL's own classes and nothing of the run machinery."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent.runtime.model_store import resolve_model_dir
    from rl.base_trainer import StepTimer
    from rl.datasets import read_rollouts
    from tools.settings.config import load_settings

    settings = load_settings()
    base_dir = resolve_model_dir(settings, config.base_model)
    device = config.resolved_device()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).to(device)
    data = read_rollouts(trajectories, model_id=config.rollout_model)
    output_dir = tempfile.mkdtemp(prefix="bench-train-")
    common = {"model": model, "processing_class": tokenizer, "peft_config": config.lora_config()}
    if algo == "dpo":
        from trl import DPOTrainer

        from rl.dpo_trainer import dpo_dataset

        rows = dpo_dataset(data, config)
        trainer = DPOTrainer(args=config.to_trl(output_dir), train_dataset=rows, **common)
    elif algo == "kto":
        from trl import KTOTrainer

        from rl.kto_trainer import kto_dataset

        rows = kto_dataset(data, config)
        args = config.to_trl(output_dir, labels=rows["label"])
        trainer = KTOTrainer(args=args, train_dataset=rows, **common)
    elif algo == "rwr":
        from trl import SFTTrainer

        from rl.rwr_trainer import rwr_dataset

        _, rows = rwr_dataset(data, config)
        trainer = SFTTrainer(args=config.to_trl(output_dir), train_dataset=rows, **common)
    else:
        from trl import GRPOTrainer

        from rl.grpo_trainer import grpo_dataset, render_prompts
        from rl.rewards import LiveSearch, SearchRewardFunc
        from tools.search_tools import SearchToolbox

        name, rows = grpo_dataset(data, config, None, settings)
        reward = SearchRewardFunc(LiveSearch(SearchToolbox(settings, name), size=config.k))
        trainer = GRPOTrainer(
            args=config.to_trl(output_dir),
            train_dataset=render_prompts(rows, tokenizer),
            reward_funcs=[reward],
            **common,
        )
    timer = StepTimer()
    trainer.add_callback(timer)
    try:
        trainer.train()
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    return {"step_time": timer.summary()}


def child(args: argparse.Namespace) -> None:
    import torch

    from rl.base_trainer import peak_memory_mb

    if args.threads:
        torch.set_num_threads(args.threads)
    config = run_config(args.algo, args.base, args.steps, args.batch_size, args.device)
    side = ours if args.child == "ours" else bare
    result = side(args.algo, args.trajectories, config)
    result["peak_memory_mb"] = round(peak_memory_mb(config.resolved_device()), 1)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def measure(args: argparse.Namespace, side: str) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "evals.perf.bench_train",
        "--child",
        side,
        "--algo",
        args.algo,
        "--trajectories",
        str(args.trajectories),
        "--base",
        args.base,
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--device",
        args.device,
        "--threads",
        str(args.threads or 0),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"the {side} run failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=Path, required=True, help="A rollout log.")
    parser.add_argument("--algo", choices=("dpo", "kto", "rwr", "grpo"), default="dpo")
    parser.add_argument("--base", default="smollm2-135m", help="Stored model name or directory.")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, help="Also write the measurements here as JSON.")
    parser.add_argument("--child", choices=("ours", "bare"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is reported apart)")
    if args.child:
        child(args)
        return
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "bare": []}
    for repeat in range(args.repeats):
        # Alternate the order so that both sides see the same drift in machine load.
        for side in ("bare", "ours") if repeat % 2 == 0 else ("ours", "bare"):
            runs[side].append(measure(args, side))
    rows = summary_rows(args, runs)
    print_table(
        f"{args.algo} training vs bare TRL ({args.steps} steps, batch {args.batch_size}, "
        f"{args.device}; ratio = ours / bare TRL, target <= 1.1)",
        rows,
    )
    if args.out:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        report = {"args": settings, "runs": runs, "rows": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def summary_rows(
    args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Best of the repeats per side (the least disturbed run), and ours over bare TRL."""
    measures = (
        ("step time median", "s", lambda run: run["step_time"]["median_s"]),
        ("peak memory", "MB", lambda run: run["peak_memory_mb"]),
    )
    rows = []
    for label, unit, pick in measures:
        ours_value = min(pick(run) for run in runs["ours"])
        bare_value = min(pick(run) for run in runs["bare"])
        rows.append(
            {
                "measure": f"{label} ({unit}, best of {args.repeats})",
                "shopagent": f"{ours_value:.3f}" if unit == "s" else f"{ours_value:,.0f}",
                "bare TRL": f"{bare_value:.3f}" if unit == "s" else f"{bare_value:,.0f}",
                "ratio": ours_value / bare_value,
            }
        )
    return rows


if __name__ == "__main__":
    main()
