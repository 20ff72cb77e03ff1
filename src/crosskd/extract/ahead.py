"""Decoding ahead of the models: each video's items (its decoded samples, or a segmented
video's plan and then its decoded segments) are made in worker threads (PyAV releases the
GIL while FFmpeg decodes) and handed to the calling thread, which runs the models, in video
order. At most `2 * workers` videos are started ahead and each holds at most `DEPTH` items
waiting, so memory stays bounded however many and however long the videos are.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

#: items a video's thread may make before the models take the first of them.
DEPTH = 2
#: how often (seconds) a thread waiting to hand an item over checks for a stop.
_POLL = 0.1
_END = object()
Key = TypeVar("Key")
#: makes one video's items, handing each to the function it is given.
Producer = Callable[[Callable[[Any], None]], None]


class _Stopped(Exception):
    """The calling thread stopped taking items (it failed or was interrupted)."""


@dataclass
class _Failure:
    """An unexpected error of a worker thread, raised again in the calling thread."""

    error: BaseException


class _Handoff:
    """One video's items, from its worker thread to the calling thread."""

    def __init__(self, stop: threading.Event) -> None:
        self.queue: queue.Queue = queue.Queue(DEPTH)
        self.stop = stop

    def put(self, item: Any) -> None:
        """Hand `item` over, waiting while DEPTH items wait; _Stopped after a stop."""
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue
        raise _Stopped

    def run(self, produce: Producer) -> None:
        """The worker thread: every item, then the end (or the error that ended it)."""
        try:
            if self.stop.is_set():
                return
            produce(self.put)
            self.put(_END)
        except _Stopped:
            return
        except BaseException as err:  # noqa: BLE001 - raised again in the calling thread
            try:
                self.put(_Failure(err))
            except _Stopped:
                return

    def items(self) -> Iterator[Any]:
        """The items in the order made, until the end."""
        while (item := self.queue.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item


def ahead(jobs: Iterable[tuple[Key, Producer]], workers: int) -> Iterator[tuple[Key, Iterator[Any]]]:
    """Each job's key and its items, in job order; take every item of a job before the next
    job. Leaving early (an error, Ctrl-C) stops the worker threads."""
    stop = threading.Event()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="decode")
    window: deque[tuple[Key, _Handoff]] = deque()
    try:
        for key, produce in jobs:
            handoff = _Handoff(stop)
            pool.submit(handoff.run, produce)
            window.append((key, handoff))
            if len(window) >= 2 * workers:
                key, handoff = window.popleft()
                yield key, handoff.items()
        while window:
            key, handoff = window.popleft()
            yield key, handoff.items()
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
