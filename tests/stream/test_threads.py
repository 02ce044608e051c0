"""Pipeline stages in threads: order, back-pressure, errors and clean stops."""
import threading
import time

import pytest

from stream.threads import in_thread, join_all


def test_items_come_in_order_through_chained_stages():
    first = in_thread(range(50), maxsize=1)
    second = in_thread((x * 2 for x in first), maxsize=2)
    assert list(second) == [2 * x for x in range(50)]


def test_a_worker_error_reaches_the_consumer():
    def broken():
        yield 1
        raise ValueError("bad frame")
    items = in_thread(broken())
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad frame"):
        next(items)


def test_closing_early_stops_every_stage_without_spinning():
    produced = []

    def source():
        for i in range(10_000):
            produced.append(i)
            yield i
    before = threading.active_count()
    first = in_thread(source(), maxsize=2, name="stage-a")
    second = in_thread(first, maxsize=2, name="stage-b")
    assert [next(second) for _ in range(3)] == [0, 1, 2]
    time.sleep(0.1)
    cpu = time.process_time()
    time.sleep(0.3)   # both workers blocked on full queues: no CPU spent waiting
    assert time.process_time() - cpu < 0.05
    second.close()
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before
    assert len(produced) < 20   # back-pressure: the source was not read ahead


def test_a_worker_left_busy_is_waited_for_by_its_owner():
    # closing gives up on a worker after 2 s; its owner (FacePipeline.close) joins it before
    # freeing the models it may still be running
    started, release = [], threading.Event()

    def slow():
        yield 1
        release.wait(10)   # busy past the consumer's 2 s
        yield 2

    items = in_thread(slow(), maxsize=1, started=started)
    assert next(items) == 1
    items.close()
    assert len(started) == 1 and started[0].is_alive()
    assert join_all(started, timeout=0.1) == started   # still busy: reported
    release.set()
    assert join_all(started, timeout=5) == []
