"""Ctrl-C and SIGTERM stop training at the next batch boundary, never in the middle of one.

While `stop_requests()` is active, the first SIGINT or SIGTERM only records the request: the
trainer finishes the batch in hand, writes a resumable checkpoint that says where inside the
epoch it stopped, and raises `TrainingInterrupted` (exit status 128 + the signal, as a shell
reports a process the signal killed). A second signal stops at once, as without the handler.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

from crosskd.errors import UserError

HANDLED = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(UserError):
    """Training stopped on a signal after saving where it was; the message names the file."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class StopRequests:
    """The signal asked for, if any, since the handlers were installed."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """The signal's name, e.g. SIGINT."""
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _record(self, signum: int, _frame: object) -> None:
        if self.signum is not None:  # the second signal: what it would have done unhandled
            signal.signal(signum, self.previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
        self.signum = signum


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequests]:
    """Record SIGINT/SIGTERM instead of dying on them, inside the block (main thread only;
    elsewhere signals keep their usual effect and nothing is ever requested)."""
    requests = StopRequests()
    if threading.current_thread() is not threading.main_thread():
        yield requests
        return
    requests.previous = {signum: signal.signal(signum, requests._record) for signum in HANDLED}
    try:
        yield requests
    finally:
        for signum, handler in requests.previous.items():
            signal.signal(signum, handler)


@dataclass
class EpochPosition:
    """Where inside an epoch a run stopped: how many batches it had trained, the batch
    generator's state when the epoch began (to draw the same batches again) and the loss
    sums so far (so the epoch's mean loss is the uninterrupted one)."""

    epoch: int
    batches_done: int
    generator_state: dict[str, Any]
    sums: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_checkpoint(cls, stored: dict[str, Any] | None) -> EpochPosition | None:
        """The position a checkpoint stores (None: it was written at an epoch's end)."""
        return None if stored is None else cls(**stored)
