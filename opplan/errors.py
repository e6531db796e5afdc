"""The one exception type users see: a one-line message naming the offending item."""
from __future__ import annotations

import os
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
    """The text of a file the user named, or a one-line error saying why it cannot be read.

    Files larger than :data:`opplan.limits.MAX_FILE_BYTES` are refused before they are read (and
    a device or pipe that never ends is cut there), so no input costs more than that to look at.
    """
    from opplan.limits import MAX_FILE_BYTES, check_file_size, shown_path

    path = Path(path)
    where = shown_path(path)
    try:
        with path.open("rb") as handle:
            check_file_size(os.fstat(handle.fileno()).st_size, where)
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise OpplanError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise OpplanError(f"{where}: is a directory, not a {kind}") from None
    except OSError as error:
        raise OpplanError(f"{where}: cannot read ({error.strerror})") from None
    check_file_size(len(data), where)
    return decode_user_text(data, where, kind)


def decode_user_text(data: bytes, where: str, kind: str) -> str:
    """Bytes a user gave (a file, an upload) as text, or a one-line error: UTF-8 only, no NUL."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OpplanError(f"{where}: not a text file (not UTF-8), so not a valid {kind}") from None
    if "\x00" in text:
        raise OpplanError(f"{where}: not a text file (it holds NUL bytes), so not a valid {kind}")
    return text


def write_user_file(path: str | Path, text: str, kind: str) -> None:
    """Write ``text`` where the user asked, or a one-line error saying why it cannot be written."""
    from opplan.limits import shown_path

    try:
        Path(path).write_text(text, encoding="utf-8")
    except IsADirectoryError:
        raise OpplanError(f"{shown_path(path)}: is a directory; give a file name for the {kind}") from None
    except FileNotFoundError:
        raise OpplanError(f"{shown_path(path)}: its directory does not exist") from None
    except OSError as error:
        raise OpplanError(f"{shown_path(path)}: cannot write the {kind} ({error.strerror})") from None


def check_writable(path: str | Path, kind: str) -> None:
    """Fail before any work when ``path`` cannot be written: a directory, or no such directory."""
    from opplan.limits import shown_path

    path = Path(path)
    if path.is_dir():
        raise OpplanError(f"{shown_path(path)}: is a directory; give a file name for the {kind}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OpplanError(f"{shown_path(path)}: directory {shown_path(parent)} does not exist")
    if not os.access(parent, os.W_OK):
        raise OpplanError(f"{shown_path(path)}: directory {shown_path(parent)} is not writable")
