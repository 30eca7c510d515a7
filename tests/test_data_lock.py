"""Two processes that need the same generated file build it once: the lock of ipl_core.data.store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ipl_core.data.store import file_lock

BUILD = """
import sys, time
from pathlib import Path
from ipl_core.data.store import cached

target, log, asking = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

def build(tmp: Path) -> None:
    with open(log, "a") as handle:
        handle.write("built\\n")
    deadline = time.time() + 60
    while asking.read_text().count("ask") < 2 and time.time() < deadline:  # the other process asks
        time.sleep(0.02)
    time.sleep(0.5)  # and then waits for the lock (or, without one, builds too)
    tmp.write_text("data")

with open(asking, "a") as handle:
    handle.write("ask\\n")
path, reused = cached(target, "test/lock", {"size": 1}, 0, build)
print("reused" if reused else "built", path.read_text())
"""


def test_two_processes_build_a_dataset_once(tmp_path: Path) -> None:
    target, log, asking = tmp_path / "data" / "file.txt", tmp_path / "builds.log", tmp_path / "asking"
    command = [sys.executable, "-c", BUILD, str(target), str(log), str(asking)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    while not log.exists():  # the first process is inside its build and holds the lock
        assert first.poll() is None, "the first process ended without building"
        time.sleep(0.02)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in (first, second))
    assert first.returncode == 0 and second.returncode == 0
    assert outputs == ["built data", "reused data"]
    assert log.read_text() == "built\n"  # one build, though the second asked while the file was missing


def test_the_lock_excludes_another_process_until_released(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    probe = ("import fcntl, sys\nh = open(sys.argv[1], 'a')\n"
             "try:\n    fcntl.flock(h, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n"
             "    sys.exit(3)\n")
    with file_lock(lock):
        assert subprocess.run([sys.executable, "-c", probe, str(lock)]).returncode == 3
    assert subprocess.run([sys.executable, "-c", probe, str(lock)]).returncode == 0
