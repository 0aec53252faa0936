"""TensorBoard summaries of frames (`augframe.observe.summaries`): the tags a
`FrameReport` gives, read back from the event files."""

from __future__ import annotations

import cv2
import numpy as np

from augframe.observe.report import FrameReport
from augframe.observe.summaries import FrameSummaryWriter


def read_events(run_dir):
    """`{step: {tag: value}}` from every event file in `run_dir`."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    steps: dict[int, dict] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                tensor = tf.make_ndarray(value.tensor)
                if plugin == "images":
                    width, height, png = tensor.tolist()
                    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
                    assert image.shape[:2] == (int(height), int(width))
                    tensor = image
                steps.setdefault(event.step, {})[value.tag] = (plugin, tensor)
    return steps


def report(generation: int = 2, names=("cat", "dog", "")) -> FrameReport:
    return FrameReport(
        generation=generation,
        class_names=tuple(names),
        class_counts=(6, 6, 6),
        natives=(6, 4, 1),
        variants=(0, 2, 5),
        repeats=(0, 0, 1),
        max_uses=(1, 2, 6),
        available=(9, 4, 1),
        build_seconds=0.5,
        paced_seconds=0.25,
        num_bytes=18 * 8 * 8 * 3,
        aug_p=None,
        pipe_p=None,
    )


def test_a_report_writes_its_scalars_histogram_and_images(tmp_path):
    red = np.zeros((5, 7, 3), np.uint8)
    red[..., 0] = 255  # RGB
    writer = FrameSummaryWriter(tmp_path / "frames")
    writer.write(report(), step=3, images={"frame/samples": red})
    writer.close()
    (tags,) = read_events(tmp_path / "frames").values()
    assert tags["frame/generation"] == ("scalars", 2)
    assert tags["frame/variants"] == ("scalars", 7)
    assert tags["frame/repeats"] == ("scalars", 1)
    assert tags["frame/build_seconds"] == ("scalars", 0.5)
    assert tags["frame/images_per_second"] == ("scalars", 18 / 0.5)  # wall time
    assert tags["class_count/cat"] == ("scalars", 6)
    assert tags["class_variants/dog"] == ("scalars", 2)
    plugin, buckets = tags["frame/labels"]
    assert plugin == "histograms"
    np.testing.assert_array_equal(
        buckets, [[-0.5, 0.5, 6], [0.5, 1.5, 6], [1.5, 2.5, 6]]
    )
    plugin, image = tags["frame/samples"]  # PNG: lossless, read back as BGR
    assert plugin == "images" and image.shape == (5, 7, 3)
    assert (image[..., 2] == 255).all() and (image[..., :2] == 0).all()


def test_an_unnamed_class_is_tagged_by_its_index(tmp_path):
    writer = FrameSummaryWriter(tmp_path)
    writer.write(report(), step=0)
    writer.close()
    tags = read_events(tmp_path)[0]
    assert tags["class_count/class_2"] == ("scalars", 6)
    assert not any(t.startswith("frame/samples") for t in tags)  # no images given


def test_steps_go_to_one_file_until_closed_then_a_new_one(tmp_path):
    writer = FrameSummaryWriter(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written before a report
    writer.write(report(1), step=0)
    writer.write(report(2), step=4)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    writer.close()
    writer.close()  # closing twice is harmless
    writer.write(report(3), step=8)
    writer.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    steps = read_events(tmp_path)
    assert {s: t["frame/generation"][1] for s, t in steps.items()} == {0: 1, 4: 2, 8: 3}
