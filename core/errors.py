"""Errors the user can fix: bad input or output paths, cameras that will not open."""


class InputError(Exception):
    """One clear line for the user (missing file, not a video, empty video, unwritable output,
    camera that cannot be opened). The CLI prints it without a traceback."""
