"""Run a producer in its own thread with a bounded queue, so that stages overlap."""
import queue
import threading
import time
import types

_DONE = object()


def in_thread(iterable, maxsize: int = 2, name: str | None = None):
    """Iterate `iterable` in a worker thread and yield its items here, in order.

    The bounded queue gives back-pressure (no frame is dropped, memory stays bounded); an
    exception in the worker is re-raised in the consumer. Both sides block on the queue (no
    polling); closing the generator stops the worker at its next item: the queue is drained so
    that a worker blocked on a full queue wakes up, sees the stop and ends.
    """
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def work():
        try:
            for item in iterable:
                if stop.is_set():
                    return
                q.put(item)
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)
        finally:
            if isinstance(iterable, types.GeneratorType):
                iterable.close()    # an upstream stage (another in_thread) stops too

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        deadline = time.monotonic() + 2.0   # a worker stuck upstream (a silent camera) is left behind
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                q.get(timeout=0.05)   # make room for a put the worker may be blocked in
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
