"""The README's example and examples/existing_trainer.py run as shown."""

import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_readme_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- example:start -->\s*```python\n(.*?)```", text, re.S)
    assert block, "README.md lost its runnable example block"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 30
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(_write(tmp_path / "readme_example.py", code)))
    adp = namespace["adp"]
    assert adp.forwarded_samples == round(0.7 * 2000 * 6)  # budget 0.7 of 6 full epochs, exactly
    assert adp.kept_indices.numel() == round((1 - adp.prune_ratio) * 2000)  # the ratio the budget solved for
    assert adp.export_path.is_file() and tmp_path in adp.export_path.parents


@pytest.mark.slow
def test_existing_trainer_example_runs_on_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["existing_trainer.py"])
    namespace = runpy.run_path(str(ROOT / "examples" / "existing_trainer.py"))
    result = namespace["main"](["--epochs", "2", "--limit-batches", "0.05", "--out", str(tmp_path)])
    assert 0.0 <= result["test/acc"] <= 1.0
    assert (tmp_path / "pruned_subset.json").is_file()


def _write(path: Path, code: str) -> Path:
    path.write_text(code)
    return path


def test_the_custom_method_example_is_short_and_runs(monkeypatch, capsys):
    path = ROOT / "examples" / "custom_method.py"
    assert len(path.read_text().splitlines()) <= 30
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    runpy.run_path(str(path), run_name="__main__")
    assert "forwarded 2400 of 4000 samples" in capsys.readouterr().out  # budget 0.6 of 4 epochs of 1000
