"""Errors the user can fix: bad input or output paths, cameras that will not open."""


class InputError(Exception):
    """One clear line for the user (missing file, not a video, empty video, unwritable output,
    camera that cannot be opened). The CLI prints it without a traceback."""


class OutputError(InputError):
    """An output that could not be written (the disk full, a file-size limit): one line."""


def os_reason(exc: OSError) -> str:
    """An OSError's reason in words, with what it means for the user where that is not plain."""
    reason = (exc.strerror or str(exc)).splitlines()[0]
    hints = {27: "the file-size limit was reached", 28: "the disk is full", 122: "the disk quota is used up"}
    return f"{reason} ({hints[exc.errno]})" if exc.errno in hints else reason
