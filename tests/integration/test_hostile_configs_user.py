"""A control file in a folder the user may not write: as the user `nobody`.

Root writes anywhere and the suite (CI included) runs as root, so the test
runs a real Python subprocess as `nobody`, with the helpers (and the
preflight that skips or fails where `nobody` cannot run this interpreter)
of tests/integration/test_permissions.py.
"""

from __future__ import annotations

from tests.integration.test_permissions import (  # noqa: F401 (fixtures)
    _chown,
    _user,
    check_unprivileged,
    run_as_user,
    unprivileged_python_works,
    workdir,
)

UNWRITABLE_CONTROL = """
import numpy as np
from pathlib import Path
from augframe import FrameSequence
from augframe.errors import ConfigError
cache = Path(ARGS["cache"])
try:
    FrameSequence.from_paths(
        ARGS["paths"], ARGS["labels"], image_size=(8, 8),
        control_file=ARGS["control"], cache_dir=cache, samples_per_class=1,
        verbose=0,
    )
    error = None
except ConfigError as exc:
    error = str(exc)
import os
print(json.dumps({"uid": os.geteuid(), "error": error,
                  "cache": cache.exists(),
                  "left": sorted(os.listdir(Path(ARGS["control"]).parent))}))
"""


def test_a_control_file_in_a_read_only_folder_is_a_config_error(workdir):  # noqa: F811
    import cv2
    import numpy as np

    home = workdir / "home"
    paths = []
    for i in range(2):
        path = home / f"{i}.png"
        cv2.imwrite(str(path), np.full((8, 8, 3), i * 90, np.uint8))
        _chown(path, _user())
        paths.append(str(path))
    locked = workdir / "locked"  # root's, 0o555: the user cannot write in it
    locked.mkdir()
    locked.chmod(0o555)
    control = locked / "control.json"
    result = run_as_user(
        UNWRITABLE_CONTROL,
        workdir,
        paths=paths,
        labels=["a", "b"],
        control=str(control),
        cache=str(home / "cache"),
    )
    check_unprivileged(result)
    assert result["error"] is not None
    assert (
        f"Invalid value for argument `control_file`. Received: "
        f"control_file={str(control)!r}, which cannot be written (Permission "
        "denied)" in result["error"]
    )
    assert result["cache"] is False  # refused before the cache was built
    assert result["left"] == []
