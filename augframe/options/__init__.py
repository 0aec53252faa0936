"""Every option, defined once (`registry`), and the places options come from.

`registry` defines and checks every option; `control_file` reads
control.json and `augframe.keras.run_config` YAML run configs, both with
schemas derived from the registry. This package imports neither
`augframe.io` nor `augframe.augment` (they import it). This package's names
are the registry's.

Example:
>>> from augframe.options import OPTIONS, check
>>> OPTIONS["epochs_per_frame"].hot, check("batch_size", 32)
(True, 32)
"""

from augframe.options.registry import (
    FILES_OPTIONS,
    HOT_OPTIONS,
    MAX_COUNT,
    OPTIONS,
    VALIDATION_OPTIONS,
    Option,
    argparse_type,
    check,
    check_known,
    pydantic_type,
)

__all__ = [
    "FILES_OPTIONS",
    "HOT_OPTIONS",
    "MAX_COUNT",
    "OPTIONS",
    "VALIDATION_OPTIONS",
    "Option",
    "argparse_type",
    "check",
    "check_known",
    "pydantic_type",
]
