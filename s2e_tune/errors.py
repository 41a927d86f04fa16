"""Errors a user can cause: reported as one line and exit code 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input (flag, file, data, environment).

    The message is one line that names the problem and the fix; the CLI prints
    it as ``error: <message>`` and exits with code 2.
    """

    exit_code = 2
