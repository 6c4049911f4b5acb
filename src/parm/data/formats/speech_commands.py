"""Google Speech Commands (Warden, 2018) as its archive unpacks: one folder per word of 1 s 16 kHz WAV clips,
with ``validation_list.txt`` and ``testing_list.txt`` naming held-out clips by relative path.

The lists split by speaker (a hash of the speaker id), so a test speaker is never heard in training.
`SourceData` has train and test only: the test split is ``testing_list.txt``, and the train split is every other
clip of the chosen words, the validation list included (`parm.data.splits` cuts its own validation split from
it). Clips are log-mel spectrograms (`parm.data.audio.log_mel`), (N, 1, 40, 101) float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from parm.data.audio import fit_length, log_mel, read_wav
from parm.data.dataset import LabeledArrays, SourceData
from parm.data.errors import DataError

CORE_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")  # the ten commands of the task
TESTING_LIST = "testing_list.txt"
VALIDATION_LIST = "validation_list.txt"
BATCH = 512  # clips decoded and transformed at once: 32 MB of samples


def is_speech_commands(path: Path) -> bool:
    """Whether ``path`` holds ``testing_list.txt`` and a core word's folder of WAV clips."""
    return (path / TESTING_LIST).is_file() and any(next((path / w).glob("*.wav"), None) for w in CORE_WORDS)


def _testing(path: Path) -> frozenset[str]:
    """The relative paths (``word/clip.wav``) that ``testing_list.txt`` names."""
    return frozenset(line.strip() for line in (path / TESTING_LIST).read_text().splitlines() if line.strip())


def _features(files: list[Path]) -> np.ndarray:
    """Log-mel spectrograms of the clips, BATCH at a time so that only the features of all are held."""
    parts = [log_mel(torch.from_numpy(fit_length([read_wav(f) for f in files[i : i + BATCH]]))).numpy()
             for i in range(0, len(files), BATCH)]
    return np.concatenate(parts)


def read_speech_commands(path: Path | str, *, words: Sequence[str] = CORE_WORDS) -> SourceData:
    """The clips of ``words`` (labels in that order): train = all but ``testing_list.txt``, test = that list.

    Clips shorter than 1 s are padded with silence at the end. Any clip that is not 16 kHz mono 16-bit PCM is
    an error naming the file and the conversion, since Speech Commands ships no such clip.
    """
    path = Path(path).expanduser()
    if not (path / TESTING_LIST).is_file():
        raise DataError(f"{path} has no {TESTING_LIST}: point at the unpacked Speech Commands folder (the one "
                        f"holding {TESTING_LIST}, {VALIDATION_LIST} and one folder of .wav clips per word)")
    missing = [w for w in words if not (path / w).is_dir()]
    if missing:
        raise DataError(f"{path} has no folder for {', '.join(missing)}: choose words among its folders "
                        f"(words=...) or unpack the full archive there")
    testing = _testing(path)
    files: dict[bool, list[Path]] = {False: [], True: []}
    labels: dict[bool, list[int]] = {False: [], True: []}
    for label, word in enumerate(words):
        for file in sorted((path / word).glob("*.wav")):
            held_out = f"{word}/{file.name}" in testing
            files[held_out].append(file)
            labels[held_out].append(label)
    if not files[True] or not files[False]:
        raise DataError(f"{path}: {TESTING_LIST} names {len(files[True])} of the {sum(map(len, files.values()))} "
                        f"clips of {', '.join(words)}, leaving no {'test' if not files[True] else 'train'} clips: "
                        "use the lists the archive ships")
    train, test = (LabeledArrays(_features(files[h]), np.array(labels[h], dtype=np.int64)) for h in (False, True))
    return SourceData(
        train=train,
        test=test,
        classes=tuple(words),
        description=f"Speech Commands {path} ({len(train)} train clips, {VALIDATION_LIST} included; "
                    f"{len(test)} test clips from {TESTING_LIST}; {len(words)} words)",
    )
