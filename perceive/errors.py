"""Exception types of perceive.

Every error raised for bad input derives from :class:`PerceiveError` and says
where the problem is: the file, the record index, the byte offset and the field,
as far as they are known.
"""

from __future__ import annotations

from pathlib import Path


class PerceiveError(Exception):
    """Base class of all errors perceive raises on purpose."""


class DataError(PerceiveError, ValueError):
    """Input data is malformed. Carries the location of the problem.

    Attributes:
        path: the file, when known.
        record: the 0-based record index in the file, when known.
        offset: the byte offset of the record (or of the problem) in the file.
        field: the name of the field that is wrong, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        record: int | None = None,
        offset: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.record = record
        self.offset = offset
        self.field = field
        self.reason = message
        where = []
        if self.path is not None:
            where.append(self.path)
        if record is not None:
            where.append(f"record {record}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        if field is not None:
            where.append(f"field {field}")
        super().__init__(
            f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{message}"
        )


class TruncatedRecordError(DataError):
    """A TFRecord file ends in the middle of a record."""


class CorruptRecordError(DataError):
    """A TFRecord length or data CRC-32C does not match, or a length is implausible."""


class NotAFrameError(DataError):
    """A record is not a serialized Waymo ``Frame`` (or a field of it cannot be decoded)."""


class MissingComponentError(PerceiveError, KeyError):
    """A camera, laser or dataset component that was asked for is not in the data."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""

    @classmethod
    def absent(cls, what: str, key: object, available: object) -> MissingComponentError:
        """The error for a missing key of a mapping of ``what`` (one wording everywhere)."""
        return cls(f"{what} {key!r} is not present; available: {list(available)}")


class InputPathError(PerceiveError, OSError):
    """A path given as input is missing or is not the kind of file expected.

    Attributes:
        path: the offending path (also in ``filename``, as for any ``OSError``).
    """

    def __init__(self, message: str, *, path: str | Path) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.filename = str(path)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingFileError(InputPathError, FileNotFoundError):
    """An input file does not exist."""


class NotAFileError(InputPathError, IsADirectoryError):
    """An input path is a directory (or another non-file) where a file was expected."""


class ConfigError(PerceiveError, ValueError):
    """A configuration value is invalid."""
