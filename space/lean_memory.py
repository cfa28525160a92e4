"""Keep the server's resident memory small on Linux: few glibc malloc arenas, freed memory handed back, and the
pages of the shared libraries that only start-up read handed back too (why: "Memory" in tools/README.md)."""

from __future__ import annotations

import ctypes
import os
import platform
import re
import threading
import time

ARENAS = 2
TRIM_EVERY_S = 10.0
M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENA_VARIABLE = "MALLOC_ARENA_MAX"  # glibc reads it at start-up; it wins over ARENAS
MADV_PAGEOUT = 21  # madvise's advice number, from Linux's mman.h (Linux 5.4 and later)
SHARED_LIBRARY = re.compile(r"\.so(\.\d+)*$")  # libtensorflow_cc.so.2, _pywrap_tensorflow_internal.so, ...


def tame(trim_every_s: float = TRIM_EVERY_S) -> bool:
    """On glibc: at most ARENAS arenas from now on (unless MALLOC_ARENA_MAX was set), and a daemon thread
    that returns freed heap memory to the system every `trim_every_s` seconds. False elsewhere (no-op)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    if ARENA_VARIABLE not in os.environ:
        libc.mallopt(M_ARENA_MAX, ARENAS)

    def trim() -> None:
        while True:
            time.sleep(trim_every_s)
            libc.malloc_trim(0)

    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()
    return True


def page_out_libraries() -> None:
    """On Linux 5.4+: ask the kernel to take back the resident pages of every shared library mapped in this
    process; those still needed come back on first use. Nothing elsewhere."""
    if platform.system() != "Linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/self/maps") as maps:
        for line in maps:
            address, _, _, _, _, *path = line.split(maxsplit=5)
            if path and SHARED_LIBRARY.search(path[0].strip()):
                start, end = (int(bound, 16) for bound in address.split("-"))
                libc.madvise(start, end - start, MADV_PAGEOUT)  # refused (EINVAL) before Linux 5.4: nothing to do
