"""Hot options (`augframe.options.hot`) mean one thing: property, control.json
and the CLI agree.

The same values are accepted by each path, a change takes effect at the same
boundary whichever path made it, and a refused value raises (property), warns
and keeps the last good value (control.json), or exits 2 (CLI).
"""

from __future__ import annotations

import json
import threading
import warnings

import numpy as np
import pytest

from augframe import ConfigError, ControlCallback, ControlFileWarning, FrameSequence
from augframe.balance import Custom, Power, Progressive
from augframe.cli import main
from augframe.options.hot import ControlLink, HotSettings
from augframe.options.registry import HOT_OPTIONS, OPTIONS
from tests.conftest import IMAGE_SIZE, flip_rotate, tiny_model


def make(source, tmp_path, **options):
    defaults = dict(
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=6,
        augment=flip_rotate,
        aug_p=0.2,
        epochs_per_frame=2,
        seed=3,
        verbose=0,
    )
    return FrameSequence(source, **{**defaults, **options})


def end_epochs(seq, count: int) -> None:
    """Training epochs ending, as the epoch clock reports them to the core."""
    for _ in range(count):
        seq.core.end_epoch()


def control(tmp_path, name: str = "control.json"):
    return tmp_path / name


@pytest.fixture
def opened():
    """Sequences to close at the end of a test."""
    made: list[FrameSequence] = []
    yield made
    for seq in made:
        seq.close()


def test_aug_p_by_property_and_by_control_file_change_the_same_frame(
    imbalanced_source, tmp_path, opened
):
    by_property = make(imbalanced_source, tmp_path)
    path = control(tmp_path)
    by_file = make(imbalanced_source, tmp_path, control_file=path)
    opened += [by_property, by_file]
    seq_first = [s.frame.images.copy() for s in opened]
    np.testing.assert_array_equal(*seq_first)  # same seed, same first frame

    end_epochs(by_property, 1)
    end_epochs(by_file, 1)
    # The same change, made during epoch 2 of frame 1 on both paths.
    by_property.aug_p = 0.9
    assert by_property.engine._pending.aug_p == 0.9  # the pending build restarted
    assert main(["control", "set", "aug_p=0.9", "--file", str(path)]) == 0
    end_epochs(by_property, 1)
    end_epochs(by_file, 1)
    assert by_property.generation == by_file.generation == 2
    assert by_property.frame.aug_p == by_file.frame.aug_p == 0.9
    np.testing.assert_array_equal(by_property.frame.images, by_file.frame.images)


def test_epochs_per_frame_auto_needs_background_on_every_path(
    imbalanced_source, tmp_path, opened
):
    path = control(tmp_path)
    seq = make(imbalanced_source, tmp_path, background=False, control_file=path)
    opened.append(seq)
    with pytest.raises(ConfigError, match="background=True"):
        seq.epochs_per_frame = "auto"
    assert seq.epochs_per_frame == 2
    assert main(["control", "set", "epochs_per_frame=auto", "--file", str(path)]) == 0
    with pytest.warns(
        ControlFileWarning, match="background=True.*Keeping epochs_per_frame=2"
    ):
        end_epochs(seq, 1)
    assert seq.epochs_per_frame == 2
    with pytest.raises(ConfigError, match="background=True"):
        make(imbalanced_source, tmp_path, background=False, epochs_per_frame="auto")


def test_example_prob_needs_an_example_dir_on_every_path(
    imbalanced_source, tmp_path, opened
):
    path = control(tmp_path)
    seq = make(imbalanced_source, tmp_path, control_file=path)
    opened.append(seq)
    with pytest.raises(ConfigError, match="example_dir"):
        seq.example_prob = 0.5
    assert seq.example_prob == 0.0
    assert main(["control", "set", "example_prob=0.5", "--file", str(path)]) == 0
    with pytest.warns(
        ControlFileWarning, match="example_dir.*Keeping example_prob=0.0"
    ):
        end_epochs(seq, 1)
    assert seq.example_prob == 0.0

    with_dir = make(
        imbalanced_source,
        tmp_path,
        example_dir=tmp_path / "examples",
        epochs_per_frame=1,
    )
    opened.append(with_dir)
    with_dir.example_prob = 0.5  # applies from the next frame
    end_epochs(with_dir, 1)
    with_dir.core.serving_begins()  # sampled when an epoch first serves it
    end_epochs(with_dir, 1)  # written while it trains: complete at its end
    assert list((tmp_path / "examples").glob("*.jpg"))


@pytest.mark.parametrize(
    "name, bad", [("aug_p", 1.5), ("pipe_p", -0.1), ("epochs_per_frame", 0)]
)
def test_a_value_the_registry_refuses_is_refused_by_every_path(
    imbalanced_source, tmp_path, opened, name, bad
):
    path = control(tmp_path)
    seq = make(imbalanced_source, tmp_path, control_file=path)
    opened.append(seq)
    before = getattr(seq, name)
    with pytest.raises(ConfigError, match=f"`{name}`"):
        setattr(seq, name, bad)
    assert main(["control", "set", f"{name}={bad}", "--file", str(path)]) == 2
    assert json.loads(path.read_text())[name] == before  # the file is untouched
    path.write_text(json.dumps({name: bad}))  # written by hand
    with pytest.warns(ControlFileWarning, match="Keeping the last good values"):
        end_epochs(seq, 1)
    assert getattr(seq, name) == before


def test_every_value_one_path_accepts_the_others_accept(
    imbalanced_source, tmp_path, opened
):
    good = {"aug_p": None, "pipe_p": 0.7, "epochs_per_frame": "auto"}
    path = control(tmp_path)
    seq = make(imbalanced_source, tmp_path, control_file=path)
    other = make(imbalanced_source, tmp_path)
    opened += [seq, other]
    for name, value in good.items():
        setattr(other, name, value)
        text = "null" if value is None else str(value)
        assert main(["control", "set", f"{name}={text}", "--file", str(path)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ControlFileWarning)
        end_epochs(seq, 1)
    for name, value in good.items():
        assert getattr(seq, name) == getattr(other, name) == value


def test_balance_by_property_control_file_and_cli_is_one_policy(
    imbalanced_source, tmp_path, opened
):
    path = control(tmp_path)
    seq = make(imbalanced_source, tmp_path, control_file=path, balance="sqrt")
    opened.append(seq)
    assert seq.balance == Power(0.5)
    assert json.loads(path.read_text())["balance"] == "sqrt"  # its to_json()
    seq.balance = 0.25
    assert seq.balance == Power(0.25)
    assert main(["control", "set", "balance=instance", "--file", str(path)]) == 0
    end_epochs(seq, 1)
    assert seq.balance == Power(1.0)
    path.write_text(json.dumps({"balance": {"progressive": {"epochs": 4}}}))
    end_epochs(seq, 1)
    assert seq.balance == Progressive(epochs=4)
    assert seq.control_values()["balance"] == {"progressive": {"epochs": 4}}
    # A refused policy: ConfigError, exit 2, one warning; the last good one stays.
    with pytest.raises(ConfigError, match="`balance`"):
        seq.balance = "cubic"
    assert main(["control", "set", "balance=1.5", "--file", str(path)]) == 2
    path.write_text(json.dumps({"balance": "cubic"}))
    with pytest.warns(ControlFileWarning, match="Keeping the last good values"):
        end_epochs(seq, 1)
    assert seq.balance == Progressive(epochs=4)


def test_validation_sequences_refuse_hot_options_by_name(imbalanced_source):
    val = FrameSequence.for_validation(
        imbalanced_source, image_size=IMAGE_SIZE, verbose=0
    )
    assert val.aug_p is None and val.epochs_per_frame == 3
    with pytest.raises(ConfigError, match="validation"):
        val.aug_p = 0.5


def test_a_value_set_by_property_survives_an_unrelated_edit_of_the_file(
    imbalanced_source, tmp_path, opened
):
    path = control(tmp_path)
    seq = make(imbalanced_source, tmp_path, control_file=path)
    opened.append(seq)
    seq.aug_p = 0.9
    assert main(["control", "set", "epochs_per_frame=4", "--file", str(path)]) == 0
    end_epochs(seq, 1)
    assert (seq.aug_p, seq.epochs_per_frame) == (0.9, 4)  # the file changed one key
    assert main(["control", "set", "aug_p=0.4", "--file", str(path)]) == 0
    end_epochs(seq, 1)
    assert seq.aug_p == 0.4  # and the file wins when it changes that key


# ------------------------------------------------ settings that cannot change


def _small(**options) -> FrameSequence:
    source = {
        "a": np.zeros((4, 8, 8, 3), np.uint8),
        "b": np.full((4, 8, 8, 3), 200, np.uint8),
    }
    return FrameSequence(source, image_size=(8, 8), batch_size=4, verbose=0, **options)


def test_batch_size_cannot_change_after_construction():
    with _small() as seq:
        with pytest.raises(AttributeError) as caught:
            seq.batch_size = 16
        assert isinstance(caught.value, ConfigError)
        assert "`batch_size` cannot change after construction" in str(caught.value)
        assert "FrameSequence(batch_size=16)" in str(caught.value)
        # nothing diverged: one value, read by len(), seq[i] and tf.data alike
        assert seq.batch_size == 4 and len(seq) == 2 and len(seq[0][1]) == 4
        assert seq.batch_size is seq.core.serving.batch_size


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("preprocess", None),
        ("dtype", "uint8"),
        ("label_mode", "categorical"),
        ("serve_augment", None),
        ("seed", 3),
        ("image_size", (4, 4)),
        ("color_mode", "grayscale"),  # an option with no attribute: refused too
        ("class_names", ["x", "y"]),
        ("epoch", 5),  # derived, read-only
    ],
)
def test_settings_are_read_only(name, value):
    with _small(preprocess=lambda x: x / 255) as seq:
        before = getattr(seq, name, None)
        with pytest.raises(AttributeError, match=f"`{name}`"):
            setattr(seq, name, value)
        assert repr(getattr(seq, name, None)) == repr(before)


def test_hot_keras_and_private_attributes_stay_settable():
    with _small(samples_per_class=4) as seq:
        seq.aug_p = 0.4
        seq.epochs_per_frame = 2
        assert (seq.aug_p, seq.epochs_per_frame) == (0.4, 2)
        seq.workers = 2  # Keras' PyDataset keeps these on the dataset
        seq.max_queue_size = 4
        seq._workers = 1
        seq._mine = "private"
        assert seq._mine == "private" and seq.workers == 1
        with pytest.raises(ConfigError, match="use_multiprocessing"):
            seq.use_multiprocessing = True


def test_fit_with_workers_2_after_refused_setting():
    import keras

    with _small(workers=2, samples_per_class=4) as seq:
        with pytest.raises(AttributeError):
            seq.batch_size = 16
        model = keras.Sequential(
            [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
        )
        model.compile(
            optimizer="sgd",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        history = model.fit(seq, epochs=2, verbose=0)
        assert len(history.history["loss"]) == 2 and seq.epoch == 2


# ------------------------------------------- HotSettings and ControlLink alone


def test_hot_settings_take_their_defaults_from_the_registry():
    hot = HotSettings.of(background=True, writes_examples=False)
    assert hot.values() == {name: OPTIONS[name].default for name in HOT_OPTIONS}


def test_hot_settings_check_tell_listeners_and_say_what_changed():
    hot = HotSettings.of(background=False, writes_examples=True)
    heard: list[frozenset[str]] = []
    hot.subscribe(heard.append)
    assert hot.set("aug_p", 0.3) == "aug_p null (the pipeline's own) -> 0.3"
    assert hot.set("aug_p", 0.3) is None  # unchanged: nobody is told
    assert hot.set("example_prob", 0.5) == "example_prob 0.0 -> 0.5"
    assert heard == [frozenset({"aug_p"}), frozenset({"example_prob"})]
    with pytest.raises(ConfigError, match="background=True"):
        hot.set("epochs_per_frame", "auto")
    with pytest.raises(ConfigError, match="cannot change while `fit` runs"):
        hot.set("batch_size", 4)
    assert hot.epochs_per_frame == OPTIONS["epochs_per_frame"].default


def test_control_link_applies_keeps_and_warns(tmp_path):
    path = tmp_path / "control.json"
    hot = HotSettings.of(aug_p=0.2, background=False, writes_examples=False)
    said: list[str] = []
    link = ControlLink(path, hot, say=said.append)
    assert link.apply() is False  # the file it wrote: nothing new
    path.write_text('{"aug_p": null, "pipe_p": 0.5, "regenerate": true}')
    assert link.apply() is True
    assert (hot.aug_p, hot.pipe_p) == (None, 0.5)  # null restores the pipeline's own
    assert said == [
        "control file: aug_p 0.2 -> null (the pipeline's own), pipe_p null "
        "(the pipeline's own) -> 0.5, regenerate (a new frame now)"
    ]
    path.write_text('{"epochs_per_frame": "auto", "pipe_p": 0.6}')
    with pytest.warns(ControlFileWarning, match="Keeping epochs_per_frame=3"):
        link.apply()
    assert (hot.epochs_per_frame, hot.pipe_p) == (3, 0.6)  # the good key applied
    path.write_text('{"epochs_per_frame": null}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        link.apply()
    assert hot.epochs_per_frame == 3  # null leaves it as it is


def test_a_restored_run_writes_every_key_and_keeps_the_steered_rate(tmp_path):
    path = tmp_path / "control.json"
    path.write_text(json.dumps({"aug_p": 0.3, "learning_rate": 1e-4}))
    hot = HotSettings.of(background=False, writes_examples=False)
    with pytest.warns(ControlFileWarning, match="learning_rate: 0.0001 -> null"):
        link = ControlLink(path, hot, say=lambda line: None)
    hot.set("aug_p", 0.3)  # what a restored state puts back
    link.rewrite()
    written = json.loads(path.read_text())
    assert written["learning_rate"] == 1e-4 and written["aug_p"] == 0.3
    assert set(written) >= {"learning_rate", "regenerate", "stop", *HOT_OPTIONS}


def rare_first(counts, epoch):
    return 1.0 / counts


def test_a_saved_policy_is_restored_from_its_json_form():
    hot = HotSettings.of(background=True, writes_examples=False, balance="sqrt")
    saved = hot.values()
    assert saved["balance"] == "sqrt" and json.loads(json.dumps(saved)) == saved
    other = HotSettings.of(background=True, writes_examples=False)
    other.restore({**saved, "balance": {"progressive": {"epochs": 5}}})
    assert other.balance == Progressive(epochs=5)
    # A callable is saved by name: restored where the same callable is in force.
    mine = HotSettings.of(background=True, writes_examples=False, balance=rare_first)
    assert mine.values()["balance"] == "callable rare_first"
    mine.restore(mine.values())
    assert mine.balance == Custom(rare_first)
    with pytest.raises(ConfigError, match="from Python"):
        other.restore({"balance": "callable rare_first"})
    assert other.balance == Progressive(epochs=5)  # nothing changed


def test_balance_set_from_another_thread_while_fit_runs(imbalanced_source, tmp_path):
    import keras

    path = control(tmp_path)
    seq = make(imbalanced_source, tmp_path, control_file=path, epochs_per_frame=1)
    seen: list[object] = []

    class OtherThread(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            value = ["sqrt", 0.25][epoch]
            thread = threading.Thread(target=setattr, args=(seq, "balance", value))
            thread.start()
            thread.join(timeout=30)
            assert not thread.is_alive()
            seen.append(seq.balance)

    try:
        model = tiny_model(len(seq.class_names))
        model.fit(
            seq,
            epochs=2,
            verbose=0,
            callbacks=[ControlCallback(path), OtherThread()],
        )
        assert seen == [Power(0.5), Power(0.25)]
        assert seq.control_values()["balance"] == 0.25
        assert len(seq.frame.labels) == 6 * len(seq.class_names)  # a fixed total
    finally:
        seq.close()
