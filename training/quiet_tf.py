"""TensorFlow and Keras (use its keras and tf), imported without the C++ lines a machine without a GPU prints at
start-up. training/ and space/ hold this same file: the Space is uploaded without training/."""

import logging
import os
import sys
import warnings

# Read by TensorFlow's C++ logging once it is set up: hides its info, warning and error lines (on a CPU
# machine: "failed call to cuInit", oneDNN notes). Real failures still raise Python errors. Set it to 0
# to see everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_without_native_stderr() -> None:
    """Import TensorFlow and Keras with file descriptor 2 sent to /dev/null: the lines TensorFlow's C++
    code writes while loading ("Could not find cuda drivers", the oneDNN notice) come before it reads
    TF_CPP_MIN_LOG_LEVEL. Python's own sys.stderr still reaches the terminal."""
    sys.stderr.flush()
    terminal = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = open(os.dup(terminal), "w", encoding=python_stderr.encoding, errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    temporary = sys.stderr
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        # TensorFlow's logger made its handler during the import, writing to the temporary stream.
        for handler in logging.getLogger("tensorflow").handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is temporary:
                handler.setStream(python_stderr)
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(terminal, 2)
        os.close(terminal)


_import_without_native_stderr()
# Max over time does not need the mask (masked LSTM steps output zeros); Keras warns all the same.
warnings.filterwarnings("ignore", message=".*does not support masking.*")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]
