"""All-or-nothing outputs: atomic file writes, and staged output folders for the data generators.

:func:`atomic_write` is the one way the project writes a file that a kill must never leave half
written (checkpoints, tracks, metrics, figures, samples, wavs).

A generator writes its whole set into a temporary folder next to ``--out`` and swaps it in only
once everything is written, so a run that fails half-way (a bad input file, a full disk, Ctrl-C)
leaves an existing set untouched and no partial set behind. Files get the permissions of the
user's umask (``tempfile`` would make them private, mode 0600)::

    check_out_dir(out, overwrite, OWNED)          # before reading any input: refuse early
    with staged_dir(out) as tmp:                  # ... write everything into tmp ...
        ...
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from utils.errors import UserError


def default_mode(base: int = 0o666) -> int:
    """``base`` with the process umask applied: the mode ``open()`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def check_out_dir(out: Path, overwrite: bool, owned: tuple[str, ...]) -> None:
    """Refuse an ``out`` that cannot take a new set, before any work.

    Args:
        out: the output folder.
        overwrite: replacing an existing set is allowed.
        owned: glob patterns of the top-level names the generator writes (e.g. ``("*.npz", "index.csv")``);
            a folder holding anything else is never replaced, so ``--out`` cannot wipe unrelated files.

    Raises:
        UserError: ``out`` is a file, or holds a set and ``overwrite`` is False, or holds other files.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file, expected a directory")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        return
    foreign = [e for e in entries if not any(fnmatch.fnmatch(e, pat) for pat in owned)]
    if foreign:
        raise UserError(f"--out {str(out)!r} holds files this generator does not write ({', '.join(foreign[:3])}"
                        f"{', ...' if len(foreign) > 3 else ''}); choose an empty or new directory")
    if not overwrite:
        raise UserError(f"--out {str(out)!r} already holds a data set ({len(entries)} entries): use --overwrite "
                        "to replace it, or another --out")


@contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out``, swapped in as ``out`` when the block ends without error.

    The previous ``out`` (if any) is removed only after the new one is in place; on error the temporary
    folder is deleted and ``out`` is left as it was.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        tmp.chmod(default_mode(0o777))
        yield tmp
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write(path: Path, content: str | bytes | Callable[[Path], object]) -> Path:
    """Write ``path`` through a temporary file in the same folder and a rename, with the umask's permissions.

    Args:
        path: the file to write (its folder must exist).
        content: text (UTF-8), bytes, or a function writing a given temporary path (e.g.
            ``lambda tmp: torch.save(obj, tmp)``); the temporary name ends with ``path``'s suffix, so
            writers that infer the format from it (soundfile, matplotlib, numpy) behave as for ``path``.

    Returns:
        ``path``. On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=f".tmp{path.suffix}", dir=path.parent)
    try:
        if callable(content):
            os.close(fd)
            content(Path(tmp))
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
