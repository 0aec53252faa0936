"""`augframe.workers` moved to `augframe.core` (makers, buffer); this import path keeps working."""

from augframe.core.buffer import FrameBuffer
from augframe.core.makers import (
    BatchResult,
    ProcessMaker,
    SampleMaker,
    SlotBatch,
    ThreadMaker,
    choose_maker,
    make_samples,
)

__all__ = [
    "BatchResult",
    "FrameBuffer",
    "ProcessMaker",
    "SampleMaker",
    "SlotBatch",
    "ThreadMaker",
    "choose_maker",
    "make_samples",
]
