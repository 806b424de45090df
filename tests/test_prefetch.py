"""reenact.prefetch.newest, which live's tracking thread runs on: the consumer always gets the newest item,
every other one is reported dropped, errors reach the consumer, and closing early stops the producer."""

from __future__ import annotations

import threading
import time

import pytest

from reenact.prefetch import newest


def _counting(n: int, every: float, log: list):
    try:
        for i in range(n):
            time.sleep(every)
            yield i
    finally:
        log.append(("closed", threading.current_thread().name))


def test_a_slow_consumer_gets_the_newest_items_and_the_rest_are_dropped():
    log, dropped = [], []
    taken = []
    for x in newest(_counting(60, 0.002, log), dropped.append):
        taken.append(x)
        time.sleep(0.012)  # the consumer is about six items slower than the producer
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert sorted(taken + dropped) == list(range(60)), "each item is either taken or reported dropped, once"
    assert taken[-1] == 59, "the last item is never dropped"
    assert len(dropped) > 20 and len(taken) < 40
    assert log == [("closed", "reenact-newest")]


def test_a_fast_consumer_waits_for_each_item_and_drops_none():
    dropped = []
    assert list(newest(_counting(20, 0.005, []), dropped.append)) == list(range(20))
    assert dropped == []


def test_the_producer_s_error_reaches_the_consumer_after_its_last_item():
    def failing():
        yield 1
        raise ValueError("camera gone")

    got = []
    with pytest.raises(ValueError, match="camera gone"):
        for x in newest(failing()):
            got.append(x)
    assert got == [1]


def test_closing_early_stops_the_producer_and_closes_its_items_in_its_thread():
    log = []
    stream = newest(_counting(10_000, 0.001, log))
    assert next(stream) is not None
    t = time.perf_counter()
    stream.close()
    assert time.perf_counter() - t < 1.0
    assert log == [("closed", "reenact-newest")], "the generator closes in the thread that runs it"
    assert not any(th.name == "reenact-newest" for th in threading.enumerate())
