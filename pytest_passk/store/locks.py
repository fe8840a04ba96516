"""Stream locks: who draws a stream's missing samples, and how long others wait for them.

A lock is a :mod:`filelock` lock on ``<stream>.lock``: the operating system releases it when its
holder dies (``kill -9`` included), so a crash never leaves a stale lock behind. A live holder
proves it is making headway by touching ``<stream>.beat`` every :data:`HEARTBEAT_INTERVAL` seconds
from a background thread; a waiter gives up only when the heartbeat has been silent for the
store's lock timeout, so a long generation phase in another process is waited for however long it
takes, while a frozen one (stopped, deadlocked) is reported with the lock file's path.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import filelock

from pytest_passk.errors import StoreError

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "LOCK_HELD",
    "Heartbeat",
    "StoreError",
    "StoreLockTimeout",
    "StreamLock",
]

#: Seconds a waiter tolerates a holder whose heartbeat is silent.
DEFAULT_LOCK_TIMEOUT = 120.0
HEARTBEAT_INTERVAL = 1.0
POLL_INTERVAL = 0.05
LOCK_HELD = (
    "sample store lock {lock} has been held for {seconds:.0f} s by another process that shows no "
    "sign of progress; if no other pytest-passk run is using the store {store}, stop the stuck "
    "process (or delete {lock}) and run again"
)


class StoreLockTimeout(StoreError):
    """Another process held a stream lock too long without progress."""


class StreamLock:
    """The lock of one stream, with the heartbeat file that shows its holder is alive."""

    def __init__(self, path: Path, *, store: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self.beat_path = path.with_suffix(".beat")
        self._store = store
        self._timeout = timeout
        # thread_local=False: the heartbeat thread never locks, but release may happen on the
        # thread that handles an interruption.
        self._lock = filelock.FileLock(path, thread_local=False)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock.is_locked

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never wait."""
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        self.beat()
        return True

    def acquire(self) -> None:
        """Wait for the lock as long as its holder's heartbeat is alive.

        Raises:
            StoreLockTimeout: when the heartbeat has been silent for the lock timeout.

        """
        started = time.time()
        while True:
            try:
                self._lock.acquire(timeout=POLL_INTERVAL * 4)
            except filelock.Timeout:
                last_sign = max(started, _mtime(self.beat_path))
                if time.time() - last_sign > self._timeout:
                    raise StoreLockTimeout(
                        LOCK_HELD.format(
                            lock=self.path, seconds=time.time() - started, store=self._store
                        )
                    ) from None
                continue
            self.beat()
            return

    def beat(self) -> None:
        """Show waiters that the holder is alive."""
        with contextlib.suppress(OSError):
            self.beat_path.touch()

    def release(self) -> None:
        """Give the lock up (harmless when not held)."""
        if self._lock.is_locked:
            self._lock.release(force=True)


class Heartbeat:
    """Touches the heartbeat files of held locks from a daemon thread while a draw runs."""

    def __init__(self, locks: Iterable[StreamLock], interval: float = HEARTBEAT_INTERVAL) -> None:
        self._locks = list(locks)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="passk-store-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for lock in self._locks:
                if lock.held:
                    lock.beat()


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
