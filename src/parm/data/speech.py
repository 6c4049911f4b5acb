"""``espeak-commands``: a synthetic stand-in for Google Speech Commands, the paper's speech-recognition task.

The ten core words of Speech Commands (yes, no, up, down, left, right, on, off, stop, go) *synthesized* by the
espeak-ng formant synthesizer: not recordings of people, so a model trained here says nothing about real speech
(use `parm.data.formats.speech_commands` with the real archive for that). It gives the task the same shape: 1 s
16 kHz clips as 40 x 101 log-mel spectrograms, ten classes, varied speakers, timing, loudness and noise.

Each clip is one "speaker" (an accent with a voice variant, `SPEAKERS`) saying a word at a random speed and pitch,
resampled from espeak-ng's 22,050 Hz to 16 kHz, trimmed of silence, placed at a random time inside the second,
scaled to a random loudness and mixed with white or pink noise at a random SNR. Speech Commands splits by speaker
so that test voices are never heard in training; so does this: every fifth speaker (`TEST_EVERY`) is held out,
8 of the 40, so the test split is exactly a fifth of every word's clips. Everything is drawn from one seeded
generator and espeak-ng is deterministic, so a seed gives byte-identical data on every call (with one espeak-ng
version, named in the description).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from parm.data.audio import CLIP_SAMPLES, SAMPLE_RATE, fit_length, log_mel, read_wav_bytes, resample
from parm.data.cache import cache_path, default_cache_dir, is_cached, load_source, save_source
from parm.data.dataset import LabeledArrays, SourceData
from parm.data.errors import DataError
from parm.data.formats.speech_commands import CORE_WORDS

NAME = "espeak-commands"  # the dataset's name and cache key
WORDS = CORE_WORDS
CLIPS_PER_WORD = 360  # 10 words x 360 = 3,600 clips: 2,880 train, 720 test
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029")  # `espeak-ng --voices=en`
VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4")  # `espeak-ng --voices=variant`: male and female
SPEAKERS = tuple(f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS)
TEST_EVERY = 5  # speakers 4, 9, 14, ... are the test speakers: every accent and every variant among them
SPEED_WPM = (130, 210)  # espeak-ng -s, words per minute (its default is 175), drawn per clip, both ends included
PITCH = (30, 70)  # espeak-ng -p, 0-99 (default 50)
LOUDNESS_DBFS = (-35.0, -15.0)  # RMS of the spoken word, relative to full scale
SNR_DB = (5.0, 30.0)  # speech to noise RMS
PINK_SHARE = 0.5  # the share of clips with pink (1/f) rather than white noise
TRIM_LEVEL = 0.01  # samples under 1% of a clip's peak (-40 dB) at its ends are silence, trimmed
CHUNK = 256  # clips synthesized and transformed at once: 16 MB of samples, whatever the set's size
ESPEAK_TIMEOUT_S = 30.0
INSTALL_FIX = "install espeak-ng (`apt-get install espeak-ng`, which `make` does where it can)"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Plan:
    """Every clip's word, speaker and random draws (the noise is drawn chunk by chunk, after these)."""

    label: np.ndarray  # int64 (N,)
    speaker: np.ndarray  # index into SPEAKERS
    speed: np.ndarray
    pitch: np.ndarray
    shift: np.ndarray  # in [0, 1): where the word starts, as a share of the room left in the second
    loudness_dbfs: np.ndarray
    snr_db: np.ndarray
    pink: np.ndarray  # bool


def _plan(clips_per_word: int, rng: np.random.Generator) -> _Plan:
    n = clips_per_word * len(WORDS)
    index = np.tile(np.arange(clips_per_word), len(WORDS))
    return _Plan(
        label=np.repeat(np.arange(len(WORDS), dtype=np.int64), clips_per_word),
        speaker=index % len(SPEAKERS),
        speed=rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1, n),
        pitch=rng.integers(PITCH[0], PITCH[1] + 1, n),
        shift=rng.random(n),
        loudness_dbfs=rng.uniform(*LOUDNESS_DBFS, n),
        snr_db=rng.uniform(*SNR_DB, n),
        pink=rng.random(n) < PINK_SHARE,
    )


def espeak_version() -> str:
    """``espeak-ng --version``'s first words (``eSpeak NG text-to-speech: 1.51``), or a DataError naming the fix."""
    if shutil.which("espeak-ng") is None:
        raise DataError(f"the {NAME} dataset is spoken by espeak-ng, which is not installed: {INSTALL_FIX}")
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=ESPEAK_TIMEOUT_S)
    return out.stdout.split("  Data at")[0].strip()


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """One word from espeak-ng at 16 kHz, float32, with the silence at both ends trimmed."""
    command = ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), "-p", str(pitch), word]
    try:
        done = subprocess.run(command, capture_output=True, check=True, timeout=ESPEAK_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as err:
        detail = (getattr(err, "stderr", None) or b"").decode(errors="replace").strip() or err
        raise DataError(f"`{' '.join(command)}` failed ({detail}): check the voice with `espeak-ng --voices=en`, "
                        "or reinstall espeak-ng (`apt-get install espeak-ng`)") from err
    samples, rate = read_wav_bytes(done.stdout, name=f"espeak-ng output for {word!r} ({voice})")
    samples = resample(samples, rate, SAMPLE_RATE)
    peak = np.abs(samples).max(initial=0.0)
    if peak == 0:
        raise DataError(f"espeak-ng said nothing for `{' '.join(command)}`: check that voice {voice} is installed "
                        f"(`espeak-ng --voices=en`), {INSTALL_FIX}")
    loud = np.flatnonzero(np.abs(samples) >= TRIM_LEVEL * peak)
    return samples[loud[0] : loud[-1] + 1]


def pink_noise(white: np.ndarray) -> np.ndarray:
    """Rows of white noise shaped to a 1/f power spectrum (amplitude 1/sqrt(f), no DC), at unit RMS."""
    spectrum = np.fft.rfft(white, axis=-1)
    freqs = np.fft.rfftfreq(white.shape[-1])
    spectrum *= np.concatenate([[0.0], 1.0 / np.sqrt(freqs[1:])])
    pink = np.fft.irfft(spectrum, white.shape[-1], axis=-1)
    return pink / np.sqrt(np.mean(pink**2, axis=-1, keepdims=True))


def _mix(clips: list[np.ndarray], plan: _Plan, rows: slice, rng: np.random.Generator) -> np.ndarray:
    """Place, scale and add noise to one chunk of clips: float32 (B, CLIP_SAMPLES) in [-1, 1]."""
    lengths = np.minimum([len(c) for c in clips], CLIP_SAMPLES)
    waves = fit_length(clips)
    offsets = np.floor(plan.shift[rows] * (CLIP_SAMPLES - lengths + 1)).astype(np.int64)
    source = np.arange(CLIP_SAMPLES)[None, :] - offsets[:, None]  # sample t of a row is the clip's t - offset
    waves = np.where(source >= 0, np.take_along_axis(waves, np.maximum(source, 0), axis=1), 0.0)
    speech_rms = np.sqrt(np.sum(waves.astype(np.float64) ** 2, axis=1) / lengths)
    waves = waves * (10 ** (plan.loudness_dbfs[rows] / 20) / speech_rms)[:, None]
    white = rng.standard_normal(waves.shape)
    noise = np.where(plan.pink[rows, None], pink_noise(white), white)
    noise_rms = 10 ** ((plan.loudness_dbfs[rows] - plan.snr_db[rows]) / 20)
    return np.clip(waves + noise * noise_rms[:, None], -1.0, 1.0).astype(np.float32)


def make_speech_source(*, clips_per_word: int, seed: int = 0, progress: bool = False) -> SourceData:
    """Synthesize ``clips_per_word`` clips of each word (at least `TEST_EVERY`, so every word has test clips).

    espeak-ng runs in one subprocess per clip, as many at once as there are CPUs.
    """
    if clips_per_word < TEST_EVERY:
        raise ValueError(f"clips_per_word must be at least {TEST_EVERY}, so that every word has a test speaker")
    version = espeak_version()
    rng = np.random.Generator(np.random.PCG64(seed))
    plan = _plan(clips_per_word, rng)
    features = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool, \
            tqdm(total=len(plan.label), desc=f"{NAME} (espeak-ng)", unit="clip", disable=not progress) as bar:
        for start in range(0, len(plan.label), CHUNK):
            rows = slice(start, start + CHUNK)
            jobs = zip([WORDS[i] for i in plan.label[rows]], [SPEAKERS[i] for i in plan.speaker[rows]],
                       plan.speed[rows].tolist(), plan.pitch[rows].tolist())
            clips = list(pool.map(lambda job: speak(*job), jobs))
            features.append(log_mel(torch.from_numpy(_mix(clips, plan, rows, rng))).numpy())
            bar.update(len(clips))
    x = np.concatenate(features)
    test = plan.speaker % TEST_EVERY == TEST_EVERY - 1
    return SourceData(
        train=LabeledArrays(x[~test], plan.label[~test]),
        test=LabeledArrays(x[test], plan.label[test]),
        classes=WORDS,
        description=(f"{version} synthesized speech (not recordings): {len(WORDS)} words x {clips_per_word} clips, "
                     f"{len(SPEAKERS)} accent+variant speakers, the test split every {TEST_EVERY}th speaker; "
                     f"seed {seed}"),
    )


def fetch_speech_source(cache_dir: Path | None = None, refresh: bool = False) -> SourceData:
    """The ``espeak-commands`` source from the data cache, synthesized (half a minute on two cores) and cached
    when missing or damaged."""
    cache_dir = cache_dir or default_cache_dir()
    source = None if refresh else load_source(cache_dir, NAME)
    if source is None:
        if not refresh and is_cached(cache_dir, NAME):  # said, so that a slow rebuild is not a mystery
            log.warning("the dataset cache at %s was damaged and is being rebuilt", cache_path(cache_dir, NAME))
        source = make_speech_source(clips_per_word=CLIPS_PER_WORD, progress=True)
        save_source(cache_dir, NAME, source)
    return source
