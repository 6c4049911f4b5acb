"""The GPU suite runs end to end on the CPU in its tiny mode, so it is known to work before a GPU is at hand."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_suite.py"


def load_suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", SUITE)
    module = sys.modules["gpu_suite"] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_tiny_suite_trains_every_stage_and_writes_its_figures(tmp_path, synthetic_fashion_mnist):
    suite = load_suite()
    assert suite.main(["--tiny", "--device", "cpu", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]) == 0
    report = json.loads((tmp_path / "out" / "suite.json").read_text())
    assert [row["stage"] for row in report["stages"]] == [stage.name for stage in suite.STAGES]
    assert report["hardware"]["device"] == "cpu" and report["hardware"]["torch"]
    base, *coded = report["stages"]
    assert base["images_per_second"] > 0 and 0 <= base["A_a"] <= 1 and base["epochs_run"] == 1
    assert all(row["groups_per_second"] > 0 and 0 <= row["A_d"] <= 1 for row in coded)
    assert "| concat-k2 |" in (tmp_path / "out" / "suite.md").read_text()


def test_a_spent_budget_skips_the_optional_stages_only(tmp_path, synthetic_fashion_mnist, monkeypatch):
    suite = load_suite()
    ran = []
    monkeypatch.setattr(suite, "run_stage", lambda stage, *rest: ran.append(stage.name) or
                        {"stage": stage.name, "epochs_run": 1, "epochs_planned": 1, "best_epoch": 1, "batch_size": 1,
                         "train_seconds": 0.0, "A_a": 0.5})
    suite.main(["--tiny", "--device", "cpu", "--budget-s", "0", "--out", str(tmp_path / "out")])
    assert ran == [stage.name for stage in suite.STAGES if stage.required]
