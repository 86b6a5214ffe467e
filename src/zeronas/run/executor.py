"""Score many cells with many proxies, in parallel, resumably.

:func:`score_many` asks the store which (cell, proxy) pairs are missing for the config, scores only those, and
writes each cell in one transaction as soon as it finishes, from the parent process only. A run killed at any
moment therefore loses at most the cells in flight, and running the same call again computes nothing stored.

Executors:

- ``"local"``: N worker processes (spawn). Each loads the corpus once and, when N > 1, uses one torch thread.
  The parent hands out one cell at a time per worker and enforces the per-cell limit by killing the worker and
  starting a new one; every proxy of that cell is stored with status ``timeout``.
- ``"ray"``: the same, with one Ray actor per worker (``pip install 'zeronas[ray]'``). Connects to
  ``ray_address`` or starts a local instance with ``num_cpus=workers``; a cell past its limit has its actor
  killed and replaced. Workers of a remote cluster need zeronas installed, and any plugin too.
  A user corpus (``--corpus PATH``) must lie at the same path there: each worker reads it and checks its digest.
- ``"serial"``: in this process, one cell after another (debugging, tiny runs); no time limit.

Every worker imports the plugins loaded in this process (:func:`zeronas.plugins.loaded_plugins`: entry points and
``--plugin`` modules) and the call's ``imports`` before scoring, so their proxies are known there: a plugin must be
importable by the workers (installed, or its folder on ``PYTHONPATH``; spawned local workers also get this
process's ``sys.path``).

Each call starts its workers and stops them at the end; a :class:`WorkerPool` keeps them running across calls
(a search scores a few cells per round, and a worker takes seconds to start).

A worker that dies while scoring a cell (segfault, killed by the OOM killer) yields status ``error`` for that
cell's proxies, with the exit code in the message: a cell that crashes its worker is not retried forever.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Protocol, Sequence

from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.plugins import PluginError, import_plugins, load_plugins, worker_imports
from zeronas.progress import ProgressBar
from zeronas.core.config import ScoringConfig
from zeronas.proxies.device import check_config
from zeronas.proxies.registry import get_proxy, proxy_revisions
from zeronas.proxies.runner import Score, score_cell
from zeronas.store import ResultStore, open_store

EXECUTORS: tuple[str, ...] = ("local", "ray", "serial")
_POLL_S = 1.0  # the longest the parent waits without looking at deadlines


class SetupError(RuntimeError):
    """A failure of the run's setup inside a worker (e.g. a proxy it has not registered): the run stops and no
    score is stored, since it says nothing about the cell."""


class ExecutorError(RuntimeError):
    """The run cannot go on: bad arguments, a worker that cannot start, Ray missing."""


@dataclass(frozen=True)
class RunSummary:
    """What a :func:`score_many` call did. ``failed`` counts scored cells with at least one score that is not
    ``ok`` (timeouts included); ``timed_out`` the cells stopped at the time limit."""

    total: int  # distinct cells asked for
    scored: int  # cells computed and written by this call
    skipped: int  # cells already complete in the store
    failed: int
    timed_out: int
    seconds: float
    executor: str = "local"
    workers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Task:
    task_id: int
    canonical_id: str
    recipe_json: str
    proxies: tuple[str, ...]


@dataclass(frozen=True)
class _Event:
    kind: str  # ready | result | cell_error | init_error | died
    slot: int
    task_id: int | None = None
    payload: Any = None


# ----------------------------------------------------------------------------------------------------------------
# The worker: the same class in a spawned process, in a Ray actor and in this process
# ----------------------------------------------------------------------------------------------------------------

def _load_corpus(config: ScoringConfig) -> Any:
    """The corpus the context would load for ``config``; the context's own logic, so both always agree."""
    from zeronas.proxies.context import ScoringContext

    return ScoringContext(None, config).corpus  # type: ignore[arg-type]  # the corpus does not need a cell


class _CellScorer:
    """Holds the config and the corpus (loaded once) and scores one recipe at a time."""

    def __init__(self, config_dict: dict[str, Any], imports: Sequence[str], threads: int | None) -> None:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        import_plugins(imports)  # modules that register extra proxies
        self.config = ScoringConfig.from_dict(config_dict)
        self.corpus = _load_corpus(self.config)

    def ready(self) -> bool:
        return True

    def score(self, recipe_json: str, proxies: Sequence[str]) -> dict[str, Score]:
        for name in proxies:  # a proxy this process does not know is the setup's fault, not the cell's
            try:
                get_proxy(name)
            except KeyError as exc:
                raise SetupError(f"{exc.args[0]} (in a worker process: pass the module that registers it to the "
                                 "workers, e.g. --plugin)") from None
        cell = parse_recipe(recipe_json, source="task")
        return score_cell(cell, proxies, self.config, self.corpus)


def _exit_when_orphaned(parent_pid: int) -> None:
    """A worker whose parent was killed stops within a second instead of finishing a long cell for nobody."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, name="zeronas-orphan-watch", daemon=True).start()


def _local_worker(conn: mpc.Connection, parent_pid: int, config_dict: dict[str, Any], imports: Sequence[str],
                  threads: int | None) -> None:
    """Entry point of a local worker process: ready, then (task_id, recipe_json, proxies) -> result, until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; never a cell's "error"
    _exit_when_orphaned(parent_pid)
    try:
        scorer = _CellScorer(config_dict, imports, threads)
    except PluginError as exc:  # one line naming the plugin says it all
        conn.send(("init_error", None, str(exc)))
        return
    except BaseException:  # noqa: BLE001 - reported to the parent, which stops the run
        conn.send(("init_error", None, traceback.format_exc(limit=8)))
        return
    conn.send(("ready", None, None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, recipe_json, proxies = message
        try:
            reply = ("result", task_id, scorer.score(recipe_json, proxies))
        except SetupError as exc:
            reply = ("setup_error", task_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - outside any proxy (e.g. a bad recipe): a result of the cell
            reply = ("cell_error", task_id, f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


# ----------------------------------------------------------------------------------------------------------------
# Pools: slots that take one task at a time
# ----------------------------------------------------------------------------------------------------------------

class _Pool(Protocol):
    def start(self, slot: int) -> None: ...
    def submit(self, slot: int, task: _Task) -> None: ...
    def wait(self, timeout: float) -> list[_Event]: ...
    def kill(self, slot: int) -> None: ...
    def close(self) -> None: ...


class _LocalPool:
    """Spawned processes, one duplex pipe each (a killed worker cannot corrupt a shared queue)."""

    def __init__(self, config: ScoringConfig, imports: Sequence[str], threads: int | None) -> None:
        self._ctx = mp.get_context("spawn")
        self._args = (os.getpid(), config.to_dict(with_path=True), tuple(imports), threads)
        self._procs: dict[int, Any] = {}
        self._conns: dict[int, mpc.Connection] = {}

    def start(self, slot: int) -> None:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_local_worker, args=(child_end, *self._args), daemon=True,
                                 name=f"zeronas-worker-{slot}")
        proc.start()
        child_end.close()
        self._procs[slot], self._conns[slot] = proc, parent_end

    def submit(self, slot: int, task: _Task) -> None:
        if not self._procs[slot].is_alive():  # died while idle: the caller replaces it, the cell is not lost
            raise BrokenPipeError(f"worker {slot} has exited (exit code {self._procs[slot].exitcode})")
        self._conns[slot].send((task.task_id, task.recipe_json, list(task.proxies)))

    def wait(self, timeout: float) -> list[_Event]:
        owners: dict[Any, int] = {}
        for slot, conn in self._conns.items():
            owners[conn] = slot
            owners[self._procs[slot].sentinel] = slot
        if not owners:
            time.sleep(timeout)
            return []
        events: list[_Event] = []
        for slot in sorted({owners[o] for o in mpc.wait(list(owners), timeout)}):
            conn, proc = self._conns[slot], self._procs[slot]
            try:
                if conn.poll():
                    kind, task_id, payload = conn.recv()
                    events.append(_Event(kind, slot, task_id, payload))
                    continue
            except Exception:  # noqa: BLE001 - EOF or a message cut short by the worker's death
                pass
            proc.join(timeout=1.0)
            if proc.is_alive():  # readable but nothing usable: stop it, it is in an unknown state
                proc.kill()
                proc.join()
            self._forget(slot)
            events.append(_Event("died", slot, None, f"exit code {proc.exitcode}"))
        return events

    def _forget(self, slot: int) -> None:
        conn = self._conns.pop(slot, None)
        self._procs.pop(slot, None)
        if conn is not None:
            conn.close()

    def kill(self, slot: int) -> None:
        proc = self._procs.get(slot)
        if proc is not None:
            proc.kill()
            proc.join()
        self._forget(slot)

    def close(self) -> None:
        for slot in list(self._procs):
            self.kill(slot)


class _SerialPool:
    """This process; ``submit`` does the work. Events are handed back by the next ``wait``."""

    def __init__(self, config: ScoringConfig, imports: Sequence[str]) -> None:
        self._scorer = _CellScorer(config.to_dict(with_path=True), imports, None)
        self._events: list[_Event] = []

    def start(self, slot: int) -> None:
        self._events.append(_Event("ready", slot))

    def submit(self, slot: int, task: _Task) -> None:
        try:
            self._events.append(_Event("result", slot, task.task_id,
                                       self._scorer.score(task.recipe_json, task.proxies)))
        except SetupError as exc:
            self._events.append(_Event("setup_error", slot, task.task_id, str(exc)))
        except Exception as exc:  # noqa: BLE001 - as in a worker process
            self._events.append(_Event("cell_error", slot, task.task_id, f"{type(exc).__name__}: {exc}"))

    def wait(self, timeout: float) -> list[_Event]:
        events, self._events = self._events, []
        return events

    def kill(self, slot: int) -> None:
        pass

    def close(self) -> None:
        pass


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError("executor='ray' needs Ray: pip install 'zeronas[ray]' (or pip install ray)") from exc
    return ray


class _RayPool:
    """One Ray actor per slot (each loads the corpus once); a timed-out actor is killed and replaced."""

    def __init__(self, config: ScoringConfig, imports: Sequence[str], address: str | None, num_cpus: int) -> None:
        ray = self._ray = _import_ray()
        self._started_ray = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
                self._started_ray = True
        self._actor_cls = ray.remote(num_cpus=1, max_restarts=0)(_CellScorer)
        self._args = (config.to_dict(with_path=True), tuple(imports), 1)
        self._actors: dict[int, Any] = {}
        self._refs: dict[Any, tuple[int, str, int | None]] = {}  # object ref -> (slot, kind, task_id)

    @staticmethod
    def cluster_cpus(address: str | None) -> int | None:
        ray = _import_ray()
        if address is None and not ray.is_initialized():
            return None
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
        return int(ray.cluster_resources().get("CPU", 1))

    def start(self, slot: int) -> None:
        actor = self._actors[slot] = self._actor_cls.remote(*self._args)
        self._refs[actor.ready.remote()] = (slot, "ready", None)

    def submit(self, slot: int, task: _Task) -> None:
        ref = self._actors[slot].score.remote(task.recipe_json, list(task.proxies))
        self._refs[ref] = (slot, "result", task.task_id)

    def wait(self, timeout: float) -> list[_Event]:
        if not self._refs:
            time.sleep(timeout)
            return []
        ray = self._ray
        done, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if done:  # take everything that is ready now, not only the first
            done, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        events: list[_Event] = []
        for ref in done:
            slot, kind, task_id = self._refs.pop(ref)
            try:
                value = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # the method raised
                if kind == "ready":
                    events.append(_Event("init_error", slot, None, str(exc)))
                elif isinstance(exc.as_instanceof_cause(), SetupError):
                    events.append(_Event("setup_error", slot, task_id, str(exc).strip().splitlines()[-1]))
                else:
                    events.append(_Event("cell_error", slot, task_id, str(exc).strip().splitlines()[-1]))
                continue
            except ray.exceptions.RayError as exc:  # the actor died
                self.kill(slot)
                lines = str(exc).strip().splitlines()
                plugin = f"{PluginError.__module__}.{PluginError.__name__}: "
                if kind == "ready" and lines[-1].startswith(plugin):  # a plugin it cannot import: that line says it
                    message = lines[-1][len(plugin):]
                else:
                    message = f"{type(exc).__name__}: {lines[0]}"
                events.append(_Event("init_error" if kind == "ready" else "died", slot, task_id, message))
                continue
            events.append(_Event(kind, slot, task_id, value))
        return events

    def kill(self, slot: int) -> None:
        actor = self._actors.pop(slot, None)
        for ref in [r for r, (s, _, _) in self._refs.items() if s == slot]:
            del self._refs[ref]
        if actor is not None:
            self._ray.kill(actor, no_restart=True)

    def close(self) -> None:
        for slot in list(self._actors):
            self.kill(slot)
        if self._started_ray:
            self._ray.shutdown()


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------

def _as_cell(item: Any) -> Cell:
    """A :class:`Cell`, anything with a ``.cell`` (a benchmark :class:`Architecture`), or a recipe."""
    if isinstance(item, Cell):
        return item
    cell = getattr(item, "cell", None)
    if isinstance(cell, Cell):
        return cell
    return parse_recipe(item)


def _failure(task: _Task, status: str, message: str, seconds: float) -> dict[str, Score]:
    return {p: Score(p, None, status, message, seconds) for p in task.proxies}


@dataclass
class _Slots:
    """A pool's slots and what each is doing between tasks: kept across :func:`_drive` calls by a
    :class:`WorkerPool`, so its workers (and the corpus each loaded) serve many calls."""

    pool: _Pool
    n: int
    idle: list[int] = field(default_factory=list)
    starting: set[int] = field(default_factory=set)
    idle_deaths: int = 0

    def start(self, slot: int) -> None:
        self.pool.start(slot)
        self.starting.add(slot)

    def lost_before_a_cell(self, detail: str) -> None:
        """Count a worker that died while starting or idle (no cell lost); stop when it keeps happening."""
        self.idle_deaths += 1
        if self.idle_deaths > 3 * self.n:
            raise ExecutorError(f"workers keep dying before they get a cell ({detail})")


def _drive(slots: _Slots, tasks: Sequence[_Task], timeout_s: float | None,
           on_done: Callable[[_Task, dict[str, Score], bool], None]) -> None:
    """Hand tasks to slots one at a time, enforce the per-cell limit, and report each finished task. Starts the
    slots the tasks need that are not already running; leaves the running ones running.

    Longer than 60 lines on purpose: it is one event loop (start, submit, wait, handle each kind of event,
    enforce the limit) that reads top to bottom; split up, its state (pending, busy, idle, starting) would have
    to travel through every piece."""
    pending = deque(tasks)
    busy: dict[int, tuple[_Task, float]] = {}
    idle, starting = slots.idle, slots.starting
    running = set(idle) | starting
    for slot in range(slots.n):
        if len(running) >= min(slots.n, len(tasks)):
            break
        if slot not in running:
            slots.start(slot)
            running.add(slot)
    while pending or busy:
        while idle and pending:
            slot, task = idle.pop(), pending.popleft()
            try:
                slots.pool.submit(slot, task)
            except (OSError, EOFError) as exc:  # the idle worker is gone (killed while it waited): replace it
                pending.appendleft(task)
                slots.pool.kill(slot)
                slots.lost_before_a_cell(str(exc))
                slots.start(slot)
                continue
            busy[slot] = (task, time.monotonic())
        if not (busy or starting or idle):
            raise ExecutorError("no worker left to run the remaining cells")
        wait_s = _POLL_S
        if timeout_s is not None and busy:
            first_deadline = min(t0 for _, t0 in busy.values()) + timeout_s
            wait_s = min(wait_s, max(0.0, first_deadline - time.monotonic()))
        for ev in slots.pool.wait(wait_s):
            if ev.kind == "ready":
                starting.discard(ev.slot)
                idle.append(ev.slot)
            elif ev.kind == "init_error":
                raise ExecutorError(f"a worker could not start:\n{ev.payload}")
            elif ev.kind == "setup_error":  # nothing is stored for it: the next run with a fixed setup scores it
                raise ExecutorError(f"a worker cannot score: {ev.payload}")
            elif ev.kind in ("result", "cell_error"):
                task, t0 = busy.pop(ev.slot)
                if ev.kind == "result":
                    on_done(task, ev.payload, False)
                else:
                    on_done(task, _failure(task, "error", ev.payload, time.monotonic() - t0), False)
                idle.append(ev.slot)
            elif ev.kind == "died":
                if ev.slot in busy:
                    task, t0 = busy.pop(ev.slot)
                    on_done(task, _failure(task, "error", f"the worker process died while scoring this cell "
                                                          f"({ev.payload})", time.monotonic() - t0), False)
                else:  # died while starting or while idle: no cell was lost; start another, a few times
                    if ev.slot in idle:
                        idle.remove(ev.slot)
                    slots.lost_before_a_cell(ev.payload)
                starting.discard(ev.slot)
                if pending:
                    slots.start(ev.slot)
        if timeout_s is not None:
            now = time.monotonic()
            for slot, (task, t0) in list(busy.items()):
                if now - t0 >= timeout_s:
                    del busy[slot]
                    slots.pool.kill(slot)  # really stopped: the process (or actor) is gone
                    on_done(task, _failure(task, "timeout", f"the cell ran past the {timeout_s:g} s limit; its "
                                                            "worker was stopped", now - t0), True)
                    if pending:
                        slots.start(slot)


def _progress_bar(total: int, skipped: int, enabled: bool) -> ProgressBar:
    """The scoring bar; in a log, a plain line every minute and one at the end."""

    def line(bar: ProgressBar) -> str:
        eta = (bar.total - bar.completed) / bar.rate if bar.rate > 0 else float("inf")
        return (f"scored {bar.completed}/{bar.total} cells ({skipped} skipped), {60 * bar.rate:.1f} cells/min, "
                f"{bar.fields['failed']} with a failed score, eta {eta / 60:.0f} min")

    return ProgressBar("scoring", total, enabled=enabled, unit="cells", eta=True, line=line,
                       detail=f"{{failed}} failed · {skipped} skipped", failed=0)


def _check_executor(executor: str, workers: int | None) -> None:
    if executor not in EXECUTORS:
        raise ExecutorError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
    if workers is not None and workers < 1:
        raise ExecutorError(f"workers must be at least 1, got {workers}")


def _worker_count(executor: str, workers: int | None, ray_address: str | None) -> int:
    """The number of workers asked for (default: every core, or with Ray the cluster's CPUs; serial: one)."""
    if executor == "serial":
        return 1
    if executor == "ray" and workers is None:
        workers = _RayPool.cluster_cpus(ray_address)
    return workers or os.cpu_count() or 1


def _make_pool(executor: str, config: ScoringConfig, imports: Sequence[str], ray_address: str | None,
               n_workers: int) -> _Pool:
    if executor == "local":
        return _LocalPool(config, imports, 1 if n_workers > 1 else None)
    if executor == "ray":
        return _RayPool(config, imports, ray_address, n_workers)
    return _SerialPool(config, imports)


class WorkerPool:
    """Workers that outlive one :func:`score_many` call: a search scores a few cells per round, and starting a
    worker (torch, the corpus) costs seconds, so its rounds share one pool. Workers start on first use; a worker
    stopped at the time limit is replaced when work needs it. Use as a context manager, or call :meth:`close`.

    ``executor``, ``workers``, ``ray_address`` and ``imports`` are as for :func:`score_many`; ``config`` is
    the one scoring config every call must use (each worker holds the corpus of that config)."""

    def __init__(self, config: ScoringConfig, *, workers: int | None = None,
                 executor: Literal["local", "ray", "serial"] = "local", ray_address: str | None = None,
                 imports: Sequence[str] = ()) -> None:
        _check_executor(executor, workers)
        check_config(config)
        load_plugins()  # the entry points' plugins, once per process: the workers import them too
        imports = worker_imports(imports)
        import_plugins(imports)
        self.workers = _worker_count(executor, workers, ray_address)
        self.config = config
        self.executor = executor
        self.imports = tuple(imports)
        self._ray_address = ray_address
        self._slots: _Slots | None = None
        self._closed = False

    @property
    def slots(self) -> _Slots:
        """The slots, created on first use (with Ray: connecting to, or starting, the cluster)."""
        if self._closed:
            raise ExecutorError("this worker pool is closed")
        if self._slots is None:
            self._slots = _Slots(_make_pool(self.executor, self.config, self.imports, self._ray_address,
                                            self.workers), self.workers)
        return self._slots

    def score(self, cells: Iterable[Cell | Any], proxies: Sequence[str], store: ResultStore | str | Path, *,
              timeout_s: float | None = None, progress: bool = True) -> RunSummary:
        """:func:`score_many` with this pool's workers."""
        return score_many(cells, proxies, self.config, store, timeout_s=timeout_s, progress=progress, pool=self)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        if not self._closed:
            self._closed = True
            if self._slots is not None:
                self._slots.pool.close()
                self._slots.idle.clear()
                self._slots.starting.clear()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def score_many(cells: Iterable[Cell | Any], proxies: Sequence[str], config: ScoringConfig | None,
               store: ResultStore | str | Path, *, workers: int | None = None,
               timeout_s: float | None = None, progress: bool = True,
               executor: Literal["local", "ray", "serial"] = "local", ray_address: str | None = None,
               imports: Sequence[str] = (), pool: "WorkerPool | None" = None) -> RunSummary:
    """Score every cell with every proxy under ``config`` (None: the default config) and store the results;
    skip what the store has.

    ``cells``: :class:`Cell` objects, benchmark architectures (anything with ``.cell``) or recipes; duplicates
    (same canonical id) are scored once. ``store``: a :class:`~zeronas.store.ResultStore` or a URL/path (opened
    and closed here). ``workers``: processes/actors (default ``os.cpu_count()``; with ``ray_address``, the
    cluster's CPUs). ``timeout_s``: per-cell wall-clock limit, counted from when a ready worker takes the cell.
    ``imports``: modules each worker imports first, to register proxies that live outside ``zeronas.proxies``
    (the plugins loaded in this process, :func:`zeronas.plugins.loaded_plugins`, are always added).
    ``pool``: an open :class:`WorkerPool` whose running workers score the cells (its executor, workers and
    imports replace those arguments; its config must be ``config``); without one, workers start and stop here.
    """
    begin = time.monotonic()
    config = check_config(config or ScoringConfig())  # a bad config or device stops here, before any row
    executor, imports = _check_run(config, pool, executor, workers, timeout_s, imports)
    names = list(dict.fromkeys(proxies))
    if not names:
        raise ExecutorError("no proxy named")
    for name in names:
        get_proxy(name)  # KeyError naming the known proxies
    unique: dict[str, Cell] = {}
    for item in cells:
        cell = _as_cell(item)
        unique.setdefault(cell.canonical_id, cell)

    own_store = isinstance(store, (str, Path))
    db = open_store(store) if own_store else store
    try:
        revisions = proxy_revisions(names)
        todo = db.missing_proxies(list(unique), names, config, revisions=revisions)
        tasks = [_Task(i, cid, unique[cid].to_json(), tuple(missing)) for i, (cid, missing) in enumerate(todo.items())]
        n_workers = pool.workers if pool is not None else _worker_count(executor, workers, ray_address)
        n_slots = min(n_workers, len(tasks))

        def store_cell(task: _Task, scores: dict[str, Score]) -> None:
            db.put_cell(task.canonical_id, task.recipe_json, config, scores, revisions=revisions)

        counts = _run_tasks(tasks, store_cell, len(unique) - len(todo), progress, timeout_s, pool,
                            lambda: _Slots(_make_pool(executor, config, imports, ray_address, n_workers), n_slots))
    finally:
        if own_store:
            db.close()
    return RunSummary(total=len(unique), scored=counts["scored"], skipped=len(unique) - len(todo),
                      failed=counts["failed"], timed_out=counts["timed_out"], seconds=time.monotonic() - begin,
                      executor=executor, workers=n_slots)


def _check_run(config: ScoringConfig, pool: "WorkerPool | None", executor: str, workers: int | None,
               timeout_s: float | None, imports: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The executor and the workers' imports of one :func:`score_many` call, after checking its arguments (a
    pool's replace the call's); the plugins are imported here too, so a missing one fails before any work."""
    if pool is not None:
        if pool.closed:
            raise ExecutorError("this worker pool is closed")
        if pool.config.config_hash() != config.config_hash():
            raise ExecutorError(f"the worker pool scores under config {pool.config.config_hash()}, not "
                                f"{config.config_hash()}")
        executor, imports = pool.executor, pool.imports
    _check_executor(executor, workers)
    if timeout_s is not None and not timeout_s > 0:
        raise ExecutorError(f"timeout_s must be positive, got {timeout_s!r}")
    if timeout_s is not None and executor == "serial":
        raise ExecutorError("the serial executor cannot stop a cell: use executor='local' for a time limit")
    if pool is None:
        load_plugins()  # the entry points' plugins, once per process: the workers import them too
        imports = worker_imports(imports)
    import_plugins(imports)
    return executor, tuple(imports)


def _run_tasks(tasks: list[_Task], store_cell: Callable[[_Task, dict[str, Score]], None], skipped: int,
               progress: bool, timeout_s: float | None, pool: "WorkerPool | None",
               new_slots: Callable[[], _Slots]) -> dict[str, int]:
    """Score the tasks on the pool's workers (or on new ones, stopped at the end), storing each cell as it
    finishes and counting it on the progress bar; returns the counts of cells scored, failed and timed out."""
    counts = {"scored": 0, "failed": 0, "timed_out": 0}
    if not tasks:
        return counts
    with _progress_bar(len(tasks), skipped, progress) as bar:

        def on_done(task: _Task, scores: dict[str, Score], timed_out: bool) -> None:
            store_cell(task, scores)
            counts["scored"] += 1
            counts["failed"] += any(not s.ok for s in scores.values())
            counts["timed_out"] += timed_out
            bar.update(advance=1, failed=counts["failed"])

        if pool is not None:
            try:
                _drive(pool.slots, tasks, timeout_s, on_done)
            except BaseException:  # cells may still be in flight: the pool's state is unknown
                pool.close()
                raise
        else:
            slots = new_slots()
            try:
                _drive(slots, tasks, timeout_s, on_done)
            finally:
                slots.pool.close()
    return counts


__all__ = ["EXECUTORS", "ExecutorError", "RunSummary", "WorkerPool", "score_many"]
