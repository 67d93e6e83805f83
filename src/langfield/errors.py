"""User-facing errors.

Anything a user can cause (a bad file, a wrong option, a foreign checkpoint) raises :class:`LangfieldError`
with a one-line message that names the file or value. The CLI prints it as ``error: ...`` and exits non-zero;
everything else is a bug and keeps its traceback.
"""


class LangfieldError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""
