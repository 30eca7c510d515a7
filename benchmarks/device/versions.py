"""Print the interpreter, torch, CUDA, GPU and package versions that a device run used.

    python3 benchmarks/device/versions.py
"""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

import torch

PACKAGES = ("numpy", "pandas", "scipy", "pyarrow", "h5py", "tqdm", "pytest", "tabulate", "gymnasium",
            "mujoco", "metaworld", "dm-control", "dm-env", "dm-tree", "PyOpenGL", "glfw",
            "farama-notifications", "absl-py", "etils", "lxml")
"""The distributions the book's device checks import, from the image or the carried wheels."""


def lines() -> list[str]:
    """One line per fact: Python, torch and CUDA, each GPU, each of ``PACKAGES``, ``nvidia-smi -L``."""
    out = [f"python {platform.python_version()} at {sys.executable}",
           f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"]
    if torch.cuda.is_available():
        for k in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(k)
            out.append(f"GPU {k}: {p.name}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs")
    else:
        out.append("GPU: none (CUDA not available)")
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} MISSING")
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False, timeout=30)
        out.append(f"nvidia-smi: {smi.stdout.strip() or smi.stderr.strip()}")
    except (OSError, subprocess.TimeoutExpired) as error:
        out.append(f"nvidia-smi: {error}")
    return out


if __name__ == "__main__":
    print("\n".join(lines()))
