"""What a run's numbers depend on, recorded in its ``summary.json`` under ``"provenance"``.

Seed, code version (git commit when the script started, and whether the work tree had uncommitted
changes), the versions of Python and of the libraries the results go through, the hash of the
effective configuration (:meth:`utils.config.Config.digest`), the machine and the device. Enough to
tell two runs apart, or to say why they differ.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "numpy", "scipy", "pandas", "motmetrics", "trackeval", "mir_eval", "pesq", "pystoi",
            "soundfile", "matplotlib")


def git_commit(root: Path = ROOT) -> tuple[str, bool | None]:
    """(commit hash, work tree dirty) of the checkout at ``root``; ("none", None) outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "none", None
    return (commit or "none"), bool(status.strip())


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution ("absent" when it is not installed)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


STARTED = time.strftime("%Y-%m-%dT%H:%M:%S%z")
CODE_VERSION = git_commit()     # read when the script starts: commits made while it runs do not count


def provenance(cfg, seed: int, device) -> dict:
    """The ``"provenance"`` block of a summary JSON.

    Args:
        cfg: the run's :class:`utils.config.Config` (its hash, file and overrides are recorded).
        seed: the random seed the run used.
        device: the torch device the run used.
    """
    commit, dirty = CODE_VERSION
    return {
        "seed": int(seed),
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": package_versions(),
        "config_sha256": cfg.digest(),
        "config_file": str(cfg.path),
        "overrides": list(cfg.overrides),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"hostname": socket.gethostname(), "platform": platform.platform(),
                    "processor": platform.machine(), "cpu_count": os.cpu_count()},
        "device": str(device),
        "started": STARTED,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
