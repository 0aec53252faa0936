"""`augframe.sequence_core` moved: the shared adapter surface is `augframe.keras.facade`.

`SequenceCore` is now `augframe.keras.facade.SequenceFacade`, which holds a
sequence's frames (`augframe.serving`) by composition; the callbacks' registry
is `augframe.serving.scheduled`. This import path keeps working.
"""

from augframe.keras.facade import LABEL_MODES
from augframe.keras.facade import SequenceFacade as SequenceCore
from augframe.serving.scheduled import scheduled_sequences

__all__ = ["LABEL_MODES", "SequenceCore", "scheduled_sequences"]
