"""Run a producer in its own thread with a bounded queue, so that stages overlap."""
import queue
import threading

_DONE = object()


def in_thread(iterable, maxsize: int = 2, join_s: float = 5.0):
    """Iterate `iterable` in a worker thread and yield its items here, in order.

    The bounded queue gives back-pressure (no frame is dropped, memory stays bounded); an
    exception in the worker is re-raised in the consumer. Closing the generator stops the
    worker at its next item and waits for it (up to `join_s`), so that whoever closes the stages
    next (a tracker) does not pull them from under a running worker.
    """
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in iterable:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=work, daemon=True)
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
        thread.join(join_s)
