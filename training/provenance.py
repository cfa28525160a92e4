"""Where a model came from, for `training_config.json` and `metrics.json`: the data files, the machine, the libraries."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import training.quiet_tf  # noqa: F401  (first: TensorFlow without its C++ start-up lines)
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from training.data import Splits, Unlabeled


def library_versions() -> dict[str, str]:
    """The versions of Python and of the libraries that made the model."""
    import huggingface_hub
    import sklearn

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "huggingface_hub": huggingface_hub.__version__,
    }


def hardware() -> dict:
    """The machine this process trained on: CPU model, the cores it could use, GPUs."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")  # Linux names the model here; platform.processor() often does not
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu, "cores": cores, "gpus": gpus, "system": f"{platform.system()} {platform.machine()}"}


def provenance(splits: Splits, unlabeled: Unlabeled | None) -> dict:
    """What the data was, for `training_config.json`: files (names, SHA-256, Hub repo and commit), row counts."""
    return {"data": {**splits.source, "rows": splits.counts},
            "unlabeled_data": None if unlabeled is None else {**unlabeled.source, "rows": len(unlabeled.texts)}}
