"""Run a producer in its own thread with a bounded queue, so that stages overlap."""
import queue
import threading
import time
import types

_DONE = object()


def in_thread(iterable, maxsize: int = 2, name: str | None = None, started: list | None = None):
    """Iterate `iterable` in a worker thread and yield its items here, in order.

    The bounded queue gives back-pressure (no frame is dropped, memory stays bounded); an
    exception in the worker is re-raised in the consumer. Both sides block on the queue (no
    polling); closing the generator stops the worker at its next item: the queue is drained so
    that a worker blocked on a full queue wakes up, sees the stop and ends. A worker still busy
    after 2 s is left behind; `started` collects the threads for their owner to wait for
    (join_all) before it frees what they use.
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
    if started is not None:
        started.append(thread)
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


def join_all(threads: list, timeout: float) -> list:
    """Wait for `threads` to end, `timeout` seconds in all; returns those still alive. Python ends
    a daemon thread that wakes up in native code after the interpreter has begun to exit by
    unwinding its stack, which aborts the process when C++ frames are on it (mediapipe,
    ONNX Runtime: "terminate called ... FATAL: exception not rethrown"), so stages are waited for
    before their models are closed and before the program ends."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread for thread in threads if thread.is_alive()]
