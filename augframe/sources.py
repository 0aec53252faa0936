"""`augframe.sources` moved to `augframe.io` (listing, decode, stores); this import path keeps working."""

from augframe.io.decode.arrays import resize
from augframe.io.decode.files import ImageReadError, decode_image, load_image, to_rgb
from augframe.io.listing import (
    IMAGE_EXTENSIONS,
    collect_directory,
    collect_paths,
    split_by_class,
)
from augframe.io.stores import (
    ArrayStore,
    FileStore,
    ImageStore,
    StoreSource,
    SubsetStore,
    mapping_to_store,
    store_color_mode,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ArrayStore",
    "FileStore",
    "ImageReadError",
    "ImageStore",
    "StoreSource",
    "SubsetStore",
    "collect_directory",
    "collect_paths",
    "decode_image",
    "load_image",
    "mapping_to_store",
    "resize",
    "split_by_class",
    "store_color_mode",
    "to_rgb",
]
