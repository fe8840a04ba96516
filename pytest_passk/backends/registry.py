"""Model specs, aliases and the lazy registry of backend providers.

A spec is ``PROVIDER:MODEL`` (``openai:gpt-4o``, ``vllm:meta-llama/...``, ``replay:samples.jsonl``)
or an alias (``gpt-4o``, ``llama3.1``, ``smollm2``, or one of the user's own from ini
``passk_models``). Resolving a spec checks what the provider needs (its extra, a key, a GPU) before
any sample is drawn; the provider's module is imported only when a backend is built.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pytest_passk.backends import Backend, BackendContext, ModelSpec
from pytest_passk.errors import BackendUnavailable, ModelSpecError
from pytest_passk.version import package_version

if TYPE_CHECKING:
    from pytest_passk.backends.openai_client import ServerTarget

__all__ = [
    "BUILTIN_ALIASES",
    "DEFAULT_MODEL",
    "MODEL_ERROR",
    "BackendContext",
    "ModelSpec",
    "build_backend",
    "check_backend",
    "resolve_model",
]

DEFAULT_MODEL = "smollm2"
#: Every problem with one ``--model``, as the user sees it.
MODEL_ERROR = "--model={label}: {error}"
BUILTIN_ALIASES: Mapping[str, str] = {
    "gpt-4o": "openai:gpt-4o",
    "gpt-4o-mini": "openai:gpt-4o-mini",
    "llama3.1": "vllm:meta-llama/Llama-3.1-8B-Instruct",
    "llama3.1-70b": "vllm:meta-llama/Llama-3.1-70B-Instruct",
    "smollm2": "vllm-cpu:HuggingFaceTB/SmolLM2-135M-Instruct",
}


def resolve_model(
    text: str, aliases: Mapping[str, str], plugin_providers: Collection[str] = ()
) -> ModelSpec:
    """Turn ``--model`` text into a :class:`ModelSpec`, following aliases.

    ``plugin_providers`` are provider names that plugins serve through the
    ``pytest_passk_make_backend`` hook.

    Raises:
        ModelSpecError: for an unknown alias or provider, or an empty model name.

    """
    label = text.strip()
    spec = label
    seen: list[str] = []
    # A user's alias may name another alias (``fast = gpt-4o-mini``); follow the chain.
    while ":" not in spec:
        target = aliases.get(spec) or BUILTIN_ALIASES.get(spec)
        if target is None:
            break
        seen.append(spec)
        spec = target.strip()
        if spec in seen:
            chain = " -> ".join([*seen, spec])
            raise ModelSpecError(
                f"model {label!r}: the aliases loop ({chain}); fix ini passk_models"
            )
    provider, sep, name = spec.partition(":")
    via = f" (alias for {spec!r})" if spec != label else ""
    if not sep:
        known = ", ".join(sorted({*BUILTIN_ALIASES, *aliases}))
        providers = ", ".join(PROVIDERS)
        raise ModelSpecError(
            f"unknown model {label!r}{via}: give PROVIDER:MODEL (providers: {providers}) "
            f"or an alias ({known}); add your own in ini passk_models as 'name = spec' lines"
        )
    if provider not in PROVIDERS and provider not in plugin_providers:
        raise ModelSpecError(
            f"unknown provider {provider!r} in model {label!r}{via}; known providers: "
            f"{', '.join([*PROVIDERS, *plugin_providers])}"
        )
    if not name.strip():
        raise ModelSpecError(f"model {label!r}{via} names no model after {provider + ':'!r}")
    return ModelSpec(label=label, provider=provider, name=name.strip())


def build_backend(model: ModelSpec, context: BackendContext) -> Backend:
    """Check the provider's needs, import its module, and construct the backend.

    Raises:
        BackendUnavailable: with the fix (an extra to install, a key to set, a GPU to use).

    """
    return _provider(model).build(model, context)


def check_backend(model: ModelSpec, context: BackendContext) -> Backend | None:
    """Cheap checks of what ``model`` needs (extra, key, GPU), without loading anything.

    Returns:
        The backend itself when building it costs no more than checking (a recording is parsed
        now, so a malformed line fails before collection); else ``None``.

    Raises:
        BackendUnavailable: with the fix.
        RecordingError: for a missing or malformed recording, naming file:line.
    """
    provider = _provider(model)
    if provider.check is None:
        return provider.build(model, context)
    provider.check(model, context)
    return None


def _provider(model: ModelSpec) -> Provider:
    provider = PROVIDERS.get(model.provider)
    if provider is None:
        raise ModelSpecError(
            f"model {model.label!r}: no plugin built a backend for provider {model.provider!r}; "
            "its pytest_passk_make_backend hook must return one"
        )
    return provider


@dataclass(frozen=True, slots=True)
class Provider:
    """How to check for and build one provider's backends."""

    build: Callable[[ModelSpec, BackendContext], Backend]
    #: Cheap checks before any model loads; ``None`` when building is itself that cheap (no
    #: model to load), so the backend is built at configure time instead.
    check: Callable[[ModelSpec, BackendContext], None] | None = None


def _replay_path(model: ModelSpec, context: BackendContext) -> Path:
    path = Path(model.name).expanduser()
    base = Path(model.base_dir) if model.base_dir is not None else context.base_dir
    return path if path.is_absolute() else base / path


def _fake(model: ModelSpec, context: BackendContext) -> Backend:
    from pytest_passk.backends.fake import build_fake

    return build_fake(model, context)


def _replay(model: ModelSpec, context: BackendContext) -> Backend:
    from pytest_passk.backends.replay import ReplayBackend

    return ReplayBackend(_replay_path(model, context))


def _vllm(device: str) -> Provider:
    """The vLLM provider on NVIDIA GPUs (``cuda``) or on the CPU; its checks import no vLLM."""

    def check(model: ModelSpec, context: BackendContext) -> None:
        from pytest_passk.backends import vllm_checks

        (vllm_checks.check_cuda_model if device == "cuda" else vllm_checks.check_cpu_model)(
            model, context
        )

    def build(model: ModelSpec, context: BackendContext) -> Backend:
        # The backend's module imports vLLM itself only when its engine starts.
        from pytest_passk.backends import vllm

        if device == "cuda":
            return vllm.build_cuda_model(model, context)
        return vllm.build_cpu_model(model, context)

    return Provider(build, check)


def _openai_target(model: ModelSpec, context: BackendContext) -> ServerTarget:
    from pytest_passk.backends.openai_client import OpenAIEndpoint, ServerTarget

    endpoint = OpenAIEndpoint.COMPLETIONS if model.provider == "openai-completions" else None
    return ServerTarget.from_environment(
        model.name, endpoint or OpenAIEndpoint.CHAT, context.base_url
    )


def _openai_check(model: ModelSpec, context: BackendContext) -> None:
    from pytest_passk.backends.openai_client import check_target

    check_target(_openai_target(model, context))


def _openai(model: ModelSpec, context: BackendContext) -> Backend:
    # Only the small module of our own is imported here; the openai package when it is used.
    from pytest_passk.backends.openai import build_openai_backend

    return build_openai_backend(_openai_target(model, context), context)


def _pending(provider: str, needs: str) -> Provider:
    """A provider whose backend is a later milestone: its spec resolves, its use is refused."""

    def refuse(model: ModelSpec, context: BackendContext) -> NoReturn:
        # Said before anything else: installing an extra for a backend that is not there yet
        # would cost a user gigabytes for nothing.
        raise BackendUnavailable(
            f"model {model.label!r} ({model.spec}): the {provider} backend is not part of "
            f"pytest-passk {package_version()} yet (it will need {needs}); sample with your own "
            "tooling and run --model=replay:SAMPLES.jsonl"
        )

    return Provider(refuse, refuse)


#: Provider name -> checks and factory. A new backend is a new module plus one line here.
PROVIDERS: Mapping[str, Provider] = {
    "replay": Provider(_replay),
    "fake": Provider(_fake),
    "openai": Provider(_openai, _openai_check),
    "openai-completions": Provider(_openai, _openai_check),
    "vllm": _vllm("cuda"),
    "vllm-cpu": _vllm("cpu"),
}
