"""Audio features for keyword spotting: WAV decoding, 1 s clips and log-mel spectrograms, in numpy and torch.

The settings are those of the Speech Commands keyword-spotting literature (Warden, 2018; Zhang et al., "Hello
Edge", 2017): 16 kHz, 30 ms Hann windows every 10 ms, 40 mel bands, so one second is a 40 x 101 image.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from parm.data.errors import DataError

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # one second
N_FFT = 512
WIN_LENGTH = 480  # 30 ms
HOP_LENGTH = 160  # 10 ms
N_MELS = 40
F_MIN = 0.0
F_MAX = SAMPLE_RATE / 2
LOG_FLOOR = 1e-6  # log(mel + LOG_FLOOR): silence stays finite
PCM_SCALE = 32768.0  # int16 to [-1, 1)


def read_wav_bytes(data: bytes, *, name: str = "WAV data") -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM WAV bytes as float32 samples in [-1, 1), with their sample rate.

    Tolerates the placeholder sizes of a WAV streamed to a pipe (``espeak-ng --stdout`` writes 0x7ffff000):
    the samples are whatever the file holds.
    """
    try:
        with wave.open(io.BytesIO(data)) as handle:
            channels, width, rate = handle.getnchannels(), handle.getsampwidth(), handle.getframerate()
            frames = handle.readframes(handle.getnframes())
    except (wave.Error, EOFError) as err:
        raise DataError(f"{name} is not a PCM WAV file ({err}): convert it, e.g. `sox IN -b 16 OUT.wav`") from err
    if channels != 1:
        raise DataError(f"{name} has {channels} channels, not one: mix it down to mono, e.g. `sox IN OUT.wav "
                        "channels 1` or `ffmpeg -i IN -ac 1 OUT.wav`")
    if width != 2:
        raise DataError(f"{name} has {8 * width}-bit samples, not 16-bit PCM: convert it, e.g. `sox IN -b 16 "
                        "OUT.wav` or `ffmpeg -i IN -c:a pcm_s16le OUT.wav`")
    samples = np.frombuffer(frames, dtype="<i2", count=len(frames) // 2)
    return (samples / np.float32(PCM_SCALE)).astype(np.float32), rate


def read_wav(path: Path | str) -> np.ndarray:
    """A 16 kHz mono 16-bit PCM WAV file as float32 samples in [-1, 1)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path} ({err}): check that the file exists and is readable") from err
    samples, rate = read_wav_bytes(data, name=str(path))
    if rate != SAMPLE_RATE:
        raise DataError(f"{path} is sampled at {rate} Hz, not {SAMPLE_RATE} Hz: resample it, e.g. "
                        f"`sox IN OUT.wav rate {SAMPLE_RATE}` or `ffmpeg -i IN -ar {SAMPLE_RATE} OUT.wav`")
    return samples


def fit_length(waves: Sequence[np.ndarray], samples: int = CLIP_SAMPLES) -> np.ndarray:
    """Clips of any lengths as one float32 (B, samples) matrix: zeros appended to short ones, long ones cut at
    the end (as the Speech Commands reference code does)."""
    out = np.zeros((len(waves), samples), dtype=np.float32)
    for row, wave_ in zip(out, waves):
        kept = wave_[:samples]
        row[: len(kept)] = kept
    return out


def resample(wave_: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample along the last axis by FFT (band-limited interpolation, as `scipy.signal.resample`).

    Exact for periodic band-limited signals; a clip that starts and ends in silence (speech) has no wrap-around
    to smear. Downsampling drops everything above the new Nyquist frequency, so nothing aliases.
    """
    if from_rate == to_rate:
        return wave_.astype(np.float32)
    n = wave_.shape[-1]
    m = round(n * to_rate / from_rate)
    spectrum = np.fft.rfft(wave_.astype(np.float64), axis=-1)
    kept = min(n, m) // 2 + 1
    out = np.zeros((*spectrum.shape[:-1], m // 2 + 1), dtype=np.complex128)
    out[..., :kept] = spectrum[..., :kept]
    if m < n and m % 2 == 0:
        out[..., m // 2] = 0  # the new Nyquist bin: a cosine there is ambiguous with its alias
    return (np.fft.irfft(out, m, axis=-1) * (m / n)).astype(np.float32)


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """The HTK mel scale: mel(f) = 2595 log10(1 + f / 700)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """The inverse of `hz_to_mel`: f = 700 (10^(mel / 2595) - 1)."""
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_band_edges(n_mels: int = N_MELS, f_min: float = F_MIN, f_max: float = F_MAX) -> torch.Tensor:
    """The ``n_mels + 2`` frequencies (Hz, float64), equally spaced in mel, that bound and centre the triangles:
    band m rises from edge m to its centre, edge m + 1, and falls to edge m + 2."""
    return mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2,
                                    dtype=torch.float64))


def mel_filterbank(frequencies: torch.Tensor, n_mels: int = N_MELS, f_min: float = F_MIN,
                   f_max: float = F_MAX) -> torch.Tensor:
    """Triangular mel filters evaluated at ``frequencies`` (Hz): float32 (n_mels, len(frequencies)).

    The HTK filterbank (Young et al., The HTK Book 3.4, sec. 5.4 "Filterbank Analysis"): triangles equally spaced
    on the mel scale, each 1 at its centre and 0 at its neighbours' centres, without area normalisation.
    """
    edges = mel_band_edges(n_mels, f_min, f_max)
    freqs = torch.as_tensor(frequencies, dtype=torch.float64)[None, :]
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def stft_frequencies(n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """The centre frequencies (Hz) of the ``n_fft // 2 + 1`` bins of a one-sided STFT."""
    return torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)


def num_frames(samples: int = CLIP_SAMPLES) -> int:
    """Frames of a centred STFT: one per hop, plus the frame at time zero (101 for one second)."""
    return 1 + samples // HOP_LENGTH


def log_mel(waves: torch.Tensor) -> torch.Tensor:
    """Log-mel spectrograms of a batch of 16 kHz clips (B, samples): float32 (B, 1, N_MELS, frames).

    Power spectrum of a centred (reflect-padded) STFT with a periodic Hann window, through the HTK filterbank,
    then log(mel + LOG_FLOOR).
    """
    if waves.ndim != 2:
        raise ValueError(f"expected a batch of clips (B, samples), got shape {tuple(waves.shape)}")
    waves = waves.float()
    window = torch.hann_window(WIN_LENGTH, device=waves.device)
    spectrum = torch.stft(waves, N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window=window,
                          center=True, return_complex=True)
    power = spectrum.real.square() + spectrum.imag.square()  # (B, N_FFT // 2 + 1, frames)
    filters = mel_filterbank(stft_frequencies()).to(waves.device)
    return torch.log(torch.matmul(filters, power) + LOG_FLOOR).unsqueeze(1)

