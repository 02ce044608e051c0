"""Spread the items of a collection (photos, videos) over Ray workers, one result per item.

Each worker is a Ray actor that builds its model once and then processes one item at a time;
the driver hands out items, writes every result itself (under a temporary name, then renamed),
and skips items whose outputs already exist, so a half-done collection resumes where it
stopped. Inputs travel to the workers as bytes and results come back as bytes: the workers
need no shared filesystem, only the same Python packages as the driver.

A failed item (an error, or its worker process dying) is reported and tried once more; a
second failure marks it failed and the job goes on. A dead worker is replaced by a fresh one.
"""
import os
import socket
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError

REPO = Path(__file__).resolve().parents[1]
INSTALL_HINT = "pip install -r requirements-scale.txt"
CONNECT_TIMEOUT_S = 10.0
# the repository ships to the workers (code and checkpoints); these stay behind
# (gitignore patterns: "/data/" is the top folder only, not models/data)
SHIP_EXCLUDES = ["/.git/", "/.venv/", "/data/", "/runs/", "/out/", "__pycache__/", ".pytest_cache/"]


@dataclass
class Summary:
    done: dict = field(default_factory=dict)       # key -> worker that did it
    skipped: list = field(default_factory=list)    # keys whose outputs were already there
    failed: dict = field(default_factory=dict)     # key -> last reason
    retried: dict = field(default_factory=dict)    # key -> reason of the first failure
    ready_s: float = 0.0                           # until every worker had built its model
    total_s: float = 0.0                           # until the last item was through

    def by_worker(self) -> Counter:
        return Counter(self.done.values())

    def lines(self) -> list:
        out = [f"ray: {len(self.done)} done, {len(self.skipped)} skipped (outputs already there), "
               f"{len(self.failed)} failed" + (f" in {self.total_s:.1f} s (workers ready after "
                                               f"{self.ready_s:.1f} s)" if self.total_s else "")]
        out += [f"  {worker}: {n} done" for worker, n in sorted(self.by_worker().items())]
        out += [f"retried: {key} ({why})" for key, why in self.retried.items() if key not in self.failed]
        out += [f"failed: {key}: {why}" for key, why in self.failed.items()]
        return out


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def connect(address: str, workers: int) -> bool:
    """Start Ray on this machine ("local", `workers` CPUs) or join the cluster at `address`.
    True when this call started the session (the caller then shuts it down)."""
    ray = import_ray()
    if address != "local" and address != "auto":
        _check_reachable(address)
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")   # no usage reports leave the machine
    import logging
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                   runtime_env={"working_dir": str(REPO), "excludes": SHIP_EXCLUDES})
    try:
        if address == "local":
            ray.init(num_cpus=workers, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    return True


def _check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S):
    """Fail in seconds with one line, where ray.init would retry for a minute or more."""
    client = address.startswith("ray://")
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        host, port = hostport, "10001" if client else "6379"
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InputError(f"cannot reach the Ray cluster at {address} ({reason} after at most "
                         f"{timeout:g} s); start one with `ray start --head` or use --ray local") from None


class Worker:
    """Base of the actors: `process(key, payload)` returns what the driver's `save` writes."""

    def identity(self) -> str:
        import ray
        return f"node {ray.get_runtime_context().get_node_id()[:8]} pid {os.getpid()}"

    def threads(self) -> int:
        """CPUs Ray gave this actor: torch gets as many threads, so workers do not fight."""
        import ray
        return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))


def run_items(items, worker_cls, worker_args: tuple, save, is_done, workers: int, desc: str = "items",
              log=print) -> Summary:
    """Process `items` ([(key, payload_fn)], payload_fn() -> what the worker gets) on `workers`
    actors of `worker_cls` (built with `worker_args`); `save(key, result)` runs here for each
    success; items with `is_done(key)` are skipped. Ray must be connected."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError
    from tqdm import tqdm

    summary = Summary()
    todo = deque()
    for key, payload in items:
        if is_done(key):
            summary.skipped.append(key)
        else:
            todo.append((key, payload, 1))
    if not todo:
        for line in summary.lines():
            log(line)
        return summary
    actor_cls = ray.remote(num_cpus=1, max_restarts=0)(worker_cls)

    def start_workers(n):   # all build their models at once
        new = [actor_cls.remote(*worker_args) for _ in range(n)]
        try:
            return new, ray.get([actor.identity.remote() for actor in new])
        except (RayTaskError, RayActorError) as exc:   # an __init__ failed: the traceback's last line says why
            for actor in new:
                ray.kill(actor)
            raise InputError(f"a Ray worker could not start: {str(exc).strip().splitlines()[-1]}") from None

    start = time.perf_counter()
    actors, names = start_workers(min(workers, len(todo)))
    summary.ready_s = time.perf_counter() - start
    running = {}

    def feed(slot):
        if todo:
            key, payload, attempt = todo.popleft()
            running[actors[slot].process.remote(key, payload())] = (slot, key, payload, attempt)

    def failed(key, payload, attempt, why):
        if attempt == 1:
            summary.retried[key] = why
            todo.append((key, payload, 2))
        else:
            summary.failed[key] = why

    bar = tqdm(total=len(items), initial=len(summary.skipped), unit="item", desc=desc, file=sys.stderr)
    try:
        for slot in range(len(actors)):
            feed(slot)
        while running:
            [ref], _ = ray.wait(list(running), num_returns=1)
            slot, key, payload, attempt = running.pop(ref)
            try:
                result = ray.get(ref)
            except RayActorError:
                failed(key, payload, attempt, f"its worker, {names[slot]}, died")
                [actors[slot]], [names[slot]] = start_workers(1)   # a fresh process in its place
            except RayTaskError as exc:
                failed(key, payload, attempt, f"{_one_line(exc)} (on {names[slot]})")
            else:
                try:
                    save(key, result)
                    summary.done[key] = names[slot]
                except OSError as exc:   # e.g. disk full: this item's output is not there
                    failed(key, payload, attempt, f"cannot write its output: {exc.strerror or exc}")
            if key in summary.done or key in summary.failed:
                bar.update(1)
            feed(slot)
    finally:
        bar.close()
        for actor in actors:
            ray.kill(actor)
    summary.total_s = time.perf_counter() - start
    for line in summary.lines():
        log(line)
    return summary


def _one_line(exc) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def write_atomic(path: Path, data: bytes):
    """Write under a temporary name, then rename: a half-written file never poses as finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    tmp.replace(path)
