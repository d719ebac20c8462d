"""Read a user's text file (rig, caption rules, split list, config) as UTF-8, with errors that name it."""

from __future__ import annotations

from pathlib import Path


def read_text_file(path: str | Path, what: str = "text file") -> str:
    """The file's text (UTF-8; a leading byte-order mark is dropped). A missing or unreadable file, or bytes
    that are not UTF-8, are one ValueError naming the path and `what` it should be."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: {what} is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start})"
        ) from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read {what} ({error.strerror or error})") from None
