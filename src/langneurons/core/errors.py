"""The one exception users see: a single line saying what went wrong and what to do."""


class LangNeuronsError(Exception):
    """A user-facing error. The CLI prints ``error: <message>`` and exits with status 2."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of a foreign exception's message (its type's name if it has none), at most ``limit``
    characters: what our one-line errors quote of a library's multi-line traceback text."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]
