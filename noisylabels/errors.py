"""Errors a user can cause: reported as one line and exit code 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem in the user's input (flag, file, data, environment).

    The message is one line that names the problem and the fix; the CLI prints
    it as ``error: <message>`` and exits with code 2.
    """

    exit_code = 2


def run_cli(body: Callable[[], None], interrupted: str = "interrupted") -> int:
    """Run a command's ``body`` the way every ``main()`` here does: a :class:`UserError` is
    printed as ``error: <message>`` (exit 2), Ctrl-C as ``interrupted`` (exit 130), both on
    stderr and without a traceback; otherwise exit 0."""
    try:
        body()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    return 0
