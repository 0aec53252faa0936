"""The decoded on-disk cache: images decoded and resized once into a memory map.

`build_cache` builds or reuses a cache and opens it as a `CacheStore`. Inside:
`layout` (the files of a cache folder, its locks), `manifest` (what a cache
records), `verify` (checksums, and the check of the rows before reuse),
`merge` (which files a build writes; a shared cache keeps other subsets'),
`writer` (one build of the data file), `build` (`build_cache` itself),
`store` (the opened cache), and for the default cache (`cache_dir="auto"`):
`home` (the user's cache folder, a data set's folder in it), `budget` (the
caches there, their cap, eviction) and `auto` (`open_default_cache`). The
design, its guarantees and its measurements: docs/design/cache.md.
"""

from augframe.io.cache.build import build_cache
from augframe.io.cache.layout import CACHE_VERSION
from augframe.io.cache.store import CacheStats, CacheStore

__all__ = ["CACHE_VERSION", "CacheStats", "CacheStore", "build_cache"]
