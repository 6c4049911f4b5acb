"""The paper's other tasks through the same commands as images (issue 18): a box regressor on a CUB-200-2011
folder and a keyword classifier on a Speech Commands folder, each trained, coded, evaluated and replayed."""

import wave

import numpy as np
import pytest
from PIL import Image

from parm.bench.replay import replay
from parm.cli import main
from parm.data.formats.speech_commands import CORE_WORDS
from parm.serving import ServeOptions


def _write_cub(root, n=48, side=32, seed=0):
    """n images, each a bright rectangle on a dark field, its box in bounding_boxes.txt (x y width height)."""
    rng = np.random.default_rng(seed)
    lines = {"images.txt": [], "bounding_boxes.txt": [], "train_test_split.txt": []}
    for i in range(1, n + 1):
        w, h = rng.integers(8, 24, 2)
        x, y = rng.integers(0, side - w), rng.integers(0, side - h)
        pixels = np.full((side, side, 3), 20, np.uint8)
        pixels[y : y + h, x : x + w] = 230
        path = f"001.Bird/{i}.png"
        (root / "images" / "001.Bird").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "images" / path)
        lines["images.txt"].append(f"{i} {path}")
        lines["bounding_boxes.txt"].append(f"{i} {x} {y} {w} {h}")
        lines["train_test_split.txt"].append(f"{i} {int(i % 4 != 0)}")
    for name, rows in lines.items():
        (root / name).write_text("\n".join(rows) + "\n")
    return root


def _write_speech_commands(root, clips=5):
    """The 10 core words, each a tone of its own pitch, ``clips`` 1 s clips per word; the last one is for test."""
    tests = []
    for w, word in enumerate(CORE_WORDS):
        for c in range(clips):
            path = root / word / f"s{c}_nohash_0.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            tone = 6000 * np.sin(2 * np.pi * (200 + 350 * w + 5 * c) * np.arange(16_000) / 16_000)
            with wave.open(str(path), "wb") as handle:
                handle.setnchannels(1)
                handle.setsampwidth(2)
                handle.setframerate(16_000)
                handle.writeframes(tone.astype("<i2").tobytes())
        tests.append(f"{word}/s{clips - 1}_nohash_0.wav")
    (root / "testing_list.txt").write_text("\n".join(tests) + "\n")
    (root / "validation_list.txt").write_text("")
    return root


@pytest.mark.parametrize("task", ["localization", "speech"])
def test_train_code_evaluate_and_replay_a_task_with_the_image_commands(task, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data"
    if task == "localization":
        _write_cub(folder)
        model, measure, name = "small-cnn", "mean IoU", "data-small-cnn-sum-k2-r1"
    else:
        _write_speech_commands(folder)
        model, measure, name = "lenet5", "accuracy", "data-lenet5-sum-k2-r1"
    common = ["--dataset", str(folder), "--no-progress"]
    assert main(["train-base", *common, "--model", model, "--epochs", "2"]) == 0
    assert main(["train-parity", *common, "--model", model, "--k", "2", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"{measure}: A_a" in printed and "default baseline" in printed
    run = tmp_path / "runs" / "parity" / name
    assert main(["evaluate", str(run)]) == 0
    table = capsys.readouterr().out
    assert f"| {measure} | sum | 2 | 1 |" in table
    report = replay(run, ServeOptions(), queries=8, concurrency=2, progress=False)
    assert report.answered == 8 and report.task == ("localization" if task == "localization" else "classification")
    assert measure in report.table()
    scored = [v for v in report.accuracy.values() if v is not None]
    assert scored and all(0.0 <= v <= 1.0 for v in scored)
