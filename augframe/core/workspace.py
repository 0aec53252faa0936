"""A frame's buffers and build workers, allocated once their bytes are known to fit.

Whole frames need one buffer, or two with background builds; a rolling
frame needs one and a slice buffer of about `1/N` of it. `open_workspace`
checks those bytes against memory (`augframe.core.memory`), picks the build
workers (`augframe.core.makers.choose_maker`, or a cluster's through
`augframe.core.cluster.ClusterMaker`), then allocates the buffers,
in shared memory for build processes, each mapped into them at once.

Example:
>>> import numpy as np
>>> from augframe.io.stores import mapping_to_store
>>> from augframe.options.groups import BuildOptions, ScheduleOptions
>>> store, names = mapping_to_store({"a": np.zeros((4, 8, 8, 3), np.uint8)},
...                                 image_size=(8, 8), num_workers=1)
>>> space = open_workspace(store, PipelineSpec(None), names, entropy=0,
...     build=BuildOptions.of(samples_per_class=4, num_build_workers=1),
...     schedule=ScheduleOptions.of(), epochs_per_frame=3, say=print)
>>> [b.array.shape for b in space.frames], space.spare
([(4, 8, 8, 3), (4, 8, 8, 3)], None)
>>> space.maker.close()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from augframe.augment.pipeline import PipelineSpec
from augframe.core import memory
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import held_in_order
from augframe.core.cluster import ClusterMaker
from augframe.core.makers import ProcessMaker, SampleMaker, choose_maker
from augframe.core.memory import FrameBudget
from augframe.core.plan import frame_size
from augframe.io.decode.arrays import CHANNELS
from augframe.io.stores import ImageStore, store_color_mode
from augframe.options.groups import BuildOptions, ScheduleOptions

__all__ = ["Workspace", "open_workspace"]


@dataclass(frozen=True)
class Workspace:
    """The build workers and the buffers they write.

    Attributes:
        maker: the build workers.
        frames: the frame buffers (1, or 2 for background builds).
        spare: a rolling frame's slice buffer, or None.
    """

    maker: SampleMaker
    frames: list[FrameBuffer]
    spare: FrameBuffer | None

    def share(self) -> Callable[[FrameBuffer], None] | None:
        """How a new buffer is mapped into the build processes (None: threads)."""
        maker = self.maker
        if isinstance(maker, ProcessMaker):
            return lambda buffer: maker.share([buffer])
        return None

    def close(self) -> None:
        """Stops the workers; no buffer name outlives them."""
        self.maker.close()
        for buffer in [*self.frames, *([self.spare] if self.spare else [])]:
            buffer.release_shared()


def open_workspace(
    store: ImageStore,
    spec: PipelineSpec,
    class_names: list[str],
    *,
    entropy: int,
    build: BuildOptions,
    schedule: ScheduleOptions,
    epochs_per_frame: int | str,
    say: Callable[[str], None],
) -> Workspace:
    """Checks the buffers against memory, then starts the workers and allocates them.

    Args:
        store: the natives.
        spec: the augmentation pipeline.
        class_names: class names, in label order.
        entropy: the root seed.
        build: samples per class and the build workers asked for.
        schedule: background builds and the refresh mode.
        epochs_per_frame: `N` at the start (a rolling frame's slice is `1/N`).
        say: where the line about falling back to threads goes.

    Raises:
        ConfigError: the buffers do not fit in memory.
    """
    available = np.bincount(store.labels, minlength=len(class_names))
    num_samples = frame_size(available, build.samples_per_class)
    height, width = store.image_size
    channels = CHANNELS[store_color_mode(store)]
    rolling = schedule.refresh == "rolling"
    num_buffers = 2 if schedule.background and not rolling else 1
    # Served in place (`augframe.core.builder.natives_in_place`): every
    # frame is the store's own array, so its buffers hold no row.
    in_place = (
        not rolling
        and spec.is_identity
        and build.samples_per_class is None
        and held_in_order(store) is not None
    )
    slice_rows = (
        memory.slice_rows(
            available,
            build.samples_per_class,
            epochs_per_frame,
            schedule.epochs_per_frame_bounds,
        )
        if rolling
        else 0
    )
    budget = FrameBudget(
        num_samples=num_samples,
        image_size=(height, width),
        channels=channels,
        num_buffers=0 if in_place else num_buffers,
        slice_samples=slice_rows,
        num_classes=len(class_names),
        samples_per_class=build.samples_per_class,
    )

    def choose(processes: bool | None) -> SampleMaker:
        if build.build_executor is not None:  # a cluster's workers
            return ClusterMaker(
                store, spec, entropy=entropy, executor=build.build_executor
            )
        return choose_maker(
            store,
            spec,
            entropy=entropy,
            num_workers=build.num_build_workers,
            processes=processes,
            frame_pixels=num_samples * height * width,
        )

    maker = memory.maker_within(
        budget, processes=build.build_processes, choose=choose, say=say
    )
    shared = isinstance(maker, ProcessMaker)

    def buffer(rows: int) -> FrameBuffer:
        return FrameBuffer(rows, (height, width), shared=shared, channels=channels)

    space = Workspace(
        maker=maker,
        frames=[buffer(0 if in_place else num_samples) for _ in range(num_buffers)],
        spare=buffer(slice_rows) if slice_rows else None,
    )
    if isinstance(maker, ProcessMaker):
        # Mapped when the workers start, after the first frame (built here).
        maker.share_soon([*space.frames, *([space.spare] if space.spare else [])])
    return space
