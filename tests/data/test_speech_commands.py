"""The Google Speech Commands layout: a tiny archive-shaped folder of WAV clips written in tmp_path."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from parm.data.audio import fit_length, log_mel, read_wav
from parm.data.errors import DataError
from parm.data.formats.speech_commands import CORE_WORDS, is_speech_commands, read_speech_commands


def write_clip(path: Path, samples: int, frequency: float, rate: int = 16_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (8000 * np.sin(2 * np.pi * frequency * np.arange(samples) / rate)).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """yes/ and no/ with 3 clips each (one shorter than 1 s), a word outside the chosen ones, the noise folder."""
    root = tmp_path / "speech_commands_v0.02"
    for w, word in enumerate(("yes", "no", "bed")):
        for c in range(3):
            write_clip(root / word / f"spk{c}_nohash_0.wav", 16_000 - 4_000 * (c == 2), 300.0 + 500 * w + 100 * c)
    write_clip(root / "_background_noise_" / "white_noise.wav", 32_000, 1000.0)
    (root / "testing_list.txt").write_text("yes/spk1_nohash_0.wav\nno/spk1_nohash_0.wav\nbed/spk1_nohash_0.wav\n")
    (root / "validation_list.txt").write_text("yes/spk2_nohash_0.wav\nno/spk2_nohash_0.wav\n")
    return root


def test_reads_train_and_test_by_the_lists(archive: Path) -> None:
    source = read_speech_commands(archive, words=("yes", "no"))
    assert source.classes == ("yes", "no")
    assert source.train.x.shape == (4, 1, 40, 101) and source.train.x.dtype == np.float32
    assert source.train.y.tolist() == [0, 0, 1, 1] and source.test.y.tolist() == [0, 1]
    assert "validation_list.txt included" in source.description
    clip = read_wav(archive / "no" / "spk1_nohash_0.wav")  # the second test clip
    expected = log_mel(torch.from_numpy(fit_length([clip]))).numpy()[0]
    np.testing.assert_allclose(source.test.x[1], expected, rtol=1e-5, atol=1e-5)
    short = read_wav(archive / "yes" / "spk2_nohash_0.wav")  # 0.75 s, padded: train rows are spk0, spk2
    np.testing.assert_allclose(source.train.x[1], log_mel(torch.from_numpy(fit_length([short]))).numpy()[0],
                               rtol=1e-5, atol=1e-5)


def test_detects_the_layout(archive: Path, tmp_path: Path) -> None:
    assert is_speech_commands(archive)
    assert not is_speech_commands(tmp_path)  # the folder above: no lists
    (tmp_path / "images" / "yes").mkdir(parents=True)
    (tmp_path / "images" / "testing_list.txt").write_text("")
    assert not is_speech_commands(tmp_path / "images")  # a list, but no clips


def test_missing_words_and_lists_name_the_fix(archive: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no folder for up, down, left.*words="):
        read_speech_commands(archive, words=CORE_WORDS)
    with pytest.raises(DataError, match=r"no testing_list.txt: point at the unpacked Speech Commands folder"):
        read_speech_commands(tmp_path)
    (archive / "testing_list.txt").write_text("bed/spk1_nohash_0.wav\n")
    with pytest.raises(DataError, match=r"names 0 of the 6 clips of yes, no, leaving no test clips"):
        read_speech_commands(archive, words=("yes", "no"))


def test_a_clip_at_another_rate_names_the_file(archive: Path) -> None:
    write_clip(archive / "yes" / "spk0_nohash_0.wav", 8_000, 300.0, rate=8_000)
    with pytest.raises(DataError, match=r"spk0_nohash_0.wav is sampled at 8000 Hz"):
        read_speech_commands(archive, words=("yes", "no"))
