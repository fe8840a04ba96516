"""What the harness shows of a program: its printed output (capped), exceptions as one line, and
tracebacks without the harness's own frames.
"""

from __future__ import annotations

import io
import os
import traceback

from ..protocol import MESSAGE_LIMIT

#: The directory of the process roles' modules: tracebacks start below their frames.
HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))


class CappedSink(io.TextIOBase):
    """A text stream that keeps only the last ``limit`` characters written to it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._text = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._text = (self._text + str(text))[-self._limit :]
        return len(text)

    def getvalue(self) -> str:
        return self._text


def first_line(exc: BaseException) -> str:
    """The last line of the exception's own text, capped."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    line = text[-1] if text else type(exc).__name__
    return line[:MESSAGE_LIMIT]


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the first frame that is not this harness's own: users read
    their candidate's and their test's lines, not the sandbox's internals.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _is_harness(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _is_harness(filename: str) -> bool:
    return os.path.dirname(filename) == HARNESS_DIR
