"""Model specs: providers, built-in and ini aliases, and the messages for bad specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.backends.registry import (
    BUILTIN_ALIASES,
    DEFAULT_MODEL,
    PROVIDERS,
    BackendContext,
    ModelSpec,
    build_backend,
    resolve_model,
)
from pytest_passk.backends.replay import ReplayBackend
from pytest_passk.errors import ModelSpecError, RecordingError


@pytest.mark.parametrize(
    ("text", "provider", "name"),
    [
        ("openai:gpt-4o", "openai", "gpt-4o"),
        ("vllm:meta-llama/Llama-3.1-8B-Instruct", "vllm", "meta-llama/Llama-3.1-8B-Instruct"),
        ("replay:samples.jsonl", "replay", "samples.jsonl"),
        ("replay:C:/data/s.jsonl", "replay", "C:/data/s.jsonl"),  # only the first colon splits
        ("  openai:gpt-4o-mini  ", "openai", "gpt-4o-mini"),
    ],
)
def test_provider_specs(text: str, provider: str, name: str) -> None:
    model = resolve_model(text, {})
    assert (model.provider, model.name) == (provider, name)
    assert model.label == text.strip()
    assert model.spec == f"{provider}:{name}"


def test_contract_aliases() -> None:
    expected = {
        "gpt-4o": "openai:gpt-4o",
        "gpt-4o-mini": "openai:gpt-4o-mini",
        "llama3.1": "vllm:meta-llama/Llama-3.1-8B-Instruct",
        "llama3.1-70b": "vllm:meta-llama/Llama-3.1-70B-Instruct",
    }
    for alias, spec in expected.items():
        model = resolve_model(alias, {})
        assert (model.label, model.spec) == (alias, spec)
    assert DEFAULT_MODEL == "smollm2"
    smollm2 = resolve_model(DEFAULT_MODEL, {})
    assert smollm2.name.endswith("SmolLM2-135M-Instruct")
    assert set(expected) | {"smollm2"} == set(BUILTIN_ALIASES)


def test_ini_aliases_resolve_and_shadow_builtins() -> None:
    aliases = {"mine": "replay:runs/mine.jsonl", "gpt-4o": "openai:gpt-4o-2024-08-06"}
    assert resolve_model("mine", aliases) == ModelSpec("mine", "replay", "runs/mine.jsonl")
    assert resolve_model("gpt-4o", aliases).spec == "openai:gpt-4o-2024-08-06"


def test_ini_alias_may_name_another_alias() -> None:
    aliases = {"fast": "gpt-4o-mini", "default": "fast"}
    assert resolve_model("default", aliases) == ModelSpec("default", "openai", "gpt-4o-mini")


def test_alias_loop_is_reported() -> None:
    with pytest.raises(ModelSpecError) as info:
        resolve_model("a", {"a": "b", "b": "a"})
    assert str(info.value) == "model 'a': the aliases loop (a -> b -> a); fix ini passk_models"


def test_unknown_alias_lists_providers_aliases_and_the_fix() -> None:
    with pytest.raises(ModelSpecError) as info:
        resolve_model("gpt-5-ultra", {"mine": "replay:x.jsonl"})
    message = str(info.value)
    assert message.startswith("unknown model 'gpt-5-ultra': give PROVIDER:MODEL (providers: ")
    for name in [*PROVIDERS, *BUILTIN_ALIASES, "mine"]:
        assert name in message
    assert message.endswith("add your own in ini passk_models as 'name = spec' lines")


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ModelSpecError) as info:
        resolve_model("anthropic:claude", {})
    assert str(info.value) == (
        "unknown provider 'anthropic' in model 'anthropic:claude'; known providers: "
        + ", ".join(PROVIDERS)
    )


def test_bad_ini_alias_names_its_target() -> None:
    with pytest.raises(
        ModelSpecError, match=r"unknown provider 'hf' in model 'x' \(alias for 'hf:m'\)"
    ):
        resolve_model("x", {"x": "hf:m"})


@pytest.mark.parametrize("text", ["openai:", "replay:   "])
def test_empty_model_name(text: str) -> None:
    provider = text.split(":")[0]
    with pytest.raises(ModelSpecError, match=rf"names no model after '{provider}:'"):
        resolve_model(text, {})


def test_empty_spec_is_unknown() -> None:
    with pytest.raises(ModelSpecError, match="unknown model ''"):
        resolve_model("   ", {})


def test_replay_paths_are_relative_to_the_base_dir(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"task_id": "A", "completion": "x"}\n', encoding="utf-8")
    backend = build_backend(resolve_model("replay:s.jsonl", {}), BackendContext(tmp_path))
    assert isinstance(backend, ReplayBackend)
    assert backend.model == f"replay:{tmp_path / 's.jsonl'}"
    absolute = build_backend(
        resolve_model(f"replay:{tmp_path / 's.jsonl'}", {}), BackendContext(Path("/elsewhere"))
    )
    assert absolute.model == backend.model


def test_replay_of_a_missing_file_fails_when_built(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="does not exist"):
        build_backend(resolve_model("replay:nope.jsonl", {}), BackendContext(tmp_path))
