"""Errors raised by the format readers; one base class so callers can record and continue."""


class FormatError(ValueError):
    """A file or name does not follow the Sticky Pi format it claims to be in."""
