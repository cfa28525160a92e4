"""Keep the server's C heap small on glibc (Linux): few malloc arenas, and freed memory handed back.

    import lean_malloc
    lean_malloc.tame()      # first thing in app.py, before TensorFlow and Gradio start their threads

glibc gives each new thread its own malloc arena (up to 8 per core) and keeps what is freed in it for
reuse. Under load the Space's ~50 threads (Gradio's workers, TensorFlow's pools) held 16 arenas with
~230 MiB free in them: the 60-second load test left the server 280 MiB larger than at rest. Two
arenas, and `malloc_trim` every few seconds, keep the memory at rest close to that after load.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
import time

ARENAS = 2
TRIM_EVERY_S = 10.0
M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENA_VARIABLE = "MALLOC_ARENA_MAX"  # glibc reads it at start-up; it wins over ARENAS


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
