"""The default ``zeronas search`` of two (or more) versions of zeronas, back to back in one session (issue 21).

Each version is a ``src`` folder (for example a ``git worktree`` of an older commit). For each of ``--repeats``
rounds, every version in turn (the order alternates between rounds, so neither always runs on the warmer
machine) runs ``python -m zeronas search --json`` with that folder first on ``PYTHONPATH`` and an empty temporary
store; its extra arguments come from ``--args``. Reported per run: wall seconds of the whole command, the search's
own ``seconds`` (from its JSON), the CPU seconds of the command and every worker it waited for (user + system),
the largest resident set among them (``ru_maxrss`` from ``wait4``) and the load average when it started; per
version the medians; and the ratio of each version's median wall time to the first version's.
On a shared machine the wall time depends on how many cores the run got: compare the CPU seconds too.

    python benchmarks/search_ab.py --src old=../old/src --src new=src [--repeats 2] [--args '--budget 200']
        [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(src: Path, extra: list[str], store_dir: Path, tag: str) -> dict:
    """One search of the zeronas in ``src`` with an empty store: its timings, resources and summary."""
    store = store_dir / f"{tag}.db"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    cmd = [sys.executable, "-m", "zeronas", "search", "--store", f"sqlite:///{store}", "--json", *extra]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{tag}: zeronas search exited with {proc.returncode}: {stderr.strip()[-500:]}")
    summary = json.loads(stdout)["search"]
    return {"version": tag.rsplit("-", 1)[0], "wall_s": wall, "search_s": summary["seconds"],
            "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mib": usage.ru_maxrss / 1024.0,
            "load_at_start": load, "computed": summary["computed"], "reused": summary["reused"]}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", action="append", required=True, metavar="NAME=PATH",
                    help="a version: a name and its src folder (give two or more; the first is the baseline)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds (each runs every version once)")
    ap.add_argument("--args", default="", help="extra arguments of zeronas search (default: none)")
    ap.add_argument("--json-out", default="", help="also write the JSON object to this file")
    args = ap.parse_args()
    versions: list[tuple[str, Path]] = []
    for item in args.src:
        name, sep, path = item.partition("=")
        if not sep or not name or not (Path(path) / "zeronas").is_dir():
            raise SystemExit(f"--src {item!r}: expected NAME=PATH with PATH/zeronas a package folder")
        versions.append((name, Path(path).resolve()))
    if len({n for n, _ in versions}) != len(versions) or len(versions) < 2:
        raise SystemExit("--src: give two or more versions with distinct names")
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, src in (versions if r % 2 == 0 else versions[::-1]):
                runs.append(run_once(src, shlex.split(args.args), Path(tmp), f"{name}-{r}"))
                print(f"round {r + 1}: {name} {runs[-1]['wall_s']:.1f} s wall, {runs[-1]['cpu_s']:.1f} s CPU",
                      file=sys.stderr, flush=True)
    base = [r for r in runs if r["version"] == versions[0][0]]
    medians = {}
    for name, _ in versions:
        mine = [r for r in runs if r["version"] == name]
        medians[name] = {k: _median(mine, k) for k in ("wall_s", "search_s", "cpu_s", "max_rss_mib")}
        medians[name]["speedup_wall"] = _median(base, "wall_s") / medians[name]["wall_s"]
        medians[name]["speedup_cpu"] = _median(base, "cpu_s") / medians[name]["cpu_s"]
    result = {"args": args.args, "repeats": args.repeats, "cpus": os.cpu_count(), "runs": runs, "median": medians}
    text = json.dumps(result, indent=1)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
