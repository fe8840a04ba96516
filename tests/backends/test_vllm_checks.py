"""The vLLM providers' usage errors: decided from metadata, /proc and disk, without vLLM.

These run everywhere (no ``vllm`` marker): they need neither vLLM nor a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_passk.backends import vllm_checks
from pytest_passk.backends.registry import BackendContext, check_backend, resolve_model
from pytest_passk.backends.vllm import EngineStats, VllmBackend, sample_seed
from pytest_passk.backends.vllm_checks import (
    GIB,
    GPU_MEMORY_SHORT,
    HUB_OFFLINE,
    MODEL_PATH_MISSING,
    NO_GPU,
    Gpu,
    ModelSource,
    gpus_needed,
    locate_model,
    weight_bytes,
)
from pytest_passk.errors import BackendUnavailable
from pytest_passk.prompts import PromptStyle


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _snapshot(hub: Path, model_id: str, files: dict[str, str]) -> Path:
    repo = hub / ("models--" + model_id.replace("/", "--"))
    folder = repo / "snapshots" / "abc123"
    folder.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_no_gpu_fails_fast_with_the_fix(tmp_path: Path, no_gpu: None) -> None:
    model = resolve_model("llama3.1", {})
    with pytest.raises(BackendUnavailable) as info:
        check_backend(model, BackendContext(tmp_path))
    assert str(info.value) == NO_GPU.format(
        label="llama3.1", spec=model.spec, why="CUDA_VISIBLE_DEVICES hides every GPU"
    )


def test_llama_without_gpu_is_a_usage_error_that_imports_neither_vllm_nor_torch(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pytest", "--passk=1", "--model=llama3.1"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "needs an NVIDIA GPU and none is visible here" in result.stderr
    assert "--model=smollm2" in result.stderr
    assert "Traceback" not in result.stderr
    # What makes it fast (well under 2 s on an idle machine): neither vLLM nor torch is imported.
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert not {"vllm", "torch", "transformers"} & imported
    assert cpu < 10, cpu  # CPU seconds, generous: a busy machine stretches wall time, not this


def test_missing_model_folder(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable) as info:
        locate_model("m", "vllm-cpu", "./models/none", tmp_path, tmp_path)
    assert str(info.value) == MODEL_PATH_MISSING.format(
        label="m", path=tmp_path / "models" / "none"
    )


def test_local_folder_is_keyed_on_its_absolute_path(tmp_path: Path) -> None:
    folder = tmp_path / "org" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    # "org/model" looks like a hub id, but a folder of that name beside the tests wins.
    source = locate_model("m", "vllm-cpu", "org/model", tmp_path, tmp_path)
    assert source == ModelSource(str(folder.resolve()), folder.resolve())


def test_cached_hub_id_loads_from_its_snapshot(tmp_path: Path, hub: Path) -> None:
    folder = _snapshot(hub, "org/m-8B", {"config.json": "{}"})
    source = locate_model("m", "vllm", "org/m-8B", tmp_path, None)
    assert source == ModelSource("org/m-8B", folder)


def test_hub_id_not_cached_while_offline(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendUnavailable) as info:
        locate_model("llama3.1", "vllm", "meta-llama/Llama-3.1-8B-Instruct", tmp_path, None)
    assert str(info.value) == HUB_OFFLINE.format(
        label="llama3.1",
        model_id="meta-llama/Llama-3.1-8B-Instruct",
        cache=hub,
        provider="vllm",
    )
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # Online, vLLM downloads it itself.
    online = locate_model("x", "vllm", "meta-llama/Llama-3.1-8B-Instruct", tmp_path, None)
    assert online == ModelSource("meta-llama/Llama-3.1-8B-Instruct", None)


def test_weights_from_files_or_from_the_name(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / "config.json").write_text("{}")
    assert weight_bytes(ModelSource("local", tmp_path)) == 1000
    assert weight_bytes(ModelSource("meta-llama/Llama-3.1-70B-Instruct", None)) == 140 * 10**9
    assert weight_bytes(ModelSource("meta-llama/Llama-3.1-8B-Instruct", None)) == 16 * 10**9
    assert weight_bytes(ModelSource("org/unnamed", None)) is None


def test_tensor_parallel_takes_the_fewest_gpus_that_hold_the_model() -> None:
    h100 = [Gpu(i, 80 * GIB, 0) for i in range(8)]
    assert gpus_needed(16 * 10**9, h100) == 1  # 8B on one 80 GB GPU
    assert gpus_needed(140 * 10**9, h100) == 4  # 70B: 2 x 72 GiB usable is too tight
    assert gpus_needed(140 * 10**9, h100[:2]) is None
    busy = [Gpu(0, 24 * GIB, 20 * GIB)]
    assert gpus_needed(16 * 10**9, busy) is None


def test_not_enough_gpu_memory_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub: Path
) -> None:
    monkeypatch.setattr(vllm_checks, "visible_gpus", lambda: ([Gpu(0, 24 * GIB, 0)], ""))
    monkeypatch.setattr(vllm_checks, "_cpu_build", lambda: False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    model = resolve_model("llama3.1-70b", {})
    with pytest.raises(BackendUnavailable) as info:
        check_backend(model, BackendContext(tmp_path))
    assert str(info.value) == GPU_MEMORY_SHORT.format(
        label="llama3.1-70b", spec=model.spec, need=140e9 / GIB, count=1, free=24 * 0.9
    )


def test_cpu_extra_missing_names_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vllm_checks, "_cpu_build", lambda: False)
    with pytest.raises(BackendUnavailable, match=r"pip install 'pytest-passk\[cpu\]'"):
        check_backend(resolve_model("smollm2", {}), BackendContext(tmp_path))


def test_prompt_style_follows_the_chat_template(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{x}}"}))
    chat = VllmBackend("m", ModelSource("m", tmp_path), device="cpu")
    assert chat.prompt_style is PromptStyle.CHAT
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>"}))
    base = VllmBackend("m", ModelSource("m", tmp_path), device="cpu")
    assert base.prompt_style is PromptStyle.COMPLETION
    forced = VllmBackend(
        "m", ModelSource("m", tmp_path), device="cpu", prompt_style=PromptStyle.CHAT
    )
    assert forced.prompt_style is PromptStyle.CHAT
    # Building a backend loads nothing: the engine starts on the first generate().
    assert not chat.loaded and chat.stats.starts == 0


def test_sample_seeds_depend_on_the_run_seed_and_the_index_only() -> None:
    seeds = [sample_seed(0, i) for i in range(100)]
    assert len(set(seeds)) == 100
    assert seeds[7] == sample_seed(0, 7)
    assert sample_seed(1, 7) != seeds[7]
    assert all(0 <= seed < 2**63 for seed in seeds)


def test_the_engine_s_summary_line() -> None:
    stats = EngineStats(
        starts=1,
        load_seconds=52.4,
        generate_seconds=200.0,
        samples=30,
        prompt_tokens=284,
        completion_tokens=2854,
    )
    assert stats.summary() == (
        "1 engine start(s) in 52 s, 30 samples in 200 s, 284 prompt + 2854 completion tokens, "
        "14.3 tokens/s"
    )
    assert EngineStats(samples=4, generate_seconds=2.0, completion_tokens=10).summary() == (
        "4 samples in 2 s, 0 prompt + 10 completion tokens, 5.0 tokens/s"
    )


@pytest.mark.parametrize("model", ["smollm2", "llama3.1", "vllm-cpu:./nowhere"])
def test_an_invalid_dtype_is_a_usage_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    # Before any other check (and long before vLLM would refuse it, after loading torch).
    monkeypatch.setenv(vllm_checks.DTYPE_ENV, "fp32")
    with pytest.raises(BackendUnavailable) as info:
        check_backend(resolve_model(model, {}), BackendContext(tmp_path))
    assert str(info.value) == vllm_checks.DTYPE_INVALID.format(value="fp32")
    assert vllm_checks.DTYPE_ENV in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (None, None),
        ("", None),
        ("auto", "auto"),
        ("BFloat16", "bfloat16"),  # vLLM lower-cases it too
        (" float32 ", "float32"),
        ("half", "half"),
        ("float16", "float16"),
    ],
)
def test_the_dtype_variable_s_valid_values(
    monkeypatch: pytest.MonkeyPatch, value: str | None, dtype: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(vllm_checks.DTYPE_ENV, raising=False)
    else:
        monkeypatch.setenv(vllm_checks.DTYPE_ENV, value)
    assert vllm_checks.engine_dtype() == dtype


def test_a_gpu_is_usable_only_when_vllm_s_share_of_it_is_free() -> None:
    # vLLM refuses to start unless gpu_memory_utilization (0.9) of the whole GPU is free.
    shared = Gpu(0, 80 * GIB, 12 * GIB)
    assert shared.usable == 0
    assert gpus_needed(16 * 10**9, [shared]) is None
    idle = Gpu(0, 80 * GIB, 1 * GIB)
    assert idle.usable == int(80 * GIB * 0.9)
    assert gpus_needed(16 * 10**9, [idle]) == 1


def test_tensor_parallel_takes_the_first_visible_gpus_as_vllm_does() -> None:
    busy, free = Gpu(0, 80 * GIB, 40 * GIB), Gpu(1, 80 * GIB, 0)
    # vLLM's one GPU is CUDA's device 0, whatever GPU 1 has free.
    assert gpus_needed(16 * 10**9, [busy, free]) is None
    assert gpus_needed(16 * 10**9, [free, busy]) == 1


def test_visible_gpus_come_in_cuda_visible_devices_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '0, 81559, 0\\n1, 81559, 40000\\n2, 81559, 10\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,1")
    gpus, why = vllm_checks.visible_gpus()
    assert [gpu.index for gpu in gpus] == [2, 1] and why == ""
    # CUDA stops at an index that does not exist.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,7,0")
    assert [gpu.index for gpu in vllm_checks.visible_gpus()[0]] == [1]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert [gpu.index for gpu in vllm_checks.visible_gpus()[0]] == [0, 1, 2]
