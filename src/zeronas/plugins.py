"""Plugins: proxies, search spaces and model adapters that live in the user's own package.

A plugin is a module that registers things when imported (``@proxy``, ``register_space``, ...), named either

- by an entry point of the group ``zeronas.plugins`` of an installed distribution (no option needed)::

      [project.entry-points."zeronas.plugins"]
      my_proxies = "mypkg.proxies"          # a module to import
      my_setup = "mypkg.setup:register"     # or module:attribute; a callable attribute is called once

- or explicitly: ``zeronas --plugin mypkg.proxies ...`` / :func:`load_plugins` (``module`` or ``module:attribute``).

Plugins are loaded in one place, :func:`load_plugins`, called by the entry points: the command line,
:func:`zeronas.score_model` and the scoring executor (:func:`zeronas.run.score_many`, :class:`WorkerPool`); a
program of your own that looks up a plugin's proxy or space by name calls it once first. The registries never
load plugins themselves; they register their built-ins before any plugin's entry, so a plugin reusing a built-in
name is the one that fails, naming both. Every plugin loaded is remembered (:func:`loaded_plugins`) and the
executor passes that list to its workers (spawned processes, Ray actors), which import the same modules before
scoring. The plugin must therefore be importable there too: installed, or its folder on ``PYTHONPATH`` (for Ray,
on every node of the cluster).
"""

from __future__ import annotations

import importlib
import warnings
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points
from typing import Iterator, Sequence

__all__ = ["GROUP", "PluginError", "PluginWarning", "broken_plugins", "load_plugins", "loaded_plugins",
           "import_plugins", "scoped", "worker_imports"]

GROUP = "zeronas.plugins"

_loaded: list[str] = []  # specs loaded by load_plugins, in order: what every worker imports too
_called: set[str] = set()  # module:attribute specs whose attribute was called (never twice in one process)
_entry_points_loaded = False
_broken: dict[str, str] = {}  # entry point value -> why it could not be loaded (one line)


class PluginError(ImportError):
    """A plugin that cannot be imported, or raised while importing; the message is one line naming it."""


class PluginWarning(UserWarning):
    """An installed (entry-point) plugin that cannot be loaded: every command still works, without what that plugin
    registers; the message is one line naming the plugin, its distribution and the error."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, ImportError) else f"{type(exc).__name__}: {text}"


def _import(spec: str, what: str) -> None:
    """Import ``spec`` (``module`` or ``module:attribute``; a callable attribute is called, once per process).
    ``what`` names the plugin in the error message."""
    module_name, _, attr = spec.partition(":")
    module_name, attr = module_name.strip(), attr.split("[")[0].strip()  # an entry point's [extras] are not ours
    if not module_name:
        raise PluginError(f"{what}: no module named")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {what}: {_one_line(exc)} (is it installed, or its folder on "
                          "PYTHONPATH?)") from exc
    except Exception as exc:  # noqa: BLE001 - the plugin's own code failed: say which plugin
        raise PluginError(f"{what} failed while importing: {_one_line(exc)}") from exc
    if not attr or spec in _called:
        return
    target = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f"{what}: module {module_name!r} has no attribute {attr!r}") from None
    if callable(target):
        _called.add(spec)
        try:
            target()
        except Exception as exc:  # noqa: BLE001
            _called.discard(spec)
            raise PluginError(f"{what} failed: {_one_line(exc)}") from exc


def _entry_points() -> list[EntryPoint]:
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        seen.setdefault(ep.value, ep)  # one distribution found twice on sys.path: load it once
    return list(seen.values())


def _record(spec: str) -> None:
    if spec not in _loaded:
        _loaded.append(spec)


def load_plugins(modules: Sequence[str] = ()) -> tuple[str, ...]:
    """Load the entry-point plugins (once per process) and ``modules`` (each ``module`` or ``module:attribute``;
    comma-separated lists are split). Returns every plugin loaded so far, for the workers.

    An installed plugin that cannot be loaded does not stop anything: it is a :class:`PluginWarning` (once per
    process; :func:`broken_plugins` lists them), and what it would register is missing, so that one broken package
    never blocks every command (``zeronas store --help`` included). A ``module`` asked for by name is different:
    one that cannot be loaded raises :class:`PluginError`."""
    global _entry_points_loaded
    specs = [s.strip() for m in modules for s in m.split(",") if s.strip()]
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist is not None else "unknown"
            try:
                _import(ep.value, f"plugin {ep.name!r} (entry point {GROUP} of distribution {dist!r}: {ep.value})")
            except PluginError as exc:
                _broken[ep.value] = str(exc)
                warnings.warn(PluginWarning(f"{exc}; its proxies, spaces and adapters are not available"),
                              stacklevel=2)
                continue
            _record(ep.value)
    for spec in specs:
        _import(spec, f"plugin module {spec!r}")
        _record(spec)
    return tuple(_loaded)


def broken_plugins() -> dict[str, str]:
    """The installed plugins that could not be loaded in this process: entry point -> the one-line reason."""
    return dict(_broken)


def loaded_plugins() -> tuple[str, ...]:
    """The plugins :func:`load_plugins` has loaded in this process, in order."""
    return tuple(_loaded)


def import_plugins(specs: Sequence[str]) -> None:
    """Import ``specs`` (a worker's list) with :class:`PluginError` messages, without adding them to
    :func:`loaded_plugins`: a worker's or a library call's imports stay that call's."""
    for spec in specs:
        _import(spec, f"plugin module {spec!r}")


@contextmanager
def scoped() -> Iterator[None]:
    """For tests: what is loaded inside the ``with`` block (the entry points, ``--plugin`` modules, the record of
    called attributes) is forgotten when it ends. The registries have their own scopes (``PROXIES.scoped()``...);
    an imported module stays imported."""
    global _entry_points_loaded
    saved = (list(_loaded), set(_called), _entry_points_loaded, dict(_broken))
    _loaded.clear()
    _called.clear()
    _broken.clear()
    _entry_points_loaded = False
    try:
        yield
    finally:
        _loaded[:] = saved[0]
        _called.clear()
        _called.update(saved[1])
        _broken.clear()
        _broken.update(saved[3])
        _entry_points_loaded = saved[2]


def worker_imports(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """What a worker must import: the loaded plugins, then ``extra`` (a call's own modules), each once."""
    return tuple(dict.fromkeys([*_loaded, *extra]))
