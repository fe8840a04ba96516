"""The SmolLM2 conversion's bookkeeping (no transformers needed: the conversion is faked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.backends import smollm2
from pytest_passk.errors import BackendError


@pytest.fixture
def fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    gguf = tmp_path / "SmolLM2.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(smollm2, "find_gguf", lambda: gguf)
    converted: list[Path] = []

    def convert(source: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        converted.append(out)

    monkeypatch.setattr(smollm2, "_convert", convert)
    return converted


def test_a_conversion_killed_earlier_leaves_no_folder_behind(
    tmp_path: Path, fake_gguf: list[Path]
) -> None:
    """A conversion killed mid-way (SIGKILL, power) leaves its 270 MB work folder: the next one,
    holding the lock no live conversion holds then, removes it.
    """
    folder = smollm2.converted_folder(tmp_path / "store")
    stale = folder.parent / f".converting-{folder.name}-killed"
    stale.mkdir(parents=True)
    # Another folder's conversion (another plugin version's, under its own lock) is left alone.
    other = folder.parent / ".converting-SmolLM2-135M-Instruct-v9-live"
    other.mkdir()
    (stale / "model.safetensors").write_bytes(b"\0" * 1024)
    lines: list[str] = []
    assert smollm2.convert(folder, lines.append) == folder
    assert smollm2.is_converted(folder) and len(fake_gguf) == 1
    assert not stale.exists()
    left = sorted(p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock"))
    assert left == [other.name, folder.name]
    # Converted once: a second call finds the folder and converts nothing.
    smollm2.convert(folder, lines.append)
    assert len(fake_gguf) == 1


def test_a_failed_conversion_is_one_line_and_leaves_nothing(
    tmp_path: Path, fake_gguf: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(source: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"\0")
        raise ValueError("GGUF tensors not mapped:\n  blk.0.attn_q\n  blk.0.attn_k\n")

    monkeypatch.setattr(smollm2, "_convert", broken)
    folder = smollm2.converted_folder(tmp_path / "store")
    with pytest.raises(BackendError) as failure:
        smollm2.convert(folder, lambda line: None)
    message = str(failure.value)
    assert "\n" not in message
    assert message.endswith("ValueError: GGUF tensors not mapped: blk.0.attn_q blk.0.attn_k")
    assert not smollm2.is_converted(folder)
    assert [p for p in folder.parent.iterdir() if not p.name.endswith(".lock")] == []
