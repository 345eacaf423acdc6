"""Files a user names on the command line or in the app (workflows, inputs): read with a size
limit and decoded as UTF-8, or refused with one located sentence.

Nothing is read past the limit, so `--inputs-file /dev/zero` costs a few megabytes, not
all the memory of the machine; a byte that is not UTF-8 is reported at its line and column
instead of surfacing as a UnicodeDecodeError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MAX_WORKFLOW_BYTES = 2 * 2**20
MAX_INPUTS_BYTES = 16 * 2**20


@dataclass
class UnreadableFile(ValueError):
    """Why a file cannot be used; `line` and `column` (1-based) locate a decoding error."""

    message: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return self.message


def size_text(size: int) -> str:
    return f"{size / 2**20:g} MiB" if size >= 2**20 else f"{size:,} bytes"


def read_text(path: str | os.PathLike[str], limit: int, what: str) -> str:
    """The file's text; UnreadableFile when it is missing, not a file, over `limit` bytes
    or not UTF-8. `what` names the kind of file in the message ("workflow")."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise UnreadableFile("cannot read file: it is a directory") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UnreadableFile(
            f"{what} file is larger than {size_text(limit)}, the limit for {what} files"
        )
    return decode(data, what)


def decode(data: bytes, what: str) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or UnreadableFile at the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UnreadableFile(
            f"{what} file is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, "
            f"column {column}); save it as UTF-8",
            line,
            column,
        ) from None
