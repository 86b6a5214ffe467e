"""Plugins: proxies and search spaces from a package outside zeronas, found by the CLI and by every worker
through ``--plugin MODULE`` or an entry point of the group ``zeronas.plugins``.

The plugins are module files written to a temporary folder. Runs that load one successfully are subprocesses
(the plugin then never stays registered, or in the list handed to workers, in this test process); the
in-process tests restore the registries and the plugin state afterwards."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zeronas import plugins
from zeronas.cells import spaces
from zeronas.cli import app
from zeronas.proxies import TINY, registry

runner = CliRunner()

PROXY_MODULE = "zn_plugin_proxies"
PROXY_SOURCE = '''
"""A proxy of the user's own: the number of nodes of the cell; records the pid of each process that scores."""
import os
from pathlib import Path

from zeronas.proxies import proxy


@proxy("zn_nodes", higher_is_better=False, needs_data=False, description="nodes of the cell (plugin test)")
def zn_nodes(ctx):
    Path(os.environ["ZN_PIDS"], str(os.getpid())).touch()
    return float(len(ctx.cell))
'''

SPACE_MODULE = "zn_plugin_space"
SPACE_SOURCE = '''
"""A search space of the user's own: the three reference cells. ``register`` is the entry point's callable."""
from zeronas.cells.reference import reference_cell
from zeronas.cells.spaces import SearchSpace, register_space

CALLS = []


class TinySpace(SearchSpace):
    name = "zn-tiny"

    def __init__(self):
        self.cells = [reference_cell(n) for n in ("rnn", "gru", "lstm")]

    def sample(self, rng):
        return self.cells[int(rng.integers(len(self.cells)))]

    def mutate(self, cell, rng):
        others = [c for c in self.cells if c.canonical_id != cell.canonical_id]
        return others[int(rng.integers(len(others)))]


def register():
    CALLS.append(1)
    register_space(TinySpace())
'''


def _write_dist(folder: Path, entry_points: str) -> None:
    """A fake installed distribution ``zn-plugin-dist`` whose entry points are ``entry_points``."""
    info = folder / "zn_plugin_dist-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zn-plugin-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[zeronas.plugins]\n{entry_points}\n")


def _plugin_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / f"{PROXY_MODULE}.py").write_text(PROXY_SOURCE)
    (folder / f"{SPACE_MODULE}.py").write_text(SPACE_SOURCE)
    (tmp_path / "pids").mkdir()
    (tmp_path / "tiny.json").write_text(json.dumps({k: v for k, v in TINY.to_dict().items() if k != "device"}))
    return folder


def _zeronas(args: list[str], tmp_path: Path, folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
           "ZN_PIDS": str(tmp_path / "pids")}
    return subprocess.Popen([sys.executable, "-m", "zeronas", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done(proc: subprocess.Popen, timeout: float = 300) -> str:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr
    return stdout


@pytest.fixture
def isolated(monkeypatch):
    """The registries and the plugin state as they are now, restored after the test."""
    with plugins.scoped(), registry.PROXIES.scoped(), spaces.SPACES.scoped():
        yield monkeypatch
    for name in (PROXY_MODULE, SPACE_MODULE, "zn_clash"):
        sys.modules.pop(name, None)


def test_plugin_proxy_is_scored_by_the_workers_of_evaluate(tmp_path):
    """The issue's Done-when: a proxy outside zeronas, named by --plugin, scored by 2 worker processes."""
    folder = _plugin_folder(tmp_path)
    db = tmp_path / "s.db"
    proc = _zeronas(["--plugin", PROXY_MODULE, "evaluate", "--proxies", "zn_nodes", "--limit", "4",
                     "--workers", "2", "--store", f"sqlite:///{db}", "--scoring-config", str(tmp_path / "tiny.json"),
                     "--json", "--quiet"], tmp_path, folder)
    out = json.loads(_done(proc))
    assert set(out["proxies"]) == {"zn_nodes"} and out["scoring"]["scored"] == 4
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT a.recipe_json, r.value, r.status FROM results r JOIN archs a "
                           "USING (canonical_id) WHERE r.proxy = 'zn_nodes'").fetchall()
    finally:
        con.close()
    assert len(rows) == 4 and all(status == "ok" for _, _, status in rows)
    from zeronas.cells.recipe import parse_recipe

    assert all(value == float(len(parse_recipe(recipe, source="test"))) for recipe, value, _ in rows)
    scorers = {int(p.name) for p in (tmp_path / "pids").iterdir()}
    assert scorers and proc.pid not in scorers  # scored in the worker processes, which imported the plugin


def test_entry_point_plugins_need_no_option(tmp_path):
    """An installed distribution's entry points: its proxy is listed and its space searched, with no option."""
    folder = _plugin_folder(tmp_path)
    _write_dist(folder, f"proxies = {PROXY_MODULE}\nspace = {SPACE_MODULE}:register")
    listing = _zeronas(["proxies", "--json"], tmp_path, folder)
    search = _zeronas(["search", "--space", "zn-tiny", "--algorithm", "random", "--budget", "3", "--proxy",
                       "zn_nodes", "--workers", "1", "--store", f"sqlite:///{tmp_path / 's.db'}", "--scoring-config",
                       str(tmp_path / "tiny.json"), "--json", "--quiet"], tmp_path, folder)
    specs = {s["name"]: s for s in json.loads(_done(listing))}
    assert specs["zn_nodes"]["description"] == "nodes of the cell (plugin test)"
    assert "zen" in specs  # the built-ins are still there
    top = json.loads(_done(search))["top"]
    assert [row["scores"]["zn_nodes"]["value"] for row in top] == sorted(row["scores"]["zn_nodes"]["value"]
                                                                          for row in top)
    assert len(top) == 3  # the three cells of the plugin's space


def test_entry_point_space_and_callable_in_process(tmp_path, isolated):
    folder = _plugin_folder(tmp_path)
    _write_dist(folder, f"space = {SPACE_MODULE}:register")
    isolated.syspath_prepend(str(folder))
    assert "zn-tiny" not in spaces.list_spaces()  # a registry never loads plugins: the entry points do
    assert plugins.load_plugins() == (f"{SPACE_MODULE}:register",)
    assert spaces.get_space("zn-tiny").name == "zn-tiny" and "zn-tiny" in spaces.list_spaces()
    assert plugins.load_plugins() == (f"{SPACE_MODULE}:register",)
    assert sys.modules[SPACE_MODULE].CALLS == [1]  # called once, however often the plugins are loaded
    assert plugins.worker_imports(["extra.module"]) == (f"{SPACE_MODULE}:register", "extra.module")


def test_missing_plugin_is_one_clean_error_line():
    result = runner.invoke(app, ["--plugin", "zn_no_such_module", "proxies"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "plugin module 'zn_no_such_module'" in lines[0], result.output
    assert "No module named 'zn_no_such_module'" in lines[0] and "Traceback" not in result.output


def test_broken_entry_point_names_distribution_and_entry_point(tmp_path, isolated):
    _write_dist(tmp_path, "broken = zn_missing_mod:setup")
    isolated.syspath_prepend(str(tmp_path))
    with pytest.warns(plugins.PluginWarning) as info:
        assert plugins.load_plugins() == ()
    message = str(info[0].message)
    assert "'broken'" in message and "'zn-plugin-dist'" in message and "No module named 'zn_missing_mod'" in message
    assert list(plugins.broken_plugins()) == ["zn_missing_mod:setup"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plugins.load_plugins() == ()  # said once per process, never an error


def test_a_broken_installed_plugin_blocks_no_command(tmp_path):
    """A broken entry point is one warning line; every command still works (store --help included), and a
    plugin named with --plugin that cannot be loaded is still an error."""
    folder = _plugin_folder(tmp_path)
    _write_dist(folder, "broken = zn_missing_mod:setup")
    for args in (["store", "--help"], ["proxies", "--json"], ["cell", "show", "lstm", "--json"]):
        proc = _zeronas(args, tmp_path, folder)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, (args, stderr)
        assert stderr.count("warning: ") == 1 and "plugin 'broken'" in stderr and "zn_missing_mod" in stderr, stderr
        assert "Traceback" not in stderr
    proc = _zeronas(["--plugin", "zn_missing_too", "proxies"], tmp_path, folder)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "zn_missing_too" in stderr


def test_plugin_proxy_clashing_with_a_builtin_names_both(tmp_path, isolated):
    (tmp_path / "zn_clash.py").write_text('from zeronas.proxies import proxy\n\n\n'
                                          '@proxy("zen", higher_is_better=True, needs_data=False, description="x")\n'
                                          'def my_zen(ctx):\n    return 0.0\n')
    isolated.syspath_prepend(str(tmp_path))
    result = runner.invoke(app, ["--plugin", "zn_clash", "proxies"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert "plugin module 'zn_clash'" in message and "proxy 'zen' is registered twice" in message
    assert "zeronas.proxies.zen" in message and "zn_clash.my_zen" in message, message
    assert registry.get_proxy("zen").fn.__module__ == "zeronas.proxies.zen"  # the built-in stays
