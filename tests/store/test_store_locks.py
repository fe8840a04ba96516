"""Stream locks: the timeout message, and heartbeats that keep a waiter waiting."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pytest_passk.store import LOCK_HELD, StoreLockTimeout
from pytest_passk.store.locks import Heartbeat, StreamLock


def test_a_silent_holder_times_out_naming_the_lock_file(tmp_path: Path) -> None:
    holder = StreamLock(tmp_path / "s.lock", store=tmp_path)
    assert holder.try_acquire()
    (tmp_path / "s.beat").touch()
    waiter = StreamLock(tmp_path / "s.lock", store=tmp_path, timeout=0.3)
    assert not waiter.try_acquire()
    with pytest.raises(StoreLockTimeout) as excinfo:
        waiter.acquire()
    message = str(excinfo.value)
    assert str(tmp_path / "s.lock") in message
    prefix = LOCK_HELD.split("{seconds")[0].format(lock=tmp_path / "s.lock")
    assert message.startswith(prefix)
    holder.release()
    waiter.acquire()
    waiter.release()


def test_a_holder_with_a_heartbeat_is_waited_for_past_the_timeout(tmp_path: Path) -> None:
    holder = StreamLock(tmp_path / "s.lock", store=tmp_path)
    assert holder.try_acquire()
    waiter = StreamLock(tmp_path / "s.lock", store=tmp_path, timeout=0.4)
    with Heartbeat([holder], interval=0.05):
        timer = threading.Timer(1.0, holder.release)
        timer.start()
        started = time.monotonic()
        waiter.acquire()
        assert time.monotonic() - started >= 0.9
    timer.join()
    waiter.release()


def test_a_dead_holders_lock_is_free(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import filelock, os, sys; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); "
        "os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "s.lock")], check=True)
    assert StreamLock(tmp_path / "s.lock", store=tmp_path).try_acquire()
