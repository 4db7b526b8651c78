"""Run directories and logging (DESIGN §10).

``save_root/<task>_<name>_<timestamp>/`` holds a copy of the INI, ``log.txt`` (the same
lines as the console), metrics files and figures.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path


def make_run_dir(save_root: Path, task: str, name: str, ini_path: Path) -> Path:
    """Create a fresh run directory and copy the INI into it."""
    stamp = time.strftime("%Y-%m-%d-%Hh%Mm%S")
    run = Path(save_root) / f"{task}_{name}_{stamp}"
    suffix = 1
    while run.exists():
        run = Path(save_root) / f"{task}_{name}_{stamp}_{suffix}"
        suffix += 1
    run.mkdir(parents=True)
    shutil.copy(ini_path, run / Path(ini_path).name)
    return run


def get_logger(run_dir: Path | None, logger_type: int = 3, name: str = "mixdvae") -> logging.Logger:
    """Logger writing to the console (1), ``run_dir/log.txt`` (2) or both (3)."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(message)s")
    if logger_type in (1, 3):
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(fmt)
        logger.addHandler(console)
    if logger_type in (2, 3) and run_dir is not None:
        handler = logging.FileHandler(Path(run_dir) / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logging.captureWarnings(True)
    return logger
