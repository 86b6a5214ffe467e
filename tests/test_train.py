"""Training: learning, evaluation, divergence, checkpoints and exact resume, on a tiny corpus made in tmp_path."""

from __future__ import annotations

import json
import math
import os
import random
import signal

import pytest
import torch
import torch.nn.functional as F

from zeronas.cells.reference import reference_cell
from zeronas.data.corpus import batchify, load_corpus
from zeronas.models import lm
from zeronas.train import (CHECKPOINT_FILE, METRICS_FILE, CheckpointError, TrainConfig, TrainResult, mean_loss,
                           load_checkpoint, train)

SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "the cat saw a dog"]
# Tiny model; lr 3e-2 and light dropout so that a few dozen steps visibly learn. Dropouts, AR/TAR and variable BPTT
# stay on, so that exact resume also covers the RNG streams.
CFG = TrainConfig(epochs=2, batch_size=4, bptt=10, eval_batch_size=4, test_batch_size=4, emb_size=8,
                  hidden_size=12, n_layers=2, lr=3e-2, dropout=0.1, dropouth=0.1, dropouti=0.1, dropoute=0.1,
                  wdrop=0.1, seed=3)


def write_corpus(folder, n_train: int = 160, n_eval: int = 30, seed: int = 0):
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("valid", n_eval), ("test", n_eval)):
        (folder / f"{name}.txt").write_text("\n".join(rng.choice(SENTENCES) for _ in range(n)) + "\n")
    return load_corpus(folder)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: one thread is faster, and on a shared machine spinning OpenMP threads cost 10x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def straight(corpus) -> TrainResult:
    """Two epochs in one go, no checkpoint: the reference for the resume tests."""
    return train(reference_cell("lstm"), CFG, corpus, progress=False)


def same_run(a: TrainResult, b: TrainResult) -> None:
    assert [e.train_loss for e in a.epochs] == [e.train_loss for e in b.epochs]
    assert [e.val_loss for e in a.epochs] == [e.val_loss for e in b.epochs]
    assert [(e.steps, e.tokens) for e in a.epochs] == [(e.steps, e.tokens) for e in b.epochs]
    assert (a.steps, a.tokens, a.val_loss, a.test_loss) == (b.steps, b.tokens, b.val_loss, b.test_loss)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_loss_decreases_on_a_repetitive_corpus(straight, corpus):
    assert not straight.diverged and straight.stopped == "epochs"
    assert len(straight.epochs) == 2
    first, last = straight.epochs
    assert last.train_loss < first.train_loss
    assert last.val_loss < first.val_loss
    # well below guessing uniformly over the vocabulary
    assert straight.test_loss < 0.7 * math.log(corpus.vocab_size)
    # every training row but the last is an input once per epoch, whatever the random batch lengths
    assert first.tokens == last.tokens == (corpus.train.numel() // CFG.batch_size - 1) * CFG.batch_size
    assert straight.tokens_per_second > 0 and straight.train_seconds <= straight.seconds


def test_val_and_test_perplexity_are_exp_of_the_mean_token_loss(straight, corpus):
    assert straight.test_ppl == pytest.approx(math.exp(straight.test_loss), rel=1e-12)
    assert straight.val_ppl == pytest.approx(math.exp(straight.val_loss), rel=1e-12)
    for e in straight.epochs:
        assert e.val_ppl == pytest.approx(math.exp(e.val_loss), rel=1e-12)
    # the final model is the last epoch's, so its validation loss is that epoch's
    assert straight.val_loss == straight.epochs[-1].val_loss
    # independently: one pass over each whole test column, mean over every predicted token
    model = straight.model
    model.eval()
    src = batchify(corpus.test, CFG.test_batch_size)
    with torch.no_grad():
        logits, _ = model(src[:-1])
        expected = F.cross_entropy(logits.reshape(-1, corpus.vocab_size), src[1:].reshape(-1)).item()
    assert straight.test_loss == pytest.approx(expected, rel=1e-5)
    assert mean_loss(model, src, 7) == pytest.approx(expected, rel=1e-5)  # chunking does not matter


def test_result_is_json_friendly_and_leaves_the_global_rng_alone(straight, corpus):
    d = straight.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["test_loss"] == straight.test_loss and back["epochs"][1]["val_loss"] == straight.epochs[1].val_loss
    assert back["config"] == CFG.to_dict() and back["canonical_id"] == reference_cell("lstm").canonical_id
    assert "model" not in back
    before = torch.get_rng_state()
    train(reference_cell("rnn"), CFG.replace(max_steps=1, epochs=1), corpus, progress=False)
    assert torch.equal(before, torch.get_rng_state())


def test_interrupted_and_resumed_run_equals_the_straight_run(straight, corpus, tmp_path):
    ckpt = tmp_path / "ckpt"
    cell = reference_cell("lstm")
    # 1) stop within epoch 1 (max_steps), 2) continue; Ctrl-C after epoch 1, 3) resume to the end
    part = train(cell, CFG.replace(max_steps=7), corpus, checkpoint_dir=ckpt, progress=False)
    assert part.stopped == "max_steps" and part.steps == 7 and part.epochs == [] and part.test_loss is not None
    saved = load_checkpoint(ckpt / CHECKPOINT_FILE)
    assert saved["progress"]["step"] == 7 and saved["progress"]["position"] > 0 and saved["hidden"] is not None

    def interrupt(record):
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(cell, CFG, corpus, checkpoint_dir=ckpt, progress=False, on_epoch=interrupt)
    saved = load_checkpoint(ckpt / CHECKPOINT_FILE)
    assert saved["progress"]["epoch"] == 1 and saved["progress"]["position"] == 0
    resumed = train(cell, CFG, corpus, checkpoint_dir=ckpt, progress=False)
    assert resumed.resumed_from == {"epoch": 1, "step": straight.epochs[0].steps}
    same_run(straight, resumed)
    # a finished checkpoint: nothing left to train, the same result again
    again = train(cell, CFG, corpus, checkpoint_dir=ckpt, progress=False)
    same_run(straight, again)
    assert again.resumed_from == {"epoch": 2, "step": straight.steps}
    # every write was atomic: no temporary files left, and the sidecar is JSON
    assert sorted(p.name for p in ckpt.iterdir()) == sorted([CHECKPOINT_FILE, METRICS_FILE])
    metrics = json.loads((ckpt / METRICS_FILE).read_text())
    assert [e["val_loss"] for e in metrics["epochs"]] == [e.val_loss for e in straight.epochs]


def test_checkpoint_every_steps(corpus, tmp_path):
    ckpt = tmp_path / "ckpt"
    calls = []
    train(reference_cell("rnn"), CFG.replace(epochs=1, max_steps=5, checkpoint_every=2), corpus,
          checkpoint_dir=ckpt, progress=False, on_epoch=calls.append)
    saved = load_checkpoint(ckpt / CHECKPOINT_FILE)
    assert saved["progress"]["step"] == 5 and calls == []  # the stop itself is saved; no epoch finished


def test_mismatched_checkpoint_names_the_file_and_the_field(corpus, tmp_path):
    ckpt = tmp_path / "ckpt"
    cell = reference_cell("rnn")
    train(cell, CFG.replace(max_steps=1), corpus, checkpoint_dir=ckpt, progress=False)
    path = str(ckpt / CHECKPOINT_FILE)
    with pytest.raises(CheckpointError, match="config.hidden_size") as err:
        train(cell, CFG.replace(hidden_size=16), corpus, checkpoint_dir=ckpt, progress=False)
    assert path in str(err.value)
    with pytest.raises(CheckpointError, match="'cell'") as err:
        train(reference_cell("gru"), CFG, corpus, checkpoint_dir=ckpt, progress=False)
    assert path in str(err.value) and reference_cell("gru").arch_sha1 in str(err.value)
    smaller = write_corpus(tmp_path / "smaller", n_train=150)
    with pytest.raises(CheckpointError, match="corpus.train_tokens") as err:
        train(cell, CFG, smaller, checkpoint_dir=ckpt, progress=False)
    assert path in str(err.value)
    # same sizes, other words: only the hash tells
    same = tmp_path / "same"
    write_corpus(same)  # the files of the fixture's corpus
    for split in ("train", "valid", "test"):
        text = (same / f"{split}.txt").read_text()
        (same / f"{split}.txt").write_text(text.replace("cat", "dog") if split == "train" else text)
    swapped = load_corpus(same)
    assert swapped.train.numel() == corpus.train.numel() and swapped.vocab_size == corpus.vocab_size
    with pytest.raises(CheckpointError, match="corpus.sha1") as err:
        train(cell, CFG, swapped, checkpoint_dir=ckpt, progress=False)
    assert path in str(err.value)
    # a run that would stop before the checkpoint's position
    train(cell, CFG.replace(max_steps=3), corpus, checkpoint_dir=ckpt, progress=False)
    with pytest.raises(CheckpointError, match="past this run's end"):
        train(cell, CFG.replace(max_steps=2), corpus, checkpoint_dir=ckpt, progress=False)
    # not a checkpoint at all
    (ckpt / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read") as err:
        train(cell, CFG, corpus, checkpoint_dir=ckpt, progress=False)
    assert path in str(err.value)


def test_non_finite_loss_is_reported_as_divergence(corpus, tmp_path, monkeypatch):
    original = lm.RNNModel.init_weights

    def poisoned(self, generator=None):
        original(self, generator)
        with torch.no_grad():
            self.layers[0].linears["pre"].bias[0] = float("nan")

    monkeypatch.setattr(lm.RNNModel, "init_weights", poisoned)
    result = train(reference_cell("rnn"), CFG, corpus, checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert result.diverged and result.stopped == "diverged"
    assert "non-finite training loss" in result.divergence_reason and "step 1 " in result.divergence_reason
    assert result.steps == 0 and result.test_loss is None and result.test_ppl is None
    json.dumps(result.to_dict(), allow_nan=False)
    # the diverged state is saved: a rerun reports the same divergence without training again
    again = train(reference_cell("rnn"), CFG, corpus, checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert again.diverged and again.divergence_reason == result.divergence_reason


def test_exploding_loss_is_reported_as_divergence(corpus):
    result = train(reference_cell("lstm"), CFG.replace(lr=10.0), corpus, progress=False)
    assert result.diverged and result.test_loss is None
    assert "exploded" in result.divergence_reason or "non-finite" in result.divergence_reason
    assert "at step" in result.divergence_reason
    assert result.steps >= 1  # the first step is fine: the huge learning rate breaks the model after it


def test_config_round_trip_and_validation():
    cfg = TrainConfig.quick(seed=5)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    d = TrainConfig()
    assert (d.lr, d.weight_decay, d.batch_size, d.bptt, d.clip, d.epochs) == (1e-3, 1.2e-6, 20, 70, 0.25, 50)
    assert d.model_config() == lm.ModelConfig()  # the NAS-Bench-NLP sizes and dropouts
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(ValueError, match="bptt"):
        TrainConfig(bptt=0)
    with pytest.raises(ValueError, match="dropout"):
        TrainConfig(dropout=1.0)


def test_quick_mode_runs_on_ptb():
    result = train(reference_cell("lstm"), TrainConfig.quick(max_steps=1, max_eval_tokens=600), progress=False)
    assert result.steps == 1 and result.corpus["name"] == "ptb" and result.corpus["vocab_size"] == 10000
    assert math.isfinite(result.test_loss) and abs(result.test_loss - math.log(10000)) < 1.0


def test_a_checkpoint_missing_a_field_or_of_other_shapes_is_an_error(corpus, tmp_path):
    ckpt = tmp_path / "ckpt"
    cell = reference_cell("rnn")
    train(cell, CFG.replace(max_steps=1), corpus, checkpoint_dir=ckpt, progress=False)
    path = ckpt / CHECKPOINT_FILE
    saved = load_checkpoint(path)
    without = {k: v for k, v in saved.items() if k != "model"}
    torch.save(without, path)
    with pytest.raises(CheckpointError, match="field 'model' is missing") as err:
        train(cell, CFG.replace(max_steps=2), corpus, checkpoint_dir=ckpt, progress=False)
    assert str(path) in str(err.value)
    wrong = dict(saved)
    wrong["model"] = {k: torch.zeros(3, 3) for k in saved["model"]}
    torch.save(wrong, path)
    with pytest.raises(CheckpointError, match="does not fit this cell and config") as err:
        train(cell, CFG.replace(max_steps=2), corpus, checkpoint_dir=ckpt, progress=False)
    assert str(path) in str(err.value)


def test_fractional_epoch_and_token_stops_resume_to_the_straight_run(straight, corpus, tmp_path):
    """Successive halving's rungs: stop a quarter into epoch 1, then at 1.5 epochs, then at a token count, each
    continuing the last one's checkpoint; the end equals the straight two-epoch run bit for bit."""
    ckpt = tmp_path / "ckpt"
    cell = reference_cell("lstm")
    rows = corpus.train.numel() // CFG.batch_size
    quarter = train(cell, CFG.replace(stop_epochs=0.25), corpus, checkpoint_dir=ckpt, progress=False, test=False)
    assert quarter.stopped == "stop_epochs" and quarter.epochs == [] and not quarter.diverged
    assert quarter.test_loss is None and math.isfinite(quarter.val_loss)
    position = load_checkpoint(ckpt / CHECKPOINT_FILE)["progress"]["position"]
    # the first batch boundary at or past a quarter of the epoch's rows: one batch of at most ~2 bptt more
    assert 0.25 * (rows - 1) <= position < 0.25 * (rows - 1) + 2 * CFG.bptt
    more = train(cell, CFG.replace(stop_epochs=1.5), corpus, checkpoint_dir=ckpt, progress=False, test=False)
    assert more.stopped == "stop_epochs" and len(more.epochs) == 1
    assert more.epochs[0].val_loss == straight.epochs[0].val_loss  # epoch 1 crossed on the way, identically
    assert more.resumed_from == {"epoch": 0, "step": quarter.steps}
    by_tokens = train(cell, CFG.replace(max_tokens=more.tokens + 100), corpus, checkpoint_dir=ckpt,
                      progress=False)
    assert by_tokens.stopped == "max_tokens" and more.tokens + 100 <= by_tokens.tokens
    assert by_tokens.tokens < more.tokens + 100 + 2 * CFG.bptt * CFG.batch_size
    rest = train(cell, CFG, corpus, checkpoint_dir=ckpt, progress=False)
    assert rest.stopped == "epochs"
    same_run(straight, rest)
    # a stop at a whole epoch is that epoch's end: its validation is the epoch's
    one = train(cell, CFG.replace(stop_epochs=1.0), corpus, checkpoint_dir=tmp_path / "one", progress=False)
    assert one.stopped == "stop_epochs" and len(one.epochs) == 1 and one.val_loss == straight.epochs[0].val_loss


def test_stop_fields_are_run_only_and_validated(corpus, tmp_path):
    ckpt = tmp_path / "ckpt"
    train(reference_cell("rnn"), CFG.replace(max_tokens=50), corpus, checkpoint_dir=ckpt, progress=False)
    # resuming with other stops (or none) is allowed: they only say how long to train
    resumed = train(reference_cell("rnn"), CFG.replace(stop_epochs=0.5), corpus, checkpoint_dir=ckpt,
                    progress=False)
    assert resumed.resumed_from is not None and resumed.stopped == "stop_epochs"
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="stop_epochs"):
            TrainConfig(stop_epochs=bad)
    with pytest.raises(ValueError, match="max_tokens"):
        TrainConfig(max_tokens=0)
