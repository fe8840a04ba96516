"""``pytest --help`` and ``--collect-only`` import neither openai nor vllm."""

from __future__ import annotations

from pathlib import Path

import pytest

FAKE_MODULE = """
import os
with open(os.environ["PASSK_IMPORT_LOG"], "a") as log:
    log.write(__name__ + "\\n")
"""


@pytest.fixture
def import_log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake openai and vllm packages that log their import."""
    fake = pytester.mkdir("fake_site")
    for name in ("openai", "vllm"):
        package = fake / name
        package.mkdir()
        (package / "__init__.py").write_text(FAKE_MODULE)
    log = pytester.path / "imports.log"
    monkeypatch.setenv("PASSK_IMPORT_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(fake))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return log


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--collect-only", "--passk=1", "--model=replay:samples.jsonl"],
        ["--collect-only"],
    ],
)
def test_heavy_libraries_are_not_imported(
    pytester: pytest.Pytester, import_log: Path, dataset: Path, samples: Path, args: list[str]
) -> None:
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == 0
    assert not import_log.exists(), import_log.read_text()


def test_the_fake_packages_would_be_noticed(pytester: pytest.Pytester, import_log: Path) -> None:
    pytester.makepyfile(test_imports="import openai, vllm\ndef test_x(): pass\n")
    pytester.runpytest_subprocess()
    assert import_log.read_text().split() == ["openai", "vllm"]
