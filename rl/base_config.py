"""What every training run shares: the base model, LoRA, the optimiser, the device and the run.

Each algorithm's config (``rl/<algo>_config.py``) extends ``RunConfig`` with its own knobs and
turns itself into the matching TRL config with ``to_trl``. The defaults are for a 135M model
on a laptop CPU: LoRA on every projection, fp32 (CPUs gain little from bf16 autocast and a
small model loses precision), no gradient checkpointing (activations of 135M parameters are
small; recomputing them costs ~20% time), no checkpoints mid-run (the run directory gets the
adapter at the end), and nothing reported to any service.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tools.errors import BadInput
from tools.settings.llm import DEFAULT_LOCAL_MODEL

DEVICES = ("cpu", "cuda", "auto")
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def setting(default: Any, help: str) -> Any:
    """A config field with its help text in ``metadata["help"]`` (TRL's convention).

    ``shopagent train`` turns every field into a flag with this text as its help, so a new
    field is settable from the command line and from ``--config`` without touching the CLI.
    """
    return field(default=default, metadata={"help": help})


@dataclass(slots=True)
class RunConfig:
    base_model: str = setting(
        DEFAULT_LOCAL_MODEL, "A stored model's name or a model directory to start from."
    )
    run_name: str | None = setting(
        None, "The run's folder and the trained model's name in the store (default: ALGO-TIME)."
    )
    device: str = setting("cpu", "cpu, cuda or auto (cuda when torch sees a GPU).")
    seed: int = setting(0, "Seed of LoRA's initialisation, data order and sampling.")
    max_steps: int = setting(-1, "Optimiser steps; -1 runs num_train_epochs passes over the data.")
    num_train_epochs: float = setting(1.0, "Passes over the data when max_steps is -1.")
    learning_rate: float = setting(
        5e-5, "Peak learning rate of the linear schedule (LoRA's usual 5e-5, not TRL's 1e-6)."
    )
    batch_size: int = setting(8, "Examples per device and step.")
    gradient_accumulation_steps: int = setting(
        1, "Steps whose gradients add up before one optimiser update (a larger batch in memory)."
    )
    warmup_ratio: float = setting(0.05, "Share of the steps over which the learning rate ramps up.")
    max_length: int = setting(
        320, "Prompt plus completion tokens (the policy prompt is ~170 tokens, a call ~30)."
    )
    lora_r: int = setting(16, "LoRA rank: the adapter's capacity.")
    lora_alpha: int = setting(32, "LoRA scale numerator: updates are scaled by alpha / r.")
    lora_dropout: float = setting(0.05, "Dropout on the LoRA path.")
    lora_target_modules: tuple[str, ...] = setting(
        LLAMA_PROJECTIONS,
        "Modules that get an adapter (comma-separated on the command line).",
    )
    bf16: bool = setting(
        False, "bf16 autocast: for GPUs; CPUs gain little and a 135M model loses precision."
    )
    threads: int | None = setting(
        None,
        "torch CPU threads (default: one per core); on a machine shared with busy processes, "
        "1 avoids OpenMP threads spin-waiting on each other.",
    )
    logging_steps: int = setting(5, "Log the loss (and reward) every N steps.")
    time_limit_s: float | None = setting(
        None,
        "Stop after the optimiser step that passes this many seconds of training and publish "
        "the run as it is (a deadline on a shared machine); unset: no limit.",
    )
    rollout_model: str | None = setting(
        None, "Keep only rollouts of this policy (default: every rollout in the file)."
    )
    register: bool = setting(True, "Register the merged model in the store under the run name.")
    overwrite: bool = setting(False, "Replace a run and a stored model of the same name.")

    algo = "base"
    #: The writer prompt the run trains on (None: ``expand``, the rollouts' prompt), recorded
    #: in the registered model's manifest and a shipped policy's ``policy.json``.
    writer_style = None

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise BadInput(f"unknown device {self.device!r}; choose one of {list(DEVICES)}")
        if self.batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise BadInput("batch_size and gradient_accumulation_steps must be at least 1")
        if self.max_steps == 0 or self.max_steps < -1:
            raise BadInput(f"max_steps must be positive or -1 (use epochs), got {self.max_steps}")
        if self.learning_rate <= 0:
            raise BadInput(f"learning_rate must be positive, got {self.learning_rate}")
        if self.lora_r < 1:
            raise BadInput(f"lora_r must be at least 1, got {self.lora_r}")
        if self.threads is not None and self.threads < 1:
            raise BadInput(f"threads must be at least 1, got {self.threads}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise BadInput(f"time_limit_s must be positive, got {self.time_limit_s}")

    def resolved_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BadInput("--device cuda: torch sees no CUDA GPU here (use --device cpu)")
        return self.device

    def lora_config(self) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=list(self.lora_target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )

    def trainer_arguments(self, output_dir: str) -> dict[str, Any]:
        """The ``transformers.TrainingArguments`` part every TRL config takes."""
        device = self.resolved_device()
        return {
            "output_dir": output_dir,
            "seed": self.seed,
            "max_steps": self.max_steps,
            "num_train_epochs": self.num_train_epochs,
            "learning_rate": self.learning_rate,
            "per_device_train_batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "warmup_steps": self.warmup_ratio,
            "lr_scheduler_type": "linear",
            "logging_steps": self.logging_steps,
            "save_strategy": "no",
            "report_to": "none",
            "use_cpu": device == "cpu",
            "bf16": self.bf16,
            "gradient_checkpointing": False,
            "dataloader_num_workers": 0,
            "disable_tqdm": False,
            "max_length": self.max_length,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["algo"] = self.algo
        data["lora_target_modules"] = list(self.lora_target_modules)
        return data
