"""Typed errors that carry the Face++ ``error_message`` code, so every layer reports bad input the same way.

They carry no HTTP status: the engine and the jobs know what went wrong, the API decides how to answer it
(:mod:`faceplus.api.errors` maps each class to its status in one table).
"""

from __future__ import annotations

from typing import Any


class FaceplusError(Exception):
    """Base of every error faceplus raises on purpose; ``code`` is the Face++ error string."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with ``param`` (errors cross from engine worker processes to the server)."""
        return (_rebuild, (type(self), str(self), self.param))

    @property
    def error_message(self) -> str:
        """The Face++ wire form, e.g. ``INVALID_IMAGE_SIZE: image_file``."""
        return f"{self.code}: {self.param}" if self.param else self.code


class ImageError(FaceplusError):
    """The input is not an image faceplus accepts."""

    code = "IMAGE_ERROR_UNSUPPORTED_FORMAT"


class UnsupportedImageFormat(ImageError):
    """Not an image, a format we do not read, or a file too damaged (truncated) to decode."""

    code = "IMAGE_ERROR_UNSUPPORTED_FORMAT"


class InvalidImageSize(ImageError):
    """Width or height outside the configured limits (this includes decompression bombs)."""

    code = "INVALID_IMAGE_SIZE"


class ImageFileTooLarge(ImageError):
    """The encoded file is larger than the configured byte limit."""

    code = "IMAGE_FILE_TOO_LARGE"


class UnsupportedAttribute(FaceplusError):
    """An attribute no bundled model computes honestly (e.g. beauty); never invented."""

    code = "BAD_ARGUMENTS"


class BadArgument(FaceplusError):
    """A request value the job cannot use (e.g. a ``face_rectangle`` outside the image); ``param`` names it."""

    code = "BAD_ARGUMENTS"


def ignore_interrupts() -> None:
    """In a worker process: ignore Ctrl-C (SIGINT), which a terminal sends to the whole process group.

    The parent gets it too and shuts its workers down in order; a worker that took it as well would print its own
    KeyboardInterrupt traceback (dozens of lines per Ctrl-C) or die in the middle of a job."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _rebuild(cls: type[FaceplusError], message: str, param: str | None) -> FaceplusError:
    return cls(message, param=param)
