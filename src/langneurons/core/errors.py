"""The one exception users see: a single line saying what went wrong and what to do."""


class LangNeuronsError(Exception):
    """A user-facing error. The CLI prints ``error: <message>`` and exits with status 2."""
