"""The ``zeronas`` command line: the app, its root options, and one module per command group (each a thin shell
over the library's public API)."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from zeronas import __version__
from zeronas.cli import cells, evaluate, models, predict, refine, search, store, train
from zeronas.cli._common import err, fail, out, safe

app = typer.Typer(help="Training-free neural architecture search for recurrent networks.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit."),
          plugins: Optional[List[str]] = typer.Option(
              None, "--plugin", metavar="MODULE",
              help="Import MODULE (or module:function, called) first: a package of your own that registers "
                   "proxies, search spaces or model adapters. Repeatable or comma-separated; every worker "
                   "imports it too, so it must be installed or on PYTHONPATH. Plugins installed under the entry "
                   "point group zeronas.plugins are loaded without it.")) -> None:
    if version:
        out.print(f"zeronas {__version__}")
        raise typer.Exit()
    import warnings

    from zeronas.plugins import PluginError, PluginWarning, load_plugins

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PluginWarning)
            load_plugins(plugins or ())
    except PluginError as exc:  # a plugin named with --plugin: the command needs it
        raise fail(str(exc))
    for warning in caught:  # an installed plugin that is broken: said once, and every command still works
        if issubclass(warning.category, PluginWarning):
            err.print(f"warning: {safe(warning.message, one_line=True)}", highlight=False, markup=False)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


app.add_typer(cells.cell_app, name="cell")
app.add_typer(cells.bench_app, name="bench")
app.command("proxies")(cells.proxies_cmd)
app.command("score")(cells.score_cmd)
app.command("evaluate")(evaluate.evaluate_cmd)
app.command("train")(train.train_cmd)
app.command("search")(search.search_cmd)
app.command("refine")(refine.refine_cmd)
app.command("score-model")(models.score_model_cmd)
app.add_typer(predict.predict_app, name="predict")
app.add_typer(store.store_app, name="store")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
