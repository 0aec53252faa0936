"""Where natives come from: listing files, decoding them, and the stores that serve them.

`listing` finds a data set's files (folders, path lists, splits), `decode`
turns files and arrays into uint8 samples, `stores` hand natives out by
index and `cache` keeps them decoded on disk; `natives` holds what listing
and the stores require of a data set (skipped files, no empty class).
"""
