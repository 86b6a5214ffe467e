"""Score many cells with many proxies, in parallel, resumably.

:func:`score_many` asks the store which (cell, proxy) pairs are missing for the config, scores only those, and
writes each cell in one transaction as soon as it finishes, from the parent process only. A run killed at any
moment therefore loses at most the cells in flight, and running the same call again computes nothing stored.

Executors:

- ``"local"``: N worker processes (spawn). Each loads the corpus once and, when N > 1, uses one torch thread.
  The parent hands out one cell at a time per worker, one proxy after another (the worker keeps the cell's model
  and cache between them), and enforces the per-proxy limit by killing the worker and starting a new one: that
  proxy is stored with status ``timeout``, the proxies already done are kept, and the rest go on in a new worker.
- ``"ray"``: the same, with one Ray actor per worker (``pip install 'zeronas[ray]'``). Connects to
  ``ray_address`` or starts a local instance with ``num_cpus=workers``; a proxy past its limit has its actor
  killed and replaced. Workers of a remote cluster need zeronas installed, and any plugin too.
  A user corpus (``--corpus PATH``) must lie at the same path there: each worker reads it and checks its digest.
- ``"serial"``: in this process, one cell after another (debugging, tiny runs); no time limit.

Every worker imports the plugins loaded in this process (:func:`zeronas.plugins.loaded_plugins`: entry points and
``--plugin`` modules) and the call's ``imports`` before scoring, so their proxies are known there: a plugin must be
importable by the workers (installed, or its folder on ``PYTHONPATH``; spawned local workers also get this
process's ``sys.path``).

Each call starts its workers and stops them at the end; a :class:`WorkerPool` keeps them running across calls
(a search scores a few cells per round, and a worker takes seconds to start).

A worker that dies while scoring a cell (segfault, ``os._exit``, killed by the OOM killer) yields status ``error``
for the proxy it was running, with the exit code in the message (a cell that crashes its worker is not retried
forever); the cell's other proxies are kept or scored by a new worker. Each proxy's failure is its own row.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import threading
import time
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
from zeronas.proxies.runner import Score
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

    return ScoringContext(None, config)._raw_corpus  # type: ignore[arg-type]  # the corpus does not need a cell


class _CellScorer:
    """Holds the config and the corpus (loaded once) and scores one recipe at a time, one proxy or a few per
    call: the context of the last recipe (its model, its cache) is kept, so the proxies of one cell sent one by
    one share it as they would in one call.

    ``isolated``: this is a worker process (or actor) of its own, where Ctrl-C is ignored, so a
    ``KeyboardInterrupt`` can only come from a proxy and is that proxy's error."""

    def __init__(self, config_dict: dict[str, Any], imports: Sequence[str], threads: int | None,
                 isolated: bool = True) -> None:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        import_plugins(imports)  # modules that register extra proxies
        self.config = ScoringConfig.from_dict(config_dict)
        self.corpus = _load_corpus(self.config)
        self.isolated = isolated
        self._recipe: str | None = None
        self._ctx: Any = None

    def ready(self) -> bool:
        return True

    def score(self, recipe_json: str, proxies: Sequence[str]) -> dict[str, Score]:
        from zeronas.proxies.context import ScoringContext
        from zeronas.proxies.runner import ProxyReturnError, run_proxies

        for name in proxies:  # a proxy this process does not know is the setup's fault, not the cell's
            try:
                get_proxy(name)
            except KeyError as exc:
                raise SetupError(f"{exc.args[0]} (in a worker process: pass the module that registers it to the "
                                 "workers, e.g. --plugin)") from None
        if recipe_json != self._recipe:
            self._recipe, self._ctx = None, None  # the last cell's model and cache go
            cell = parse_recipe(recipe_json, source="task")
            self._ctx, self._recipe = ScoringContext(cell, self.config, self.corpus), recipe_json
        try:
            return run_proxies(proxies, self._ctx, catch_interrupt=self.isolated)
        except ProxyReturnError as exc:  # the plugin's fault, not the cell's: the run stops, nothing stored
            raise SetupError(str(exc)) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if type(exc).__name__.endswith("Error") and type(exc).__module__.startswith("zeronas") \
        else f"{type(exc).__name__}: {text}"


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
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the run, in one line
        conn.send(("init_error", None, _one_line(exc)))
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
        self._scorer = _CellScorer(config.to_dict(with_path=True), imports, None, isolated=False)
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
                    events.append(_Event("init_error", slot, None, str(exc).strip().splitlines()[-1]))
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


@dataclass
class _CellWork:
    """One cell in progress: its proxies are sent one at a time to one worker (which keeps the cell's context
    between them), so that a proxy that hangs, exits or kills its worker costs only its own score."""

    task: _Task
    done: dict[str, Score] = field(default_factory=dict)
    timed_out: bool = False

    @property
    def next_proxy(self) -> str | None:
        return next((p for p in self.task.proxies if p not in self.done), None)

    def fail_rest(self, status: str, message: str, seconds: float) -> None:
        """A failure outside any proxy (the recipe itself): every proxy not yet done gets it."""
        for p in self.task.proxies:
            self.done.setdefault(p, Score(p, None, status, message, seconds))

    def one(self, name: str) -> _Task:
        return _Task(self.task.task_id, self.task.canonical_id, self.task.recipe_json, (name,))


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


class _Driver:
    """Hands the cells' proxies to slots, one proxy at a time per slot, enforces the per-proxy limit, and reports
    each finished cell. Starts the slots the tasks need that are not already running; leaves running ones running."""

    def __init__(self, slots: _Slots, tasks: Sequence[_Task], timeout_s: float | None,
                 on_done: Callable[[_Task, dict[str, Score], bool], None]) -> None:
        self.slots, self.timeout_s, self.on_done = slots, timeout_s, on_done
        self.pending: deque[_CellWork] = deque(_CellWork(t) for t in tasks)
        self.busy: dict[int, tuple[_CellWork, str, float]] = {}  # slot -> (cell, proxy running, its start)
        running = set(slots.idle) | slots.starting
        for slot in range(slots.n):
            if len(running) >= min(slots.n, len(tasks)):
                break
            if slot not in running:
                slots.start(slot)
                running.add(slot)

    def run(self) -> None:
        slots = self.slots
        while self.pending or self.busy:
            while slots.idle and self.pending:
                self._submit(slots.idle.pop(), self.pending.popleft())
            if not (self.busy or slots.starting or slots.idle):
                raise ExecutorError("no worker left to run the remaining cells")
            wait_s = _POLL_S
            if self.timeout_s is not None and self.busy:
                first = min(t0 for _, _, t0 in self.busy.values()) + self.timeout_s
                wait_s = min(wait_s, max(0.0, first - time.monotonic()))
            for ev in slots.pool.wait(wait_s):
                self._event(ev)
            self._enforce_limit()

    def _submit(self, slot: int, work: _CellWork) -> None:
        """Send the cell's next proxy to ``slot``; a worker found gone is replaced and the cell waits again."""
        name = work.next_proxy
        assert name is not None
        try:
            self.slots.pool.submit(slot, work.one(name))
        except (OSError, EOFError) as exc:  # the idle worker is gone (killed while it waited): replace it
            self.pending.appendleft(work)
            self.slots.pool.kill(slot)
            self.slots.lost_before_a_cell(str(exc))
            self.slots.start(slot)
            return
        self.busy[slot] = (work, name, time.monotonic())

    def _advance(self, slot: int, work: _CellWork) -> None:
        """After a proxy finished on a live worker: its next proxy on the same worker, or the cell is done."""
        if work.next_proxy is None:
            self.on_done(work.task, {p: work.done[p] for p in work.task.proxies}, work.timed_out)
            self.slots.idle.append(slot)
        else:
            self._submit(slot, work)

    def _lost(self, work: _CellWork) -> None:
        """The worker of ``work`` is gone: the cell's other proxies wait for another worker."""
        if work.next_proxy is None:
            self.on_done(work.task, {p: work.done[p] for p in work.task.proxies}, work.timed_out)
        else:
            self.pending.appendleft(work)

    def _event(self, ev: _Event) -> None:
        slots = self.slots
        if ev.kind == "ready":
            slots.starting.discard(ev.slot)
            slots.idle.append(ev.slot)
        elif ev.kind == "init_error":
            raise ExecutorError(f"a worker could not start: {ev.payload}")
        elif ev.kind == "setup_error":  # nothing is stored for it: the next run with a fixed setup scores it
            raise ExecutorError(f"a worker cannot score: {ev.payload}")
        elif ev.kind in ("result", "cell_error"):
            work, name, t0 = self.busy.pop(ev.slot)
            if ev.kind == "result":
                work.done.update(ev.payload)
            else:
                work.fail_rest("error", ev.payload, time.monotonic() - t0)
            self._advance(ev.slot, work)
        elif ev.kind == "died":
            if ev.slot in self.busy:
                work, name, t0 = self.busy.pop(ev.slot)
                work.done[name] = Score(name, None, "error", f"the worker process died while running this proxy "
                                                             f"({ev.payload})", time.monotonic() - t0)
                self._lost(work)
            else:  # died while starting or while idle: no cell was lost; start another, a few times
                if ev.slot in slots.idle:
                    slots.idle.remove(ev.slot)
                slots.lost_before_a_cell(ev.payload)
            slots.starting.discard(ev.slot)
            if self.pending:
                slots.start(ev.slot)

    def _enforce_limit(self) -> None:
        if self.timeout_s is None:
            return
        now = time.monotonic()
        for slot, (work, name, t0) in list(self.busy.items()):
            if now - t0 >= self.timeout_s:
                del self.busy[slot]
                self.slots.pool.kill(slot)  # really stopped: the process (or actor) is gone
                work.done[name] = Score(name, None, "timeout", f"the proxy ran past the {self.timeout_s:g} s "
                                                               "limit; its worker was stopped", now - t0)
                work.timed_out = True
                self._lost(work)
                if self.pending:
                    self.slots.start(slot)


def _drive(slots: _Slots, tasks: Sequence[_Task], timeout_s: float | None,
           on_done: Callable[[_Task, dict[str, Score], bool], None]) -> None:
    """Score every task's proxies on the slots (see :class:`_Driver`)."""
    _Driver(slots, tasks, timeout_s, on_done).run()


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
    cluster's CPUs). ``timeout_s``: per-proxy wall-clock limit, counted from when a ready worker starts the proxy
    (the first proxy of a cell includes building its model).
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
        if tasks:  # a corpus too short for a proxy stops the run here, before any worker or row
            from zeronas.proxies.needs import check_data_needs

            check_data_needs(names, config)
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
