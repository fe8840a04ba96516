"""What a vLLM engine did in a run: starts, seconds and tokens, for the terminal and the report."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineStats", "add_stats"]


@dataclass(frozen=True, slots=True)
class EngineStats:
    """What the engine did in this run, for the report."""

    #: Engine starts (0 when every sample came from the store), and their seconds.
    starts: int = 0
    load_seconds: float = 0.0
    #: Seconds the engine spent generating, and that times the devices it ran on.
    generate_seconds: float = 0.0
    device_seconds: float = 0.0
    device: str = "cpu"
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens per second of generation."""
        return self.completion_tokens / self.generate_seconds if self.generate_seconds else 0.0

    def summary(self) -> str:
        """One line for the terminal: engine starts, samples, tokens and their rate."""
        started = f"{self.starts} engine start(s) in {self.load_seconds:.0f} s, "
        return (
            f"{started if self.starts else ''}{self.samples} samples in "
            f"{self.generate_seconds:.0f} s, {self.prompt_tokens} prompt + "
            f"{self.completion_tokens} completion tokens, {self.tokens_per_second:.1f} tokens/s"
        )


def add_stats(stats: EngineStats, **more: float) -> EngineStats:
    """``stats`` with ``more`` added to the fields it names."""
    values = {name: getattr(stats, name) + value for name, value in more.items()}
    return EngineStats(
        **{
            "starts": stats.starts,
            "load_seconds": stats.load_seconds,
            "generate_seconds": stats.generate_seconds,
            "device_seconds": stats.device_seconds,
            "device": stats.device,
            "samples": stats.samples,
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            **values,
        }
    )
