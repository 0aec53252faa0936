"""Example images: the ring stays bounded, colours are right, contact sheets are saved."""

from __future__ import annotations

import cv2
import numpy as np

from augframe import FrameSequence
from augframe.observe.examples import ExampleRing
from tests.conftest import IMAGE_SIZE, flip_rotate, tiny_model


def test_ring_never_exceeds_its_bound_and_deletes_oldest(tmp_path):
    ring = ExampleRing(tmp_path, max_examples=5)
    image = np.zeros((8, 8, 3), np.uint8)
    for slot in range(12):
        ring.write(image, class_name="a", generation=1, slot=slot)
        assert len(list(tmp_path.glob("*.jpg"))) <= 5
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == [
        f"a_g0001_s{slot:06d}.jpg" for slot in range(7, 12)
    ]


def test_ring_counts_files_left_by_an_earlier_run(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    first = ExampleRing(tmp_path, max_examples=4)
    for slot in range(4):
        first.write(image, class_name="a", generation=1, slot=slot)
    (tmp_path / "notes.txt").write_text("not an example")
    second = ExampleRing(tmp_path, max_examples=4)
    second.write(image, class_name="b", generation=2, slot=0)
    assert len(list(tmp_path.glob("*.jpg"))) == 4
    assert (tmp_path / "notes.txt").exists()  # other files are never touched


def test_examples_have_correct_colours(tmp_path):
    ring = ExampleRing(tmp_path, max_examples=5)
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255  # RGB red
    ring.write(red, class_name="red/../x", generation=3, slot=1)
    (path,) = tmp_path.glob("*.jpg")
    assert path.parent == tmp_path  # class names cannot escape the folder
    bgr = cv2.imread(str(path))
    assert bgr[..., 2].mean() > 240 and bgr[..., 0].mean() < 15


def test_examples_written_during_fit_stay_bounded(tmp_path, imbalanced_source):
    example_dir = tmp_path / "example_images"
    seq = FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=20,
        epochs_per_frame=1,
        augment=flip_rotate,
        aug_p=0.5,
        example_dir=example_dir,
        example_prob=0.5,
        max_examples=7,
        seed=0,
        verbose=0,
    )
    tiny_model(3).fit(seq, epochs=4, verbose=0)
    files = sorted(example_dir.glob("*.jpg"))
    assert len(files) == 7
    generations = {int(p.name.split("_g")[1][:4]) for p in files}
    assert max(generations) == 5
    # A written example is the frame's sample, colours included (JPEG loss only).
    last = next(p for p in files if "_g0005_" in p.name)
    slot = int(last.stem.split("_s")[1])
    written = cv2.cvtColor(cv2.imread(str(last)), cv2.COLOR_BGR2RGB).astype(int)
    sample = seq.frame.images[slot].astype(int)
    error = np.abs(written - sample).mean()
    assert error < np.abs(written - sample[..., ::-1]).mean()  # not BGR
    assert error < 40  # random-noise pixels are JPEG's worst case
    seq.close()


def test_contact_sheet_has_a_row_per_class(tmp_path, imbalanced_source):
    with FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        samples_per_class=6,
        augment=flip_rotate,
        aug_p=0.5,
        seed=0,
        verbose=0,
    ) as seq:
        path = seq.save_contact_sheet(tmp_path / "sheet" / "grid.png", per_class=4)
    grid = cv2.imread(str(path))
    assert grid.shape == (3 * 96, 110 + 4 * 96, 3)
