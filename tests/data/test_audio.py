"""Audio features: the HTK mel scale and filterbank checked against their formulas, STFT frames, pure tones,
resampling, and WAV decoding with its errors."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from parm.data.audio import (
    N_MELS,
    SAMPLE_RATE,
    fit_length,
    hz_to_mel,
    log_mel,
    mel_band_edges,
    mel_filterbank,
    mel_to_hz,
    num_frames,
    read_wav,
    read_wav_bytes,
    resample,
    stft_frequencies,
)
from parm.data.errors import DataError


def tone(frequency: float, samples: int = SAMPLE_RATE, rate: int = SAMPLE_RATE) -> np.ndarray:
    return (0.5 * np.sin(2 * math.pi * frequency * np.arange(samples) / rate)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, *, rate: int = SAMPLE_RATE, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def test_htk_mel_scale_values() -> None:
    assert float(hz_to_mel(0.0)) == 0.0
    assert float(hz_to_mel(700.0)) == pytest.approx(2595 * math.log10(2), rel=1e-12)
    assert float(hz_to_mel(1000.0)) == pytest.approx(999.98554, abs=1e-5)  # the scale's anchor: 1 kHz ~ 1000 mel
    hz = torch.tensor([0.0, 123.0, 1000.0, 8000.0], dtype=torch.float64)
    torch.testing.assert_close(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)


def test_band_edges_are_equally_spaced_in_mel() -> None:
    edges = mel_band_edges()
    assert len(edges) == N_MELS + 2 and float(edges[0]) == 0.0
    assert float(edges[-1]) == pytest.approx(SAMPLE_RATE / 2, rel=1e-12)
    steps = torch.diff(hz_to_mel(edges))
    torch.testing.assert_close(steps, torch.full_like(steps, float(hz_to_mel(8000.0)) / (N_MELS + 1)))


def test_triangles_peak_at_one_at_their_centres_and_vanish_at_their_neighbours() -> None:
    edges = mel_band_edges()
    at_edges = mel_filterbank(edges)  # (N_MELS, N_MELS + 2): band m is 1 at edge m + 1, 0 at every other edge
    expected = torch.zeros(N_MELS, N_MELS + 2)
    expected[torch.arange(N_MELS), torch.arange(N_MELS) + 1] = 1.0
    torch.testing.assert_close(at_edges, expected, rtol=0, atol=1e-6)
    halfway = (edges[1:-1] + edges[2:]) / 2  # between band m's centre and its upper edge it is linear
    torch.testing.assert_close(mel_filterbank(halfway).diagonal(), torch.full((N_MELS,), 0.5), rtol=0, atol=1e-6)


def test_filterbank_on_stft_bins() -> None:
    filters = mel_filterbank(stft_frequencies())
    assert filters.shape == (N_MELS, 257) and filters.dtype == torch.float32
    assert float(filters.min()) == 0.0 and float(filters.max()) <= 1.0
    assert bool((filters.sum(dim=1) > 0).all())  # 512-point bins are fine enough that no band is empty


@pytest.mark.parametrize("samples", [16_000, 8_000, 15_999, 400])
def test_frame_count(samples: int) -> None:
    features = log_mel(torch.zeros(2, samples))
    assert features.shape == (2, 1, N_MELS, num_frames(samples)) and features.dtype == torch.float32
    assert num_frames() == 101 and features.shape[-1] == 1 + samples // 160


def test_silence_is_the_log_floor() -> None:
    torch.testing.assert_close(log_mel(torch.zeros(1, 16_000)), torch.full((1, 1, N_MELS, 101), math.log(1e-6)))


def test_a_pure_tone_lands_in_the_band_holding_its_frequency() -> None:
    bands = [3, 12, 20, 31, 38]
    centres = mel_band_edges()[1:-1][bands]
    waves = torch.from_numpy(np.stack([tone(float(f)) for f in centres]))
    energy = log_mel(waves).mean(dim=-1)[:, 0]  # (tones, N_MELS), batched in one call
    assert energy.argmax(dim=1).tolist() == bands


def test_fit_length_pads_and_crops() -> None:
    out = fit_length([np.ones(3, np.float32), np.arange(20, dtype=np.float32), np.zeros(0, np.float32)], samples=10)
    assert out.shape == (3, 10) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], [1, 1, 1] + [0] * 7)
    np.testing.assert_array_equal(out[1], np.arange(10))
    np.testing.assert_array_equal(out[2], np.zeros(10))


def test_resample_a_whole_number_of_cycles_is_exact() -> None:
    out = resample(tone(440.0, 22_050, 22_050), 22_050, SAMPLE_RATE)  # espeak-ng's rate to ours
    assert out.shape == (SAMPLE_RATE,) and out.dtype == np.float32
    np.testing.assert_allclose(out, tone(440.0), atol=1e-5)
    batch = np.stack([tone(100.0, 8_000, 8_000), tone(300.0, 8_000, 8_000)])
    np.testing.assert_allclose(resample(batch, 8_000, SAMPLE_RATE), np.stack([tone(100.0), tone(300.0)]), atol=1e-5)


def test_resample_drops_what_lies_above_the_new_nyquist() -> None:
    assert np.abs(resample(tone(10_000.0, 22_050, 22_050), 22_050, SAMPLE_RATE)).max() < 1e-5


def test_read_wav_round_trip(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 12345], dtype="<i2")
    samples = read_wav(write_wav(tmp_path / "a.wav", pcm))
    assert samples.dtype == np.float32
    np.testing.assert_array_equal(samples, pcm / 32768.0)
    assert samples.min() == -1.0 and samples.max() < 1.0


def test_read_wav_bytes_keeps_any_rate(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "b.wav", np.arange(4, dtype="<i2"), rate=22_050)
    samples, rate = read_wav_bytes(path.read_bytes())
    assert rate == 22_050 and samples.shape == (4,)


def test_wrong_rate_stereo_width_and_garbage_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"8000 Hz, not 16000 Hz: resample it"):
        read_wav(write_wav(tmp_path / "slow.wav", np.zeros(8, "<i2"), rate=8_000))
    with pytest.raises(DataError, match=r"2 channels.*mix it down to mono"):
        read_wav(write_wav(tmp_path / "stereo.wav", np.zeros(8, "<i2"), channels=2))
    with pytest.raises(DataError, match=r"8-bit samples, not 16-bit PCM"):
        read_wav(write_wav(tmp_path / "byte.wav", np.zeros(8, np.uint8), width=1))
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(DataError, match=r"text.wav is not a PCM WAV file"):
        read_wav(tmp_path / "text.wav")
    with pytest.raises(DataError, match=r"cannot read"):
        read_wav(tmp_path / "missing.wav")


def test_log_mel_wants_a_batch() -> None:
    with pytest.raises(ValueError, match="batch"):
        log_mel(torch.zeros(16_000))
