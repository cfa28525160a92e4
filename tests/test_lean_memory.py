"""lean_memory: at most two glibc malloc arenas, freed heap memory handed back to the system, and the pages of
the shared libraries too; and the garbage collector's rest while the Space starts.

Each case runs in a fresh Python process (arenas, once made, last as long as the process), once as the
Space runs it and once untouched, so that the untouched run shows the case would fail without the fix.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from space_support import SPACE_DIR, clean_env

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

THREADS = 8
# Freed blocks below one still in use stay in the heap: only malloc_trim hands them back.
BLOCKS, BLOCK_BYTES = 1000, 64 * 1024
LIBRARY_MIB = 64

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
# Untamed, nothing hands the memory back; tamed, the trim thread does within a few of its periods.
deadline = time.monotonic() + (1.0 if sys.argv[1] == "untouched" else 30.0)
while before - anon_kib() < {freed_kib} * 0.9 and time.monotonic() < deadline:
    time.sleep(0.05)
print(before - anon_kib())
"""


PAGE_OUT = """
import mmap, sys
import lean_memory
def resident_file_mib():
    status = open("/proc/self/status").read()
    return int(next(l for l in status.splitlines() if l.startswith("RssFile:")).split()[1]) // 1024
mapped = []
for path in sys.argv[2:]:  # read through, as a library's pages are at import
    with open(path, "rb") as file:
        mapped.append(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))
    assert sum(mapped[-1][i] for i in range(0, len(mapped[-1]), mmap.PAGESIZE)) == 0
before = resident_file_mib()
if sys.argv[1] == "tame":
    lean_memory.page_out_libraries()
after = resident_file_mib()
assert mapped[0][:4] == bytes(4)  # still readable: the pages come back on use
print(before, after)
"""


def run_for_output(script: str, mode: str, *args: str) -> str:
    """What the script prints, run in a fresh Python process that imports the Space's modules."""
    env = clean_env(PYTHONPATH=str(SPACE_DIR))
    env.pop("MALLOC_ARENA_MAX", None)
    result = subprocess.run([sys.executable, "-c", script, mode, *args], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def run(script: str, mode: str) -> int:
    return int(run_for_output(script, mode).split()[-1])


def test_threads_share_at_most_two_arenas() -> None:
    script = ARENAS.format(threads=THREADS)
    assert run(script, "untouched") > THREADS  # each thread its own, beside the main one
    assert run(script, "tame") <= 2


def test_freed_heap_memory_goes_back_to_the_system() -> None:
    freed_kib = (BLOCKS - 1) * BLOCK_BYTES // 1024
    script = TRIM.format(blocks=BLOCKS, size=BLOCK_BYTES, freed_kib=freed_kib)
    assert run(script, "untouched") < freed_kib / 10
    assert run(script, "tame") > freed_kib * 0.9


@pytest.mark.skipif(platform.system() != "Linux", reason="Linux's madvise")
def test_the_pages_of_libraries_go_back_to_the_system(tmp_path: Path) -> None:
    """The resident pages of a mapped library are handed back; those of another mapped file stay. (A library
    of our own, as TensorFlow's pages are shared with this test's process, and the kernel keeps shared pages.)"""
    library, other = tmp_path / "libpages.so.2", tmp_path / "pages.bin"
    for path in (library, other):
        with path.open("wb") as file:
            file.write(bytes(LIBRARY_MIB * 2**20))
            os.fsync(file.fileno())  # clean pages, as a library's are: the kernel writes no dirty page out
    before, after = map(int, run_for_output(PAGE_OUT, "untouched", str(library), str(other)).split())
    assert before >= 2 * LIBRARY_MIB and after >= before - 2
    before, after = map(int, run_for_output(PAGE_OUT, "tame", str(library), str(other)).split())
    assert LIBRARY_MIB - 4 <= before - after <= LIBRARY_MIB + 4


START_UP = """
import gc, sys
def collections():
    return sum(generation["collections"] for generation in gc.get_stats())
before = collections()
if sys.argv[1] == "tame":
    import app
else:
    import gradio, tensorflow
print(collections() - before, gc.isenabled(), gc.get_freeze_count())
"""


def test_the_garbage_collector_rests_while_the_space_starts_and_then_skips_what_the_start_made(
        tiny_model: Path) -> None:
    """Importing Gradio and TensorFlow alone runs the collector a thousand times or more; the Space's start (the
    imports, the model, the page) runs it a few times before it pauses it, then freezes what it made and turns the
    collector back on."""
    def start(mode: str) -> tuple[int, bool, int]:
        result = subprocess.run([sys.executable, "-c", START_UP, mode], cwd=SPACE_DIR, capture_output=True,
                                text=True, env=clean_env(MODEL_REPO=str(tiny_model)), timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        collections, enabled, frozen = result.stdout.split()
        return int(collections), enabled == "True", int(frozen)

    untouched, space = start("untouched"), start("tame")
    assert untouched[0] > 1000 and untouched[1:] == (True, 0)
    assert space[0] < untouched[0] / 10 and space[1] and space[2] > 100_000
