"""The NAS-Bench-NLP ground truth and user benchmark CSVs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from zeronas.bench.nbnlp import Benchmark, BenchmarkError, load_recipe_list
from zeronas.bench.published import published_scores
from zeronas.cells.recipe import parse_recipe

RNN = {"f": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["f"]}}
RNN_RENAMED = {"g": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["g"]}}
SIGM = {"f": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_sigm", "input": ["f"]}}


@pytest.fixture(scope="module")
def bench() -> Benchmark:
    return Benchmark.nbnlp()


def test_bundled_split_counts(bench: Benchmark) -> None:
    assert bench.n_runs == 8_529
    assert bench.n_recipes == len(set(bench.arch_sha1s)) == 2_843
    # several recipes are the same cell up to renaming: fewer canonical architectures (2,515 measured)
    assert len(bench) == 2_515
    assert len({a.canonical_id for a in bench}) == len(bench)
    assert sum(1 for a in bench for x in a.test_losses if x is not None) == 6_940  # as in SOURCE.md
    assert Benchmark.nbnlp() is bench


def test_diverged_and_mean(bench: Benchmark) -> None:
    diverged = [a for a in bench if a.diverged]
    assert len(diverged) == 505
    for a in diverged[:20]:
        assert a.mean_test_loss is None and a.test_ppl is None
        assert all(x is None for x in a.test_losses)
    partial = [a for a in bench if not a.diverged and None in a.test_losses]
    assert partial, "some architectures have both finite and diverged runs"
    a = partial[0]
    finite = [x for x in a.test_losses if x is not None]
    assert a.mean_test_loss == pytest.approx(sum(finite) / len(finite))
    assert a.test_ppl == pytest.approx(math.exp(a.mean_test_loss))
    assert a.n_runs == len(a.test_losses) == len(a.runs)
    best = bench.best()
    assert best.mean_test_loss == min(x.mean_test_loss for x in bench.finite())
    assert 80 < best.test_ppl < 90  # 84.41 measured
    assert 120 < bench.median_ppl() < 150  # 133.32 measured


def test_grouping_by_canonical_id(bench: Benchmark) -> None:
    grouped = [a for a in bench if len(a.arch_sha1s) > 1]
    assert grouped
    for a in grouped[:10]:
        assert {r.arch_sha1 for r in a.runs} == set(a.arch_sha1s)
        assert a.n_runs == 3 * len(a.arch_sha1s)  # every recipe of the multi-run set has 3 runs


def test_lookups_agree(bench: Benchmark) -> None:
    for a in bench.sample(5, seed=0):
        assert bench.get(a.canonical_id) is a
        assert bench.get(a.canonical_id.upper()) is a
        for sha1 in a.arch_sha1s:
            assert bench.get(sha1) is a
        assert bench.get(a.cell) is a
        assert bench.get(a.cell.recipe) is a
        assert bench.get(a.cell.to_json()) is a
    # a renamed recipe is the same architecture
    assert bench.get(RNN_RENAMED) is bench.get(RNN)
    assert RNN in bench


def test_lookup_missing(bench: Benchmark) -> None:
    with pytest.raises(KeyError, match="no architecture"):
        bench.get("0" * 40)
    with pytest.raises(KeyError, match="not a canonical id"):
        bench.get("lstm")
    lstm = {
        "i": {"op": "linear", "input": ["x", "h_prev_0"]}, "i_a": {"op": "activation_sigm", "input": ["i"]},
        "h_new_1": {"op": "elementwise_prod", "input": ["i_a", "h_prev_1"]},
        "h_new_0": {"op": "activation_tanh", "input": ["h_new_1"]},
    }
    cell = parse_recipe(lstm)  # not in the development split
    with pytest.raises(KeyError, match="not in"):
        bench.get(cell)
    assert cell not in bench


def test_sample_is_seeded(bench: Benchmark) -> None:
    s1 = [a.canonical_id for a in bench.sample(50, seed=3)]
    assert s1 == [a.canonical_id for a in bench.sample(50, seed=3)]
    assert s1 != [a.canonical_id for a in bench.sample(50, seed=4)]
    assert len(set(s1)) == 50
    with pytest.raises(ValueError):
        bench.sample(len(bench) + 1, seed=0)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _j(recipe: dict) -> str:
    return json.dumps(recipe)


def test_user_csv_round_trip(tmp_path: Path) -> None:
    sha1 = parse_recipe(RNN).arch_sha1
    path = _write_csv(tmp_path / "b.csv", ["arch_sha1", "replica", "recipe", "test_loss"], [
        [sha1, "0", _j(RNN), "4.5"],
        ["", "1", _j(RNN_RENAMED), "4.7"],
        ["", "", _j(SIGM), ""],
        ["", "1", _j(SIGM), "nan"],
    ])
    b = Benchmark.from_csv(path)
    assert len(b) == 2 and b.n_runs == 4 and b.n_recipes == 3
    rnn = b.get(sha1)
    assert rnn.test_losses == (4.5, 4.7) and rnn.mean_test_loss == pytest.approx(4.6)
    assert rnn.test_ppl == pytest.approx(math.exp(4.6))
    assert [r.replica for r in rnn.runs] == [0, 1] and [r.line for r in rnn.runs] == [2, 3]
    assert len(rnn.arch_sha1s) == 2 and b.get(RNN_RENAMED) is rnn
    sigm = b.get(SIGM)
    assert sigm.diverged and sigm.test_losses == (None, None) and sigm.test_ppl is None
    assert b.best() is rnn and b.median_ppl() == pytest.approx(math.exp(4.6))
    # the bundled file has the same format
    assert Benchmark.from_csv(Path(__file__).parents[1] / "src/zeronas/data/nbnlp/ptb_groundtruth.csv.gz").n_runs \
        == 8_529


GOOD = _j(RNN)


@pytest.mark.parametrize("header,rows,line,pattern", [
    (["recipe"], [[GOOD]], 1, r"missing column.*'test_loss'"),
    (["recipe", "test_loss"], [[GOOD, "4.5"], ['{"f": ', "4.5"]], 3, r"bad JSON"),
    (["recipe", "test_loss"], [[GOOD, "4.5"], [_j({"h_new_0": {"op": "nope", "input": ["x", "h_prev_0"]}}), "4"]],
     3, r"unknown op 'nope'"),
    (["recipe", "test_loss"], [[_j({"h_new_0": {"op": "linear", "input": ["x"]}}), "4"]], 2,
     r"'h_prev_0' is not used"),
    (["recipe", "test_loss"], [[GOOD, "four"]], 2, r"non-numeric test_loss 'four'"),
    (["arch_sha1", "recipe", "test_loss"], [["a" * 40, GOOD, "4"]], 2, r"arch_sha1 mismatch"),
    (["recipe", "test_loss", "replica"], [[GOOD, "4", "x"]], 2, r"replica must be an integer"),
    (["recipe", "test_loss"], [[GOOD, "4", "extra"]], 2, r"3 fields"),
    (["recipe", "test_loss"], [[GOOD, "-1"]], 2, r"negative test_loss"),
])
def test_malformed_rows_name_the_line(tmp_path: Path, header: list[str], rows: list[list[str]], line: int,
                                      pattern: str) -> None:
    path = _write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(BenchmarkError, match=pattern) as info:
        Benchmark.from_csv(path)
    assert str(path) in str(info.value)
    assert f"line {line}:" in str(info.value)


def test_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="no such file"):
        Benchmark.from_csv(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(BenchmarkError, match="empty file"):
        Benchmark.from_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("recipe,test_loss\n")
    with pytest.raises(BenchmarkError, match="no data rows"):
        Benchmark.from_csv(tmp_path / "header.csv")


def test_recipe_list() -> None:
    entries = list(load_recipe_list())
    assert len(entries) == 14_208
    assert len({e["arch_sha1"] for e in entries}) == 4_322
    assert entries[0]["recepie_id"] == 1_000_000 and entries[0]["example_name"] == "rnn"
    for e in entries[:50]:
        assert parse_recipe(e["recipe"]).arch_sha1 == e["arch_sha1"]


def test_published_scores_join(bench: Benchmark) -> None:
    rows = published_scores()
    assert len(rows) == 6_130
    by_id = {r.recepie_id: r for a in bench for r in a.runs}
    for row in rows:
        run = by_id[row["recepie_id"]]
        assert run.arch_sha1 == row["arch_sha1"]
        assert run.test_loss == pytest.approx(row["loss"], abs=1e-9)


def test_smaller_sample_is_a_prefix_of_a_larger_one():
    """An interrupted full run (scored in sample order) has scored exactly ``sample(n, seed)``."""
    from zeronas.bench.nbnlp import Benchmark

    bench = Benchmark.nbnlp()
    small = [a.canonical_id for a in bench.sample(25, seed=4)]
    large = [a.canonical_id for a in bench.sample(400, seed=4)]
    assert small == large[:25]
    assert small != [a.canonical_id for a in bench.sample(25, seed=5)]


def test_the_shared_benchmark_cannot_be_corrupted(bench: Benchmark) -> None:
    """Benchmark.nbnlp() is one object for the whole process: no caller can change what the next one reads."""
    assert Benchmark.nbnlp() is bench
    arch = bench.architectures[0]
    before = (len(bench), bench.source, arch.canonical_id, arch.cell.to_json(), bench.get(arch.canonical_id))
    with pytest.raises(AttributeError, match="immutable"):
        bench.source = "mine"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        arch.test_losses = ()  # type: ignore[misc]
    node = next(iter(arch.cell.recipe))
    with pytest.raises(TypeError, match="read-only"):
        arch.cell.recipe[node]["op"] = "activation_relu"
    with pytest.raises(TypeError):
        bench._by_canonical["x"] = arch  # type: ignore[index]
    assert (len(Benchmark.nbnlp()), bench.source, arch.canonical_id, arch.cell.to_json(),
            bench.get(arch.canonical_id)) == before
