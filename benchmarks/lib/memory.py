"""Memory: this process's resident set size (RSS), sampled or now, and PSS.

PSS (proportional set size) shares each shared page among the processes that
map it, so a shared-memory frame written by two build processes counts once.
No Keras or TensorFlow import.
"""

from __future__ import annotations

import contextlib
import resource
import threading

import psutil

MB = 1024 * 1024


class RssMonitor:
    """Samples this process's RSS on a daemon thread; `peak_mb` is since `reset`.

    Args:
        interval: seconds between samples.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            rss = self._process.memory_info().rss
            with self._lock:
                self._peak = max(self._peak, rss)

    def current_mb(self) -> float:
        """The RSS now, in MB."""
        return self._process.memory_info().rss / MB

    def reset(self) -> float:
        """Starts a new peak; returns the current RSS in MB."""
        rss = self._process.memory_info().rss
        with self._lock:
            self._peak = rss
        return rss / MB

    def peak_mb(self) -> float:
        """The peak RSS since the last `reset`, in MB."""
        rss = self._process.memory_info().rss
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak / MB

    def stop(self) -> None:
        """Ends the sampling thread."""
        self._stop.set()
        self._thread.join()


def process_peak_mb() -> float:
    """The process's lifetime peak RSS (`ru_maxrss`, KB on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_and_pss_mb() -> tuple[float, float, int]:
    """RSS of this process; PSS of it and its child processes; the children.

    Build worker processes are this process's children, so their PSS counts
    (a page they share with it once).

    Returns:
        `(RSS MB, PSS MB, number of child processes)`.
    """
    me = psutil.Process()
    children = me.children(recursive=True)
    pss = 0.0
    for process in [me, *children]:
        with contextlib.suppress(psutil.Error, AttributeError):
            pss += process.memory_full_info().pss / MB
    return me.memory_info().rss / MB, pss, len(children)
