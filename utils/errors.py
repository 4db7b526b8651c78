"""User-facing errors: one line, exit status 2, no traceback.

Every problem a user can fix (bad INI value, missing data directory, unreadable
audio file, checkpoint that does not match the config) is raised as a
:class:`UserError` whose message names *what* is wrong and *where*. Scripts wrap
their ``main`` with :func:`run_main`, which prints ``error: <message>`` on stderr
and exits with status 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem in the user's input, reported as one line (exit status 2)."""

    exit_code = 2


def run_main(main: Callable[[], object]) -> None:
    """Run ``main()``; turn a :class:`UserError` into one stderr line and exit 2."""
    code = 0
    try:
        main()
    except UserError as err:
        if os.environ.get("RANK", "0") == "0":   # under torchrun rank 0 speaks for every rank (utils.distributed)
            print(f"error: {err}", file=sys.stderr)
        code = UserError.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    if "RANK" in os.environ:                     # a torchrun worker
        from utils.distributed import leave

        leave(code)
    if code:
        sys.exit(code)
