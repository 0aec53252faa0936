"""Parity with `keras.utils.image_dataset_from_directory` for the file-based
constructors: color_mode, interpolation, crop/pad to the aspect ratio,
follow_links, file_paths and from_dataframe."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
import yaml

import augframe.io.decode.files
import augframe.io.stores
from augframe import CacheWarning, ConfigError, FrameSequence, SourceError
from augframe.augment.pipeline import A
from augframe.io.cache import build_cache
from augframe.io.decode.arrays import Decoding, resize
from augframe.io.decode.files import decode_image, load_image
from augframe.io.listing import collect_directory

SIZE = (16, 16)
QUIET = {"verbose": 0}


def write(path: Path, bgr: np.ndarray) -> str:
    """Writes an image (BGR or BGRA, as OpenCV expects); returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, bgr)
    assert ok
    path.write_bytes(data.tobytes())
    return str(path)


def colour_folder(root: Path, counts: dict[str, int], *, size=(24, 32)) -> Path:
    """`root/<class>/<i>.jpg`: smooth random colour images (JPEG-friendly)."""
    rng = np.random.default_rng(7)
    for name, count in counts.items():
        for i in range(count):
            small = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
            image = cv2.resize(small, size[::-1], interpolation=cv2.INTER_LINEAR)
            write(root / name / f"{i:03d}.jpg", image)
    return root


@pytest.fixture
def decodes(monkeypatch, tmp_path) -> list[str]:
    """The files of this test decoded by the stores (the real decoder, counted)."""
    calls: list[str] = []
    real = augframe.io.decode.files.decode_image

    def counting(path, **kwargs):
        if Path(path).is_relative_to(tmp_path):
            calls.append(os.fspath(path))
        return real(path, **kwargs)

    monkeypatch.setattr(augframe.io.decode.files, "decode_image", counting)
    return calls


# -------------------------------------------------------------------- color_mode


@pytest.mark.parametrize(
    "color_mode, channels", [("rgb", 3), ("grayscale", 1), ("rgba", 4)]
)
def test_color_mode_gives_batches_of_its_channel_count(tmp_path, color_mode, channels):
    data = colour_folder(tmp_path / "data", {"a": 6, "b": 4})
    train, val = FrameSequence.from_directory(
        data,
        image_size=SIZE,
        batch_size=4,
        color_mode=color_mode,
        samples_per_class=6,
        validation_split=0.25,
        subset="both",
        seed=0,
        augment="heavy",
        aug_p=1.0,
        pipe_p=1.0,
        **QUIET,
    )
    with train, val:
        assert train[0][0].shape == (4, *SIZE, channels)
        assert val[0][0].shape[1:] == (*SIZE, channels)
        assert train.as_arrays()[0].dtype == np.float32


def test_grayscale_is_the_luma_of_rgb_and_rgba_keeps_alpha(tmp_path):
    data = colour_folder(tmp_path / "data", {"a": 3})
    rgbs = FrameSequence.from_directory(data, image_size=SIZE, validation=True, **QUIET)
    grays = FrameSequence.from_directory(
        data, image_size=SIZE, validation=True, color_mode="grayscale", **QUIET
    )
    rgb, gray = rgbs.as_arrays()[0], grays.as_arrays()[0]
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(gray[..., 0] - luma).mean() < 2.0  # libjpeg's luma, not ours
    # A PNG with alpha keeps it; a JPEG (no alpha) is opaque.
    bgra = np.zeros((20, 20, 4), np.uint8)
    bgra[..., 2], bgra[:, :10, 3], bgra[:, 10:, 3] = 200, 0, 255
    png = write(tmp_path / "alpha.png", bgra)
    jpg = write(tmp_path / "opaque.jpg", bgra[..., :3])
    alpha = load_image(png, image_size=(20, 20), decoding=Decoding(color_mode="rgba"))
    assert alpha.shape == (20, 20, 4)
    assert alpha[..., 3].tolist() == bgra[..., 3].tolist()
    assert alpha[..., 0].min() == 200  # red stays red (RGB order)
    opaque = decode_image(jpg, color_mode="rgba")
    assert (opaque[..., 3] == 255).all()
    assert decode_image(png, color_mode="grayscale").shape == (20, 20, 1)


def test_arrays_and_stores_follow_color_mode(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (4, 20, 20, 3), dtype=np.uint8)
    seq = FrameSequence(
        {"a": rgb, "b": rgb[:2]}, image_size=SIZE, color_mode="grayscale", **QUIET
    )
    assert seq[0][0].shape[-1] == 1
    assert not hasattr(seq, "file_paths")
    with pytest.raises(AttributeError, match="built from arrays"):
        _ = seq.file_paths
    store = augframe.io.stores.ArrayStore(
        np.zeros((2, *SIZE, 1), np.uint8), np.array([0, 1])
    )
    source = augframe.StoreSource(store, ["a", "b"])
    with pytest.raises(ConfigError, match="serves 'grayscale' images"):
        FrameSequence(source, image_size=SIZE, **QUIET)
    assert (
        FrameSequence(source, image_size=SIZE, color_mode="grayscale", **QUIET)[0][
            0
        ].shape[-1]
        == 1
    )


def test_a_pipeline_of_yours_that_cannot_take_the_channels_is_refused_by_name(
    tmp_path, decodes
):
    data = colour_folder(tmp_path / "data", {"a": 3, "b": 3})
    noisy = A.Compose([A.HorizontalFlip(), A.ISONoise()])
    with pytest.raises(ConfigError, match=r"color_mode='grayscale'.*ISONoise"):
        FrameSequence.from_directory(
            data, image_size=SIZE, color_mode="grayscale", augment=noisy, **QUIET
        )
    with pytest.raises(ConfigError, match=r"'rgba'.*HueSaturationValue.*ToGray"):
        FrameSequence.from_directory(
            data,
            image_size=SIZE,
            color_mode="rgba",
            augment=lambda aug_p, pipe_p: A.Compose(
                [A.HueSaturationValue(), A.ToGray()], p=pipe_p
            ),
            **QUIET,
        )
    assert decodes == []  # refused before any image was decoded


def test_the_decoded_cache_is_never_reused_for_another_color_mode(tmp_path):
    data = colour_folder(tmp_path / "data", {"a": 3, "b": 2})
    cache = tmp_path / "cache"
    for mode, channels in (("rgb", 3), ("grayscale", 1)):
        seq = FrameSequence.from_directory(
            data,
            image_size=SIZE,
            cache_dir=cache,
            color_mode=mode,
            validation=True,
            **QUIET,
        )
        assert seq[0][0].shape[-1] == channels
    assert sorted(p.name for p in cache.iterdir()) == ["16x16", "16x16-grayscale"]
    manifest = json.loads((cache / "16x16-grayscale" / "manifest.json").read_text())
    assert manifest["decoding"]["color_mode"] == "grayscale"
    # An rgb cache copied under the grayscale folder's name is rebuilt, not served.
    shutil.rmtree(cache / "16x16-grayscale")
    shutil.copytree(cache / "16x16", cache / "16x16-grayscale")
    paths, labels, _ = collect_directory(data)
    with pytest.warns(CacheWarning, match="built with color_mode='rgb'"):
        store = build_cache(
            paths,
            labels,
            cache_dir=cache,
            image_size=SIZE,
            decoding=Decoding(color_mode="grayscale"),
        )
    assert store.load(0).shape == (*SIZE, 1) and store.stats.num_decoded == 5


@pytest.mark.parametrize("color_mode", ["grayscale", "rgba"])
def test_examples_and_contact_sheets_stay_viewable(tmp_path, color_mode):
    data = colour_folder(tmp_path / "data", {"a": 3, "b": 3})
    seq = FrameSequence.from_directory(
        data,
        image_size=SIZE,
        color_mode=color_mode,
        samples_per_class=3,
        example_dir=tmp_path / "examples",
        example_prob=1.0,
        **QUIET,
    )
    sheet = seq.save_contact_sheet(tmp_path / "sheet.png", per_class=2)
    seq.close()
    files = [sheet, *sorted((tmp_path / "examples").glob("*.jpg"))]
    assert len(files) == 7
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.shape[2] == 3, file


# ----------------------------------------------------------------- interpolation


def test_unknown_interpolation_and_crop_with_pad_are_refused_before_decoding(
    tmp_path, decodes
):
    data = colour_folder(tmp_path / "data", {"a": 2})
    with pytest.raises(
        ConfigError,
        match="'bilinear', 'nearest', 'bicubic', 'area', "
        "'lanczos3', 'lanczos5', 'gaussian', 'mitchellcubic'",
    ):
        FrameSequence.from_directory(data, image_size=SIZE, interpolation="cubic")
    with pytest.raises(ConfigError, match="Only one of them"):
        FrameSequence.from_directory(
            data, image_size=SIZE, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True
        )
    with pytest.raises(ConfigError, match="`color_mode`"):
        FrameSequence.from_directory(data, image_size=SIZE, color_mode="bgr")
    assert decodes == []


def test_nearest_gives_keras_pixels_of_the_full_image(tmp_path):
    """No reduced JPEG decode for "nearest": exactly Keras' nearest resize."""
    rng = np.random.default_rng(3)
    path = write(tmp_path / "big.jpg", rng.integers(0, 256, (256, 200, 3), np.uint8))
    full = decode_image(path)
    for interpolation in ("nearest", "area"):
        got = load_image(
            path, image_size=(40, 30), decoding=Decoding(interpolation=interpolation)
        )
        if interpolation == "nearest":
            expected = keras.ops.image.resize(full, (40, 30), interpolation="nearest")
            assert np.array_equal(got, np.asarray(expected).astype(np.uint8))
        else:  # reduced decode allowed: close to the full decode, not equal
            assert (
                np.abs(
                    got.astype(int) - resize(full, (40, 30), interpolation="area")
                ).mean()
                < 4
            )
    enlarged = resize(full[:20, :20], (40, 40), interpolation="bilinear")
    keras_up = np.asarray(
        keras.ops.image.resize(full[:20, :20].astype("float32"), (40, 40))
    )
    assert np.abs(enlarged - keras_up).max() <= 1


@pytest.mark.parametrize(
    "interpolation",
    [
        "bilinear",
        "nearest",
        "bicubic",
        "area",
        "lanczos3",
        "lanczos5",
        "gaussian",
        "mitchellcubic",
    ],
)
def test_every_keras_filter_name_resizes_any_channel_count(interpolation):
    image = np.random.default_rng(0).integers(0, 256, (96, 70, 1), np.uint8)
    for size in ((16, 20), (120, 90), (96, 70)):
        out = resize(image, size, interpolation=interpolation)
        assert out.shape == (*size, 1) and out.dtype == np.uint8
    # A large image is box-reduced before the filter: it follows the mean.
    assert (
        abs(
            float(resize(image, (12, 9), interpolation=interpolation).mean())
            - float(image.mean())
        )
        < 12
    )


# ----------------------------------------------------------------- aspect ratio


def circle_jpeg(path: Path) -> str:
    """A white disc of diameter 100 in the middle of a 120x240 black canvas."""
    canvas = np.zeros((120, 240, 3), np.uint8)
    cv2.circle(canvas, (120, 60), 50, (255, 255, 255), -1, cv2.LINE_AA)
    return write(path, canvas)


def disc_box(sample: np.ndarray) -> tuple[int, int]:
    """(height, width) of the bright pixels' bounding box."""
    rows, cols = np.nonzero(sample[..., 0] > 127)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_crop_or_pad_to_the_aspect_ratio_keeps_a_circle_round(tmp_path):
    circle_jpeg(tmp_path / "data" / "disc" / "0.jpg")
    made = {}
    for name, options in (
        ("stretch", {}),
        ("crop", {"crop_to_aspect_ratio": True}),
        ("pad", {"pad_to_aspect_ratio": True}),
    ):
        seq = FrameSequence.from_directory(
            tmp_path / "data", image_size=(48, 48), validation=True, **options, **QUIET
        )
        made[name] = seq.as_arrays()[0][0]
    height, width = disc_box(made["stretch"])
    assert height > 1.7 * width  # stretched: an ellipse (the test can fail)
    height, width = disc_box(made["crop"])
    assert abs(height - width) <= 1 and height >= 38  # 100/120 of 48 = 40
    height, width = disc_box(made["pad"])
    assert abs(height - width) <= 1 and 18 <= height <= 21  # 100/240 of 48 = 20
    assert made["pad"][:10].max() == 0 and made["pad"][-10:].max() == 0  # black bars


def test_crop_and_pad_keep_a_circle_round_for_a_wide_target_too():
    canvas = np.zeros((300, 300, 1), np.uint8)
    cv2.circle(canvas, (150, 150), 60, 255, -1)
    for options in ({"crop_to_aspect_ratio": True}, {"pad_to_aspect_ratio": True}):
        out = Decoding(color_mode="grayscale", **options).fit(canvas, (30, 60))
        height, width = disc_box(out)
        assert abs(height - width) <= 1 and height >= 11, options


# ----------------------------------------------------------------- follow_links


def test_follow_links_walks_linked_sub_folders_only_when_asked(tmp_path):
    data = colour_folder(tmp_path / "data", {"a": 2})
    elsewhere = colour_folder(tmp_path / "elsewhere", {"b": 2, "extra": 3})
    (data / "b").symlink_to(elsewhere / "b", target_is_directory=True)  # a class
    (data / "a" / "linked.jpg").symlink_to(elsewhere / "b" / "000.jpg")  # a file
    (data / "a" / "more").symlink_to(elsewhere / "extra", target_is_directory=True)
    (data / "a" / "loop").symlink_to(data / "a", target_is_directory=True)
    counts = {}
    for follow in (False, True):
        _, labels, names = collect_directory(data, follow_links=follow)
        assert names == ["a", "b"]
        counts[follow] = np.bincount(labels).tolist()
    assert counts == {False: [3, 2], True: [6, 2]}  # the loop is walked once
    seq = FrameSequence.from_directory(
        data, image_size=SIZE, follow_links=True, validation=True, **QUIET
    )
    assert len(seq.file_paths) == 8
    with pytest.raises(ConfigError, match="follow_links"):
        FrameSequence.from_directory(data, image_size=SIZE, follow_links="yes")
    with pytest.raises(ConfigError, match=r"applies to FrameSequence\.from_directory"):
        FrameSequence.from_paths(
            seq.file_paths, ["a"] * 8, image_size=SIZE, follow_links=True
        )


# ------------------------------------------------------------------- file_paths


def test_file_paths_map_validation_rows_back_to_files(tmp_path):
    # Each file's brightness says which file it is.
    for i, (cls, name) in enumerate(
        [("b", "x"), ("a", "y"), ("b", "z"), ("a", "w"), ("a", "v"), ("b", "u")]
    ):
        write(
            tmp_path / "data" / cls / f"{name}.png",
            np.full((8, 8, 3), 40 * i, np.uint8),
        )
    brightness = {
        str(p): int(cv2.imread(str(p))[0, 0, 0])
        for p in (tmp_path / "data").rglob("*.png")
    }
    train, val = FrameSequence.from_directory(
        tmp_path / "data",
        image_size=(8, 8),
        validation_split=0.5,
        subset="both",
        seed=3,
        batch_size=3,
        **QUIET,
    )
    x = np.concatenate([val[i][0] for i in range(len(val))])
    assert len(val.file_paths) == len(x) == 4 and len(val) == 2
    for row, path in zip(x, val.file_paths, strict=True):
        assert row[0, 0, 0] == brightness[path]
    # Training: its natives (the other files), not one per sample.
    assert sorted(train.file_paths + val.file_paths) == sorted(brightness)
    assert len(train.file_paths) == train.num_samples == 2
    train.close()


# ---------------------------------------------------------------- from_dataframe


def test_from_dataframe_joins_directory_and_sorts_class_names(tmp_path):
    data = colour_folder(tmp_path / "images", {"cat": 3, "dog": 2})
    df = pd.DataFrame(
        {
            "filename": [str(p.relative_to(data)) for p in sorted(data.rglob("*.jpg"))],
            "class": ["cat", "cat", "cat", "dog", "dog"],
        }
    ).iloc[::-1]
    val = FrameSequence.from_dataframe(
        df,
        directory=data,
        image_size=SIZE,
        color_mode="grayscale",
        validation=True,
        **QUIET,
    )
    assert val.class_names == ["cat", "dog"] and val[0][0].shape[-1] == 1
    assert set(val.file_paths) == {str(data / f) for f in df["filename"]}
    df2 = df.rename(columns={"filename": "path", "class": "label"})
    pinned = FrameSequence.from_dataframe(
        df2,
        x_col="path",
        y_col="label",
        directory=data,
        image_size=SIZE,
        class_names=["dog", "cat"],
        validation=True,
        **QUIET,
    )
    assert pinned.class_names == ["dog", "cat"]
    assert pinned.as_arrays()[1].tolist() == [0, 0, 1, 1, 1]
    train, val = FrameSequence.from_dataframe(
        df,
        directory=data,
        image_size=SIZE,
        validation_split=0.4,
        subset="both",
        seed=0,
        **QUIET,
    )
    train.close()
    assert len(train.file_paths) + len(val.file_paths) == 5


def test_from_dataframe_refuses_missing_files_and_columns_by_name(tmp_path, decodes):
    data = colour_folder(tmp_path / "images", {"cat": 2})
    df = pd.DataFrame(
        {"filename": ["cat/000.jpg", "cat/nope.jpg"], "class": ["cat", "cat"]}
    )
    with pytest.raises(SourceError, match=r"1 file\(s\).*'.*cat/nope.jpg'"):
        FrameSequence.from_dataframe(df, directory=data, image_size=SIZE)
    with pytest.raises(ConfigError, match="Did you mean 'filename'"):
        FrameSequence.from_dataframe(
            df, x_col="filenames", directory=data, image_size=SIZE
        )
    with pytest.raises(ConfigError, match=r"Row 1 .*class=3"):
        FrameSequence.from_dataframe(
            df.assign(**{"class": ["cat", 3]}), directory=data, image_size=SIZE
        )
    with pytest.raises(ConfigError, match=r"Expected a pandas\.DataFrame"):
        FrameSequence.from_dataframe(df.to_dict(), directory=data, image_size=SIZE)
    assert decodes == []


def test_from_dataframe_without_pandas_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` fails
    with pytest.raises(ConfigError, match="pip install pandas"):
        FrameSequence.from_dataframe(object(), image_size=SIZE)


# ------------------------------------------------------------ options, config


def test_file_options_are_refused_by_the_constructor_and_read_from_run_configs(
    tmp_path,
):
    data = colour_folder(tmp_path / "data", {"a": 2, "b": 2})
    arrays = {"a": np.zeros((2, 8, 8, 3), np.uint8)}
    for name, value in (("cache_dir", str(tmp_path)), ("follow_links", True)):
        with pytest.raises(ConfigError, match=f"`{name}`.*from_directory"):
            FrameSequence(arrays, image_size=SIZE, **{name: value})
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": {"directory": "data"},
                "image_size": [16, 16],
                "color_mode": "grayscale",
                "interpolation": "nearest",
                "crop_to_aspect_ratio": True,
                "follow_links": True,
                "validation": True,
                "verbose": 0,
            }
        )
    )
    seq = FrameSequence.from_config(config)
    assert seq[0][0].shape == (4, 16, 16, 1)
    assert seq.decoding == Decoding(
        color_mode="grayscale", interpolation="nearest", crop_to_aspect_ratio=True
    )
    config.write_text(
        yaml.safe_dump(
            {
                "source": {"directory": str(data)},
                "image_size": [16, 16],
                "interpolation": "cubic",
            }
        )
    )
    with pytest.raises(ConfigError, match="field `interpolation`"):
        FrameSequence.from_config(config)


# ------------------------------------------------------ determinism and fitting


def test_same_seed_same_grayscale_frames_whatever_the_workers(tmp_path):
    data = colour_folder(tmp_path / "data", {"a": 5, "b": 2})
    frames = []
    for workers, processes in ((1, False), (2, False), (2, True)):
        seq = FrameSequence.from_directory(
            data,
            image_size=SIZE,
            color_mode="grayscale",
            pad_to_aspect_ratio=True,
            interpolation="lanczos3",
            samples_per_class=6,
            augment="heavy",
            aug_p=0.8,
            pipe_p=1.0,
            seed=5,
            num_build_workers=workers,
            build_processes=processes,
            **QUIET,
        )
        frames.append(np.concatenate([seq[i][0] for i in range(len(seq))]))
        seq.close()
    assert np.array_equal(frames[0], frames[1])
    assert np.array_equal(frames[0], frames[2])  # shared memory of 1 channel


def test_fit_on_grayscale_data_with_validation(tmp_path):
    data = colour_folder(tmp_path / "data", {"a": 10, "b": 6})
    train, val = FrameSequence.from_directory(
        data,
        image_size=SIZE,
        batch_size=8,
        color_mode="grayscale",
        validation_split=0.25,
        subset="both",
        seed=0,
        samples_per_class=8,
        epochs_per_frame=1,
        augment="medium",
        aug_p=0.5,
        dtype="uint8",
        **QUIET,
    )
    model = keras.Sequential(
        [
            keras.Input((*SIZE, 1), dtype="uint8"),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with train:
        history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(history.history["val_loss"]).all()
    assert train.generation == 3  # a new grayscale frame every epoch
    assert model.predict(val, verbose=0).shape == (len(val.file_paths), 2)


# --------------------------------------------------- with the reduced JPEG decode


@pytest.mark.parametrize(
    "options",
    [
        {"color_mode": "grayscale"},
        {"color_mode": "rgba", "crop_to_aspect_ratio": True},
        {"pad_to_aspect_ratio": True, "interpolation": "bicubic"},
        {"interpolation": "lanczos3", "crop_to_aspect_ratio": True},
    ],
)
def test_the_reduced_jpeg_decode_stays_close_to_a_full_decode(tmp_path, options):
    """Within the tolerance of the default (see tests/io/decode/test_files.py): a JPEG decoded at
    1/4 scale, and a PNG of the same pixels (box-reduced before the filter)."""
    rng = np.random.default_rng(1)
    small = rng.integers(30, 220, (6, 8, 3), dtype=np.uint8)
    image = cv2.resize(small, (440, 300), interpolation=cv2.INTER_CUBIC)
    for _ in range(4):
        cv2.circle(
            image,
            tuple(int(v) for v in rng.integers(40, 260, 2)),
            30,
            tuple(int(v) for v in rng.integers(0, 256, 3)),
            -1,
            cv2.LINE_AA,
        )
    jpg = write(tmp_path / "a.jpg", image)
    png = write(tmp_path / "a.png", cv2.imread(jpg))  # the JPEG's own pixels
    decoding = Decoding(**options)
    size = (64, 48)
    assert decode_image(jpg, target_size=size).shape[:2] == (75, 110)  # 1/4 scale
    reduced = load_image(jpg, image_size=size, decoding=decoding).astype(np.int16)
    full = decoding.fit(decode_image(jpg, color_mode=decoding.color_mode), size)
    from_png = load_image(png, image_size=size, decoding=decoding)
    assert reduced.shape == (*size, decoding.channels)
    assert np.abs(reduced - full).mean() <= 2.0
    assert np.abs(reduced - from_png).mean() <= 2.0


def test_cache_build_command_takes_the_decoding_options(tmp_path, capsys):
    from augframe.cli import main

    data = colour_folder(tmp_path / "data", {"a": 2, "b": 2})
    assert (
        main(
            [
                "cache",
                "build",
                str(data),
                "--image-size",
                "12",
                "10",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--color-mode",
                "rgba",
                "--interpolation",
                "area",
                "--pad-to-aspect-ratio",
            ]
        )
        == 0
    )
    assert "color_mode='rgba'" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["12x10-rgba-area-pad"]
