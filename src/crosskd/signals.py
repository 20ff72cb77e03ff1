"""Ctrl-C and SIGTERM: unwound as exceptions, and held back while a checkpoint is written.

Python runs a signal handler between bytecodes, so a Ctrl-C can land inside a callback that
C++ code called: torch.save writing to a file object turns the KeyboardInterrupt raised in
its `write` into RuntimeError("unexpected pos"), which reads like a full disk, and an
extension module being initialised may report it as an import error. Such code runs inside
`signals_deferred`; the signal is delivered when the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

_DEFERRED = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler stopping the job), unwound like Ctrl-C: files are cleaned up."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while the block runs (handlers live in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block has finished, then deliver them.

    The handlers are swapped, not the signal mask: with other threads running, the kernel
    hands a blocked signal to one of them and Python still runs the handler in the main
    thread. Python's handlers always run in the main thread, so other threads need nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {number: signal.signal(number, lambda got, frame: caught.append(got))
                for number in _DEFERRED}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)  # now the usual handler runs (KeyboardInterrupt, ...)
