"""User-facing errors: one line, exit status 2, no traceback.

Every problem a user can fix (bad INI value, missing data directory, unreadable
audio file, checkpoint that does not match the config) is raised as a
:class:`UserError` whose message names *what* is wrong and *where*. Scripts wrap
their ``main`` with :func:`run_main`, which prints ``error: <message>`` on stderr
and exits with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem in the user's input, reported as one line (exit status 2)."""

    exit_code = 2


def run_main(main: Callable[[], object]) -> None:
    """Run ``main()``; turn a :class:`UserError` into one stderr line and exit 2."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(UserError.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
