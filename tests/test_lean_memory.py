"""lean_memory: at most two glibc malloc arenas, freed heap memory handed back to the system, and the pages of
the shared libraries too.

Each case runs in a fresh Python process (arenas, once made, last as long as the process), once as the
Space runs it and once untouched, so that the untouched run shows the case would fail without the fix.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from space_support import SPACE_DIR, clean_env

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

THREADS = 8
# Freed blocks below one still in use stay in the heap: only malloc_trim hands them back.
BLOCKS, BLOCK_BYTES = 1000, 64 * 1024

SETUP = """
import ctypes, sys, time
import lean_memory
if sys.argv[1] == "tame":
    assert lean_memory.tame(trim_every_s=0.2)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
"""

ARENAS = SETUP + """
import tempfile, threading
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
ready, done = threading.Semaphore(0), threading.Event()
def work():
    libc.free(libc.malloc(1000))  # a thread's first malloc gives it an arena, kept while the thread lives
    ready.release()
    done.wait()
threads = [threading.Thread(target=work) for _ in range({threads})]
for thread in threads:
    thread.start()
for _ in threads:
    ready.acquire()
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    handle = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, handle)
    libc.fclose(handle)
    print(open(report.name).read().count("<heap nr="))
done.set()
"""

TRIM = SETUP + """
def anon_kib():
    status = open("/proc/self/status").read()
    return int(next(l for l in status.splitlines() if l.startswith("RssAnon:")).split()[1])
blocks = [libc.malloc({size}) for _ in range({blocks})]
for block in blocks:
    ctypes.memset(block, 1, {size})
before = anon_kib()
for block in blocks[:-1]:
    libc.free(block)
time.sleep(1.0)
print(before - anon_kib())
"""


PAGE_OUT = """
import sys
import lean_memory
from quiet_tf import tf
def resident_library_mib():
    status = open("/proc/self/status").read()
    return int(next(l for l in status.splitlines() if l.startswith("RssFile:")).split()[1]) // 1024
before = resident_library_mib()
told = lean_memory.page_out_libraries() if sys.argv[1] == "tame" else 0
after = resident_library_mib()
assert int(tf.reduce_sum(tf.range(10))) == 45  # TensorFlow still runs, its pages read again as needed
print(before, after, told)
"""


def run_for_output(script: str, mode: str) -> str:
    """What the script prints, run in a fresh Python process that imports the Space's modules."""
    env = clean_env(PYTHONPATH=str(SPACE_DIR))
    env.pop("MALLOC_ARENA_MAX", None)
    result = subprocess.run([sys.executable, "-c", script, mode], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def run(script: str, mode: str) -> int:
    return int(run_for_output(script, mode).split()[-1])


def test_threads_share_at_most_two_arenas() -> None:
    script = ARENAS.format(threads=THREADS)
    assert run(script, "untouched") > THREADS  # each thread its own, beside the main one
    assert run(script, "tame") <= 2


def test_freed_heap_memory_goes_back_to_the_system() -> None:
    script = TRIM.format(blocks=BLOCKS, size=BLOCK_BYTES)
    freed_kib = (BLOCKS - 1) * BLOCK_BYTES // 1024
    assert run(script, "untouched") < freed_kib / 10
    assert run(script, "tame") > freed_kib * 0.9


@pytest.mark.skipif(platform.system() != "Linux", reason="Linux's madvise")
def test_the_libraries_pages_go_back_to_the_system() -> None:
    """TensorFlow's import leaves hundreds of MiB of its libraries resident; handed back, they return as used."""
    before, after, told = (int(word) for word in run_for_output(PAGE_OUT, "untouched").split())
    assert before > 200 and after > before * 0.9 and told == 0
    before, after, told = (int(word) for word in run_for_output(PAGE_OUT, "tame").split())
    assert before > 200 and after < before / 4
    assert abs(told - (before - after)) < 20
