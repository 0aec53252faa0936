"""Files and folders that the user running augframe may not read or write.

Root reads and writes files of any mode, and the suite (CI included) runs as
root: so each test runs a real Python subprocess as the unprivileged user
`nobody` when the suite runs as root, and as the current user otherwise.

Nothing is copied: the subprocess runs `sys.executable` and imports augframe
from where this suite imports it. So `nobody` must be able to read (and search
the folders down to) the interpreter and its base Python (`sys.base_prefix`:
a venv's `bin/python` is a link to it), the venv with its site-packages, and
the checkout (an editable install points at it). .ci/run makes its venv in a
world-readable temporary folder, from a Python that `nobody` can run. Where
that is not so (a venv under /root, mode 0700), these tests skip and say what
to make readable; under CI (`CI` set) they fail instead.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import augframe
from tests.conftest import write_jpegs

UNPRIVILEGED = "nobody"
AS_ROOT = os.geteuid() == 0


def _user() -> pwd.struct_passwd | None:
    """The user the subprocess runs as: `nobody` under root, else ourselves."""
    if not AS_ROOT:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        pytest.fail(f"running as root, and there is no user {UNPRIVILEGED!r}")


def _chown(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def _spawn(code: str, home: Path, timeout: float) -> subprocess.CompletedProcess:
    """`sys.executable -c code` as the unprivileged user, in `home`."""
    user = _user()
    options: dict[str, Any] = {}
    if user is not None:
        options = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {
        **os.environ,
        "HOME": str(home),
        "KERAS_HOME": str(home / ".keras"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **options,
    )


def run_as_user(script: str, workdir: Path, **values: Any) -> dict[str, Any]:
    """Runs `script` as the unprivileged user, in `workdir/home`.

    `values` reach the script as the dict `ARGS`; the script prints one JSON
    object as its last line of output, returned as a dict.
    """
    code = f"import json\nARGS = json.loads({json.dumps(values)!r})\n{script}"
    result = _spawn(code, workdir / "home", timeout=300)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        pytest.fail(
            f"the subprocess failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return json.loads(lines[-1])


def _make_workdir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="augframe-permissions-"))
    folder.chmod(0o755)
    (folder / "home").mkdir()
    _chown(folder / "home", _user())
    return folder


def _remove_workdir(folder: Path) -> None:
    for path in folder.rglob("*"):  # give back what a test locked away
        if not path.is_symlink():
            path.chmod(0o700)
    shutil.rmtree(folder)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A folder that the unprivileged user can reach (pytest's tmp_path is 0700).

    `home/` in it is the user's own: its HOME, KERAS_HOME and working folder.
    """
    folder = _make_workdir()
    try:
        yield folder
    finally:
        _remove_workdir(folder)


_PREFLIGHT = """
import json, os, sys
import augframe, augframe.options.control_file
print(json.dumps({"uid": os.geteuid(), "augframe": augframe.__file__}))
"""


@pytest.fixture(scope="module", autouse=True)
def unprivileged_python_works() -> None:
    """The unprivileged user can run this interpreter and import augframe."""
    if not AS_ROOT:
        return
    folder = _make_workdir()
    try:
        result = _spawn(_PREFLIGHT, folder / "home", timeout=120)
        problem = (result.stderr.strip().splitlines() or ["no output"])[-1]
    except OSError as exc:  # the interpreter itself cannot be reached
        result, problem = None, str(exc)
    finally:
        _remove_workdir(folder)
    if result is not None and result.returncode == 0:
        assert json.loads(result.stdout.splitlines()[-1])["uid"] != 0
        return
    checkout = Path(augframe.__file__).resolve().parent.parent
    reason = (
        f"The user {UNPRIVILEGED!r} cannot run {sys.executable} and import "
        f"augframe ({problem}). Make "
        f"readable by all, with every folder above them searchable (chmod a+rX): "
        f"the base Python {sys.base_prefix}, the venv {sys.prefix} and the "
        f"checkout {checkout}."
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


SEQUENCE = """
import json, os, warnings
import augframe

readable = None
if ARGS.get("secret"):
    try:
        open(ARGS["secret"], "rb").close()
        readable = True
    except PermissionError:
        readable = False
with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    try:
        seq = augframe.FrameSequence.from_directory(
            ARGS["data"], image_size=(16, 16), batch_size=4, samples_per_class=4,
            seed=0, verbose=0, background=False, cache_dir=ARGS["cache_dir"],
        )
    except Exception as exc:
        error = [type(exc).__module__ + "." + type(exc).__qualname__, str(exc)]
        result = {"error": error}
    else:
        with seq:
            batches = [seq[i] for i in range(len(seq))]
            result = {
                "class_names": seq.class_names,
                "batch": list(batches[0][0].shape),
                "labels": sorted({int(v) for _, y in batches for v in list(y)}),
            }
result["uid"] = os.geteuid()
result["secret_readable"] = readable
result["warnings"] = [[w.category.__name__, str(w.message)] for w in record]
print(json.dumps(result))
"""


def write_data(workdir: Path) -> tuple[Path, Path]:
    """`data/{cat,dog}/` with 4 JPEGs each, and `data/cat/secret.jpg` of mode 000."""
    data = write_jpegs(workdir / "data", {"cat": 4, "dog": 4}, size=20)
    secret = data / "cat" / "secret.jpg"
    shutil.copy(data / "cat" / "0000.jpg", secret)
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    secret.chmod(0o000)
    return data, secret


def check_unprivileged(result: dict[str, Any]) -> None:
    if AS_ROOT:
        assert result["uid"] == _user().pw_uid  # type: ignore[union-attr]
    assert result["uid"] != 0


def test_an_image_the_user_cannot_read_is_skipped_with_one_warning(workdir):
    data, secret = write_data(workdir)
    result = run_as_user(
        SEQUENCE, workdir, data=str(data), secret=str(secret), cache_dir=None
    )
    check_unprivileged(result)
    assert result["secret_readable"] is False
    assert "error" not in result, result
    # The sequence is built from the 8 readable images.
    assert result["class_names"] == ["cat", "dog"]
    assert result["labels"] == [0, 1] and result["batch"] == [4, 16, 16, 3]
    (warning,) = result["warnings"]
    assert warning[0] == "ImageWarning"
    assert "Skipped 1 unreadable image(s)" in warning[1] and str(secret) in warning[1]


@pytest.mark.parametrize("where", ["existing", "missing"])
def test_a_cache_dir_the_user_cannot_write_is_a_cache_error(workdir, where):
    data, secret = write_data(workdir)
    secret.unlink()
    # A folder that is not the user's, mode 0755 (0555 when not root: the
    # owner could write a 0755 one); `missing`: a cache_dir to create in it.
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o755 if AS_ROOT else 0o555)
    cache_dir = locked if where == "existing" else locked / "cache"
    result = run_as_user(SEQUENCE, workdir, data=str(data), cache_dir=str(cache_dir))
    check_unprivileged(result)
    assert result["warnings"] == []
    kind, message = result.get("error", ["no error", ""])
    assert kind == "augframe.errors.CacheError", result
    assert f"Cannot write the image cache in {str(cache_dir)!r}" in message
    assert "Permission denied" in message and "writable" in message


CONTROL = """
import json, os, warnings
from augframe.options.control_file import ControlFile, write_control

path = os.path.join(os.getcwd(), "control.json")
write_control(path, {"aug_p": 0.2, "epochs_per_frame": 3})
control = ControlFile(path)
first = control.poll()
write_control(path, {"aug_p": 0.7})
os.chmod(path, 0o000)
with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    second = control.poll()
    third = control.poll()  # the same problem is not reported twice
try:
    open(path, "rb").close()
    readable = True
except PermissionError:
    readable = False
print(json.dumps({
    "uid": os.geteuid(),
    "path": path,
    "readable": readable,
    "polls": [first, second, third],
    "current": control.current.model_dump(exclude_none=True),
    "warnings": [[w.category.__name__, str(w.message)] for w in record],
}))
"""


def test_a_control_file_the_user_cannot_read_keeps_the_last_good_values(workdir):
    result = run_as_user(CONTROL, workdir)
    check_unprivileged(result)
    assert result["readable"] is False
    assert result["polls"] == [True, False, False]
    assert result["current"] == {"aug_p": 0.2, "epochs_per_frame": 3}
    (warning,) = result["warnings"]
    assert warning[0] == "ControlFileWarning"
    assert warning[1] == (
        f"Control file {result['path']!r} not applied: cannot read it "
        "(Permission denied). Keeping the last good values."
    )


def test_a_read_only_home_warns_once_and_trains_without_the_default_cache(
    workdir, monkeypatch
):
    """cache_dir="auto" (the default) under a home the user cannot write:
    one CacheWarning naming ~/.cache/augframe, then frames from the files."""
    data, secret = write_data(workdir)
    secret.unlink()
    home = workdir / "home"
    if AS_ROOT:
        os.chown(home, 0, 0)
    home.chmod(0o555 if not AS_ROOT else 0o755)
    monkeypatch.delenv("AUGFRAME_CACHE_DIR", raising=False)  # the real default
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    result = run_as_user(SEQUENCE, workdir, data=str(data), cache_dir="auto")
    check_unprivileged(result)
    assert "error" not in result, result
    assert result["batch"] == [4, 16, 16, 3]
    # Only the cache's (Keras may say where it keeps its own files instead).
    (warning,) = [w for w in result["warnings"] if w[0] == "CacheWarning"]
    assert str(home / ".cache" / "augframe") in warning[1]
    assert "AUGFRAME_CACHE_DIR" in warning[1]
