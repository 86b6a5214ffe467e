"""The README and the documentation site's build hooks (CI also builds the site with `mkdocs build --strict`)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end >= 0 else len(text)]


def test_readme_fits_a_screenful_budget_of_250_lines():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one():
    quick = _section((ROOT / "README.md").read_text(encoding="utf-8"), "## Quick start")
    blocks = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    assert [len(b.strip().splitlines()) for b in blocks] == [1, 1]
    install, tests = (b.strip() for b in blocks)
    assert install == "pip install . && zeronas search"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace(" --quiet", "")
    pip_part, pytest_part = tests.split(" && ")
    assert f"python -m {pip_part}" in ci and pytest_part in ci.splitlines()


def _slugs(markdown: str) -> set[str]:
    """The anchors of a page's headings, as GitHub and MkDocs both make them for plain headings."""
    heads = re.findall(r"^#+ (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in heads}


def test_readme_links_point_at_existing_files_and_headings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [t for t in re.findall(r"\]\(([^)]+)\)", readme) if not t.startswith("http")]
    assert links, "the README links to the documentation"
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else ROOT / "README.md"
        if not target.is_file() or anchor and anchor not in _slugs(target.read_text(encoding="utf-8")):
            broken.append(link)
    assert broken == []


def test_lists_hook_reads_lists_and_tables_as_github_does():
    fix = _hook("gfm_lists")._fix
    src = ["Text:", "- a", "  - nested", "    more of nested", "- b", "", "Table:", "| x |", "|---|", "```",
           "Code:", "- not a list", "```"]
    assert fix(src) == ["Text:", "", "- a", "    - nested", "    more of nested", "- b", "", "Table:", "", "| x |",
                        "|---|", "```", "Code:", "- not a list", "```"]


def test_cli_reference_covers_every_command_and_option():
    import typer

    from zeronas.cli import app

    text = _hook("cli_reference").cli_reference()

    def walk(cmd, path):
        assert f"`{' '.join(path)}`" in text, path
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"{opt}" in text, (path, opt)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, path + [name])

    root = typer.main.get_command(app)
    assert {"search", "evaluate", "predict", "store", "score-model"} <= set(root.commands)
    walk(root, ["zeronas"])


def test_roles_hook_shows_sphinx_roles_as_code():
    hook = _hook("rst_roles")
    html = ("a :class:<code>~zeronas.core.spec.SpecError</code> and :func:<code>zeronas.run.score_many</code>, "
            ":x:<code>y</code>")
    assert hook.on_page_content(html, None, None, None) == \
        "a <code>SpecError</code> and <code>zeronas.run.score_many</code>, :x:<code>y</code>"
