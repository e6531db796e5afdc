"""The one exception type users see: a one-line message naming the offending item."""
from __future__ import annotations

from pathlib import Path


class OpplanError(ValueError):
    """A user mistake (bad model, bad cluster, bad order, bad option).

    The CLI and the dashboard print ``str(error)`` as one line and never a traceback, so the
    message must name what is wrong (which operator, which field, which cycle).

    ``field`` names the offending input field (``stages``, ``microbatches``, ``fb``, ...) so that
    each front end can point at its own control for it: the CLI names its flag, a form its widget.
    Library messages say the field's name, never a command-line flag.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        # keep ``field`` across pickling (the default rebuilds from ``args`` alone)
        return (type(self), (str(self), self.field))


def read_user_file(path: str | Path, kind: str) -> str:
    """The text of a file the user named, or a one-line error saying why it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OpplanError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise OpplanError(f"{path}: is a directory, not a {kind}") from None
    except UnicodeDecodeError:
        raise OpplanError(f"{path}: not a text file (not UTF-8), so not a {kind}") from None
    except OSError as error:
        raise OpplanError(f"{path}: cannot read ({error.strerror})") from None
    return text
