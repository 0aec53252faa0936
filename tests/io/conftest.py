"""Helpers of the io tests: image files written by OpenCV, photo-like pixels,
and a fresh interpreter for what could crash or exhaust this one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from augframe.io.decode.arrays import resize
from augframe.io.decode.files import decode_image


def write_image(path: Path, image: np.ndarray | None = None, *, seed: int = 0) -> str:
    """Writes `image` (BGR order, as OpenCV expects), or random pixels."""
    if image is None:
        image = np.random.default_rng(seed).integers(
            0, 256, (12, 10, 3), dtype=np.uint8
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix.lower(), image)
    assert ok
    path.write_bytes(data.tobytes())
    return str(path)


def photo(seed: int, *, height: int, width: int) -> np.ndarray:
    """A photo-like BGR image: smooth colours, fine grain and a few shapes."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, size=(6, 6, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(
        rng.normal(0, 25, size=image.shape).astype(np.float32), (0, 0), 1.5
    )
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    for _ in range(4):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.ellipse(image, (x, y), (40, 25), 30.0, 0, 360, color, thickness=-1)
        cv2.rectangle(image, (y, x), (y + 50, x + 30), color, thickness=-1)
    return image


def write_photo(path: Path, image: np.ndarray, *params: int) -> str:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90, *params])
    assert ok
    path.write_bytes(data.tobytes())
    return str(path)


def full_then_resized(path: str, size: tuple[int, int]) -> np.ndarray:
    return resize(decode_image(path), size)


def reduced_then_resized(path: str, size: tuple[int, int]) -> np.ndarray:
    return resize(decode_image(path, target_size=size), size)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


def run_python(code: str, timeout: float = 240) -> dict[str, Any]:
    """Runs `code` in a fresh interpreter; its last output line is JSON.

    A crash (SIGSEGV inside a native library) fails the test, not pytest.
    """
    env = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), *sys.path]
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, (
        f"exit {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return json.loads(lines[-1])
