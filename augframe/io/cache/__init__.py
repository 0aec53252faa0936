"""The decoded on-disk cache: images decoded and resized once into a memory map.

`build_cache` builds or reuses a cache and opens it as a `CacheStore`. Inside:
`layout` (the files of a cache folder), `manifest` (what a cache records),
`verify` (checksums, and the check of the rows before reuse), `writer` (one
build of the data file), `build` (`build_cache` itself) and `store` (the
opened cache). The design, its guarantees and its measurements:
docs/design/cache.md.
"""

from augframe.io.cache.build import build_cache
from augframe.io.cache.layout import CACHE_VERSION
from augframe.io.cache.store import CacheStats, CacheStore

__all__ = ["CACHE_VERSION", "CacheStats", "CacheStore", "build_cache"]
