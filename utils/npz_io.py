"""Reading ``.npz`` archives with one-line errors for damaged or foreign files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from utils.errors import UserError


def read_npz(path: Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` file ``path``, loaded into memory.

    ``what`` names the expected content in messages (e.g. "a MOT sample").

    Raises:
        UserError: the file is truncated, not a ``.npz`` archive (numpy would call any non-zip file
            "pickled data"), unreadable, or lacks one of ``keys`` — naming the file.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise UserError(f"{path}: is a single .npy array, expected a .npz archive with {what}")
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise UserError(f"{path}: lacks {', '.join(missing)}; expected {what} with {', '.join(keys)}")
            return {k: np.asarray(npz[k]) for k in keys}
    except (zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"{path}: truncated or damaged .npz archive ({err}); regenerate it") from None
    except ValueError as err:
        if "pickled" in str(err):
            raise UserError(f"{path}: not a .npz archive (expected {what})") from None
        raise UserError(f"{path}: damaged .npz archive ({err})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot be read ({err.strerror or err})") from None
