"""Run a generator in a background thread, beside its consumer.

:func:`prefetch`: a bounded number of items ahead. ``drive`` uses it so that decoding and face
tracking of the next frames (MediaPipe releases the GIL) overlap rendering, warping and encoding of
the current ones. Memory stays bounded by ``depth``.

:func:`newest`: never waiting for the consumer, which gets the newest item each time it asks.
``live`` uses it so that tracking runs on every camera frame while the warp renders, and each frame
shown is the newest one tracked.

Exceptions raised by the producer are re-raised in the consumer; closing the consumer early stops
the producer, which then closes ``items`` in its own thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = 16) -> Iterator[T]:
    """Yield the items of ``items``, produced in a daemon thread at most ``depth`` ahead."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in items:
                if not put(x):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                close()

    thread = threading.Thread(target=produce, name="reenact-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            x = q.get()
            if x is _DONE:
                return
            if isinstance(x, _Failure):
                raise x.exc
            yield x
    finally:
        stop.set()
        thread.join(timeout=5)


def newest(items: Iterable[T], dropped: Callable[[T], object] = lambda x: None) -> Iterator[T]:
    """Yield the newest item of ``items`` each time the consumer asks, waiting only when none is new.
    ``items`` runs in a daemon thread that never waits for the consumer; an item a newer one replaced
    before the consumer took it is passed to ``dropped`` (in that thread)."""
    cond = threading.Condition()
    state = {"item": None, "new": False, "done": False, "stop": False, "error": None}

    def produce() -> None:
        try:
            for x in items:
                with cond:
                    if state["stop"]:
                        break
                    if state["new"]:
                        dropped(state["item"])
                    state["item"], state["new"] = x, True
                    cond.notify_all()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            state["error"] = exc
        finally:
            with cond:
                state["done"] = True
                cond.notify_all()
            close = getattr(items, "close", None)
            if close is not None and state["stop"]:
                close()

    thread = threading.Thread(target=produce, name="reenact-newest", daemon=True)
    thread.start()
    try:
        while True:
            with cond:
                while not state["new"] and not state["done"]:
                    cond.wait(timeout=0.1)  # a timeout, so that Ctrl-C reaches the consumer
                if not state["new"]:
                    if state["error"] is not None:
                        raise state["error"]
                    return
                x, state["new"] = state["item"], False
            yield x
    finally:
        with cond:
            state["stop"] = True
            cond.notify_all()
        thread.join(timeout=5)
