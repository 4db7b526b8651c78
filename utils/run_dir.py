"""Run directories and logging.

``save_root/<task>_<name>_<timestamp>/`` holds the effective INI (overrides applied), ``log.txt``
(the same lines as the console), ``summary.json`` (results and provenance), metrics files and figures.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from utils.config import Config
from utils.errors import UserError
from utils.output_dir import atomic_write


def check_output_root(save_root: Path, where: str) -> None:
    """Refuse, before any work, a ``save_root`` the run could not write into.

    The root (or its nearest existing ancestor, where it would be created) must be a directory in
    which a file can actually be created: this catches a path naming a file, a read-only
    filesystem, an immutable directory and missing permissions alike.

    Raises:
        UserError: naming ``where`` (e.g. "cfg.ini [User] save_root") and the reason.
    """
    root = Path(save_root)
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    hint = "" if root.is_absolute() else \
        f" (relative paths are resolved against the current working directory, {os.getcwd()})"
    if not probe.is_dir():
        raise UserError(f"{where}: {str(probe)!r} is a file, expected a directory for the run outputs{hint}")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise UserError(f"{where}: cannot write into {str(probe)!r} ({err.strerror or err}){hint}") from None


def make_run_dir(save_root: Path, task: str, name: str, cfg: Config) -> Path:
    """Create a fresh run directory and write the effective INI into it, under the INI's file name.

    The name is claimed with an exclusive ``mkdir`` (a suffix is added while it is taken), so two
    runs started in the same second never share a directory.
    """
    stamp = time.strftime("%Y-%m-%d-%Hh%Mm%S")
    Path(save_root).mkdir(parents=True, exist_ok=True)
    suffix = 0
    while True:
        run = Path(save_root) / (f"{task}_{name}_{stamp}" + (f"_{suffix}" if suffix else ""))
        try:
            run.mkdir(exist_ok=False)
            break
        except FileExistsError:
            suffix += 1
    atomic_write(run / Path(cfg.path).name, cfg.effective_ini())
    return run


LIBRARY_LOGGERS = ("utils", "data", "model", "py.warnings")


class LogBuffer(logging.Handler):
    """Keeps the records logged before the run directory exists, to replay them into log.txt."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def replay(self, handler: logging.Handler) -> None:
        for record in self.records:
            handler.handle(record)


def route_library_logs(logger: logging.Logger) -> None:
    """Send the notices of the library modules (resampling, folding, skipped files) to ``logger``'s handlers."""
    for name in LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        lib.handlers = list(logger.handlers)
        lib.setLevel(logging.INFO)
        lib.propagate = False


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


@contextmanager
def discard_on_user_error(run_dir: Path | None, logger: logging.Logger) -> Iterator[None]:
    """On a :class:`~utils.errors.UserError` inside the block, close ``logger``'s handlers and delete
    ``run_dir`` (None: a rank that writes nothing) before re-raising: a run stopped by bad input leaves
    nothing half-written."""
    try:
        yield
    except UserError:
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
