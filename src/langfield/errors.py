"""User-facing errors.

Anything a user can cause (a bad file, a wrong option, a foreign checkpoint) raises :class:`LangfieldError`
with a one-line message that names the file or value. The CLI prints it as ``error: ...`` and exits non-zero;
everything else is a bug and keeps its traceback.
"""


class LangfieldError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""


def one_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type's name when it has
    none: what a one-line error quotes of the exception behind it."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
