"""All decoding: image files and in-memory arrays to uint8 samples of one size.

`arrays` holds the decoding options (`Decoding`) and converts, crops, pads
and resizes arrays; `files` opens and decodes image files; `headers`
recognises a file's format and reads the size its header claims (for the
pixel limit); `jpeg` reads a JPEG's frame header (for the reduced decode).
"""

from augframe.io.decode.arrays import (
    CHANNELS,
    DECODING_OPTIONS,
    Decoding,
    resize,
    to_color_mode,
)
from augframe.io.decode.files import ImageReadError, decode_image, load_image, to_rgb

__all__ = [
    "CHANNELS",
    "DECODING_OPTIONS",
    "Decoding",
    "ImageReadError",
    "decode_image",
    "load_image",
    "resize",
    "to_color_mode",
    "to_rgb",
]
