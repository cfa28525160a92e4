"""lean_malloc: at most two glibc malloc arenas, and freed heap memory handed back to the system.

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
import lean_malloc
if sys.argv[1] == "tame":
    assert lean_malloc.tame(trim_every_s=0.2)
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


def run(script: str, mode: str) -> int:
    env = clean_env(PYTHONPATH=str(SPACE_DIR))
    env.pop("MALLOC_ARENA_MAX", None)
    result = subprocess.run([sys.executable, "-c", script, mode], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


def test_threads_share_at_most_two_arenas() -> None:
    script = ARENAS.format(threads=THREADS)
    assert run(script, "untouched") > THREADS  # each thread its own, beside the main one
    assert run(script, "tame") <= 2


def test_freed_heap_memory_goes_back_to_the_system() -> None:
    script = TRIM.format(blocks=BLOCKS, size=BLOCK_BYTES)
    freed_kib = (BLOCKS - 1) * BLOCK_BYTES // 1024
    assert run(script, "untouched") < freed_kib / 10
    assert run(script, "tame") > freed_kib * 0.9
