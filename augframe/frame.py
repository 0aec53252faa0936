"""`augframe.frame` moved to `augframe.core` (builder, background, pacing, buffer); this import path keeps working."""

from augframe._parallel import BuildCancelled
from augframe.core.background import BackgroundBuild
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import Frame, FrameBuilder
from augframe.core.pacing import BuildPacer

__all__ = [
    "BackgroundBuild",
    "BuildCancelled",
    "BuildPacer",
    "Frame",
    "FrameBuffer",
    "FrameBuilder",
]
