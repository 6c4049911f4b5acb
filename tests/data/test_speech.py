"""The espeak-commands dataset: a tiny synthesized set (5 clips per word) checked for shape, labels, speaker split
and determinism; the tests that need espeak-ng are skipped, visibly, without it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from parm.data import speech
from parm.data.cache import load_source
from parm.data.dataset import SourceData
from parm.data.errors import DataError
from parm.data.speech import (
    SPEAKERS,
    TEST_EVERY,
    WORDS,
    fetch_speech_source,
    make_speech_source,
    pink_noise,
    speak,
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed: apt-get install espeak-ng (make does it)"
)


@pytest.fixture(scope="module")
def tiny() -> SourceData:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: apt-get install espeak-ng (make does it)")
    return make_speech_source(clips_per_word=TEST_EVERY, seed=0)


def test_speakers_split_a_fifth_held_out() -> None:
    held_out = SPEAKERS[TEST_EVERY - 1 :: TEST_EVERY]
    assert len(SPEAKERS) == 40 and len(held_out) == 8
    assert {s.split("+")[0] for s in held_out} == {s.split("+")[0] for s in SPEAKERS}  # every accent is tested
    assert {s.split("+")[1] for s in held_out} == {s.split("+")[1] for s in SPEAKERS}  # and every variant


def test_shapes_labels_and_split(tiny: SourceData) -> None:
    assert tiny.classes == WORDS and tiny.task == "classification"
    assert tiny.train.x.shape == (40, 1, 40, 101) and tiny.test.x.shape == (10, 1, 40, 101)
    assert tiny.train.x.dtype == np.float32 and bool(np.isfinite(tiny.train.x).all())
    np.testing.assert_array_equal(np.bincount(tiny.train.y), [4] * 10)
    np.testing.assert_array_equal(np.bincount(tiny.test.y), [1] * 10)
    assert "synthesized speech (not recordings)" in tiny.description and "espeak" in tiny.description.lower()
    assert tiny.train.x.std() > 1.0  # speech over noise, not a constant floor


def test_byte_identical_per_seed(tiny: SourceData) -> None:
    again = make_speech_source(clips_per_word=TEST_EVERY, seed=0)
    assert again.train.x.tobytes() == tiny.train.x.tobytes() and again.test.x.tobytes() == tiny.test.x.tobytes()
    assert not np.array_equal(make_speech_source(clips_per_word=TEST_EVERY, seed=1).train.x, tiny.train.x)


@needs_espeak
def test_speak_trims_silence_at_16_khz() -> None:
    samples = speak("yes", "en-us+m1", 175, 50)
    assert samples.dtype == np.float32 and 1_600 < len(samples) < 16_000  # 0.1-1 s of speech
    peak = np.abs(samples).max()
    assert abs(samples[0]) >= 0.01 * peak and abs(samples[-1]) >= 0.01 * peak


def test_fetch_caches(monkeypatch: pytest.MonkeyPatch, tmp_path, tiny: SourceData) -> None:
    monkeypatch.setattr(speech, "CLIPS_PER_WORD", TEST_EVERY)
    first = fetch_speech_source(tmp_path)
    assert first.train.x.tobytes() == tiny.train.x.tobytes()
    assert load_source(tmp_path, "espeak-commands") is not None

    def no_synthesis(**_: object) -> None:
        raise AssertionError("synthesized again instead of reading the cache")

    monkeypatch.setattr(speech, "make_speech_source", no_synthesis)
    np.testing.assert_array_equal(fetch_speech_source(tmp_path).test.x, tiny.test.x)


def test_missing_espeak_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech.shutil, "which", lambda _: None)
    with pytest.raises(DataError, match=r"espeak-ng, which is not installed.*apt-get install espeak-ng"):
        make_speech_source(clips_per_word=TEST_EVERY)


def test_too_few_clips_per_word() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        make_speech_source(clips_per_word=2)


def test_pink_noise_has_unit_rms_and_falls_with_frequency() -> None:
    pink = pink_noise(np.random.default_rng(0).standard_normal((64, 16_000)))
    np.testing.assert_allclose(np.sqrt(np.mean(pink**2, axis=1)), 1.0, rtol=1e-12)
    power = np.mean(np.abs(np.fft.rfft(pink, axis=1)) ** 2, axis=0)
    low, high = power[95:106].mean(), power[950:1051].mean()  # 1/f: ten times the frequency, a tenth the power
    assert 5 < low / high < 20
