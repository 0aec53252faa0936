"""Prints a digest of the frames and batches of fixed configurations.

A refactor that must not change behaviour runs this before and after and
compares the output line by line: the same seed must give the same frames
(generations 1-3) and the same batches, whatever the code's structure.

Example:
    python scripts/frame_digests.py > before.txt
    # ... change the code ...
    python scripts/frame_digests.py | diff before.txt -
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np

import augframe


def _images(count: int, seed: int, size: tuple[int, int] = (20, 24)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, *size, 3), dtype=np.uint8)


def _source() -> dict[str, np.ndarray]:
    return {"rich": _images(40, 1), "medium": _images(10, 2), "scarce": _images(2, 3)}


def _folder(root: Path) -> Path:
    for name, images in _source().items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images):
            ok, data = cv2.imencode(".png", image)
            assert ok
            (root / name / f"{i:03d}.png").write_bytes(data.tobytes())
    return root


def _digest(*arrays: Any) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _frames(seq: Any, generations: int = 3) -> list[str]:
    out = []
    for g in range(generations):
        if g:
            seq.regenerate()
        batches = [seq[i] for i in range(len(seq))]
        out.append(
            f"g{g + 1} frame {_digest(*seq.as_arrays())} "
            f"batches {_digest(*[a for b in batches for a in b])}"
        )
    return out


CONFIGS: dict[str, dict[str, Any]] = {
    "balanced-light-threads": dict(augment="light", num_build_workers=2),
    "balanced-medium-1worker": dict(augment="medium", num_build_workers=1),
    "heavy-gray": dict(augment="heavy", color_mode="grayscale"),
    "natives-once": dict(samples_per_class=None, augment=None),
    "processes": dict(augment="light", build_processes=True, num_build_workers=2),
    "float32-labels-cat": dict(
        augment="light", dtype="float32", label_mode="categorical"
    ),
    "rolling": dict(augment="light", refresh="rolling"),
    "shard-1-of-2": dict(augment="light", shard=(1, 2)),
}


def main() -> None:
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUGFRAME_CACHE_DIR"] = str(Path(tmp) / "cache")
        folder = _folder(Path(tmp) / "data")
        for name, extra in CONFIGS.items():
            options: dict[str, Any] = dict(
                image_size=(16, 16), batch_size=8, samples_per_class=12, seed=7
            )
            options.update(extra)
            kind = "arrays"
            try:
                with augframe.FrameSequence(_source(), verbose=0, **options) as seq:
                    lines = _frames(seq)
                with augframe.FrameSequence.from_directory(
                    folder, verbose=0, **options
                ) as seq:
                    lines += [f"dir {line}" for line in _frames(seq)]
            except Exception as exc:  # a configuration this version refuses
                lines = [f"{kind} refused: {type(exc).__name__}"]
            for line in lines:
                print(f"{name}: {line}")
        with augframe.FrameSequence.for_validation(
            _source(), image_size=(16, 16), batch_size=8, verbose=0
        ) as val:
            print(f"validation: {_frames(val, 1)[0]}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
