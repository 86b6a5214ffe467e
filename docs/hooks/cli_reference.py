"""MkDocs hook: writes the CLI reference from the command line's own definitions, so it never drifts.

A page that contains the line ``<!-- zeronas-cli -->`` gets, in its place, one section per ``zeronas`` command:
its usage, its help text and a table of its arguments and options, exactly as ``zeronas CMD --help`` states them.
"""

from __future__ import annotations

MARKER = "<!-- zeronas-cli -->"


def _cell(text: str) -> str:
    """Text fit for a markdown table cell."""
    text = " ".join(text.split())
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def _params_table(cmd, ctx) -> list[str]:  # noqa: ANN001 (click objects: Typer vendors its own click)
    rows = []
    for param in cmd.get_params(ctx):
        if getattr(param, "hidden", False):  # a deprecated alias, which --help leaves out: named here as such
            rows.append(f"| `{_cell(', '.join(param.opts))}` | {_cell('(deprecated) ' + (param.help or ''))} |")
            continue
        record = param.get_help_record(ctx)
        if record is None:  # an argument without help: name it by its metavar
            record = (param.make_metavar(ctx), "")
        name, text = record
        rows.append(f"| `{_cell(name)}` | {_cell(text)} |")
    return ["| argument or option | meaning |", "|---|---|", *rows] if rows else []


def _command_section(cmd, path: list[str], parent) -> list[str]:  # noqa: ANN001 (as above)
    ctx = cmd.context_class(cmd, info_name=path[-1], parent=parent)
    usage = " ".join(path + cmd.collect_usage_pieces(ctx))
    lines = [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```text", usage, "```", ""]
    if cmd.help:
        lines += [cmd.help.strip(), ""]
    lines += _params_table(cmd, ctx) + [""]
    if hasattr(cmd, "commands"):  # a command group
        for name in sorted(cmd.commands):
            lines += _command_section(cmd.commands[name], path + [name], ctx)
    return lines


def cli_reference() -> str:
    """The markdown reference of every ``zeronas`` command and sub-command."""
    import typer

    from zeronas.cli import app

    return "\n".join(_command_section(typer.main.get_command(app), ["zeronas"], None))


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
