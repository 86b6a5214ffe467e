"""Any PyTorch recurrent language model: the model contract, the adapters and ``score_model``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zeronas.cells.reference import reference_cell
from zeronas.models.adapters import (ADAPTERS, AdapterError, AdaptedLM, adapt_lm, cell_lm, register_adapter,
                                     rnn_lm)
from zeronas.models.contract import ACTIVATIONS, RECIPE, RecurrentLM
from zeronas.models.lm import ModelConfig, build_model
from zeronas.proxies._ntk import jacobian_loop, ntk_from_grads
from zeronas.core.config import TINY
from zeronas.proxies.registry import list_proxies
from zeronas.proxies.runner import score_model
from zeronas.core.score import Score
from zeronas.store import StoreError

V = 50
SIZES = ModelConfig(emb_size=16, hidden_size=24, n_layers=3).without_dropout()
ALL = [s.name for s in list_proxies()]
# nn.LSTM and nn.GRU carry two bias vectors where the recipe has one: the NTK (whose rows include the bias
# gradients) and the parameter count see the second one; every other proxy must agree with the recipe
DIFFERENT_PARAMETRISATION = {"params", "ntk_cond", "ntk_trace", "ntk_cond_loss", "ntk_trace_loss"}


def _tokens(n: int = 400, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (n,), generator=torch.Generator().manual_seed(seed))


def _recipe_model(name: str) -> nn.Module:
    return build_model(reference_cell(name), V, seed=0, config=SIZES).double()


def _embedding_and_decoder(recipe) -> tuple[nn.Embedding, nn.Linear]:
    emb = nn.Embedding(V, SIZES.emb_size).double()
    dec = nn.Linear(SIZES.emb_size, V).double()
    with torch.no_grad():
        emb.weight.copy_(recipe.encoder.weight)
        dec.bias.copy_(recipe.decoder.bias)
    dec.weight = emb.weight  # tied, as the recipe model
    return emb, dec


def _copied_torch_lm(name: str, recipe) -> AdaptedLM:
    """An nn.LSTM / nn.GRU language model (one module per layer, AWD-LSTM style) with the recipe's weights."""
    rnns = []
    for layer in recipe.layers:
        L = layer.linears
        if name == "lstm":
            rnn = nn.LSTM(layer.input_size, layer.hidden_size).double()
            w_ih = torch.cat([L[g].weight_0 for g in "ifgo"])
            w_hh = torch.cat([L[g].weight_1 for g in "ifgo"])
            b_ih = torch.cat([L[g].bias for g in "ifgo"])
            b_hh = torch.zeros_like(b_ih)
        else:
            rnn = nn.GRU(layer.input_size, layer.hidden_size).double()
            w_ih = torch.cat([L["r"].weight_0, L["z"].weight_0, L["n_x"].weight_0])
            w_hh = torch.cat([L["r"].weight_1, L["z"].weight_1, L["n_h"].weight_0])
            b_ih = torch.cat([L["r"].bias, L["z"].bias, L["n_x"].bias])
            b_hh = torch.cat([torch.zeros_like(L["r"].bias), torch.zeros_like(L["z"].bias), L["n_h"].bias])
        with torch.no_grad():
            for target, source in ((rnn.weight_ih_l0, w_ih), (rnn.weight_hh_l0, w_hh), (rnn.bias_ih_l0, b_ih),
                                   (rnn.bias_hh_l0, b_hh)):
                target.copy_(source)
        rnns.append(rnn)
    emb, dec = _embedding_and_decoder(recipe)
    return rnn_lm(emb, rnns, dec)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_torch_rnn_model_with_copied_weights_scores_as_the_recipe(name):
    """The faithfulness check: every proxy both can run gives the recipe's score to 1e-6 (float64)."""
    recipe = _recipe_model(name)
    adapted = _copied_torch_lm(name, recipe)
    tokens = _tokens()
    want = score_model(recipe, ALL, tokens=tokens, config=TINY)
    got = score_model(adapted, ALL, tokens=tokens, config=TINY)
    matched = []
    for proxy in ALL:
        assert want[proxy].ok and got[proxy].ok, (proxy, want[proxy], got[proxy])
        if proxy in DIFFERENT_PARAMETRISATION:
            continue
        assert got[proxy].value == pytest.approx(want[proxy].value, rel=1e-6, abs=1e-12), proxy
        matched.append(proxy)
    assert len(matched) >= 12 and len(matched) == len(ALL) - len(DIFFERENT_PARAMETRISATION)
    # the parameter count is the model's own (nn.LSTM/GRU have a second bias per gate), the tied matrix once
    assert got["params"].value == sum(p.numel() for p in adapted.parameters()) > want["params"].value


def test_ntk_difference_is_exactly_the_second_bias():
    """Theta(nn.LSTM) = Theta(recipe) + J_b J_b^T: b_hh has the same gradient as b_ih (the recipe's one bias),
    so the kernel differs by that bias's own term and by nothing else."""
    recipe = _recipe_model("lstm")
    adapted = _copied_torch_lm("lstm", recipe)
    emb = recipe.embed(_tokens().view(-1)[:64].view(8, 8))
    theta_recipe = ntk_from_grads(jacobian_loop(recipe, emb))
    grads = jacobian_loop(adapted, emb)
    theta_adapted = ntk_from_grads(grads)
    names = [n for n, _ in adapted.recurrent_parameters()]
    bias_hh = ntk_from_grads([g for n, g in zip(names, grads) if n.endswith("bias_hh_l0")])
    assert float(bias_hh.abs().max()) > 0
    torch.testing.assert_close(theta_adapted, theta_recipe + bias_hh, rtol=1e-9, atol=1e-12)


class UserLSTMLM(nn.Module):
    """What a user brings: an AWD-LSTM-style model on nn.LSTM (batch_first, two layers, tied)."""

    def __init__(self, kind: type = nn.LSTM, vocab: int = V, emb: int = 16, hidden: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.rnn = kind(emb, hidden, num_layers=2, batch_first=True, dropout=0.2)
        self.head = nn.Linear(hidden, vocab)
        self.head.weight = self.embedding.weight

    def forward(self, tokens):  # the user's own forward (zeronas does not call it)
        out, _ = self.rnn(self.embedding(tokens))
        return self.head(out)


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU])
def test_every_proxy_runs_on_a_user_torch_model_or_says_why_not(kind):
    torch.manual_seed(0)
    model = UserLSTMLM(kind)
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    model.train()
    scores = score_model(model, ALL, tokens=_tokens(), config=TINY)
    assert set(scores) == set(ALL)
    for name, score in scores.items():
        assert isinstance(score, Score)
        assert score.status in ("ok", "unsupported"), (name, score)
        if score.status == "unsupported":
            assert score.message and "\n" not in score.message
    # the fused modules get every capability back through the unfused path and the reference cells; only the
    # third layer's covariance has no layer to read in a two-layer model
    assert {n for n, s in scores.items() if not s.ok} == {"hidden_cov_l3"}
    assert scores["hidden_cov_l3"].message == "layer 3 does not exist: the model has 2 layer(s)"
    # the model itself is untouched: weights and mode
    assert model.training
    for n, p in model.state_dict().items():
        assert torch.equal(p, before[n]), n


def test_adapted_layers_share_the_users_parameters():
    model = UserLSTMLM()
    lm = adapt_lm(model)
    assert isinstance(lm, RecurrentLM)
    assert lm.capabilities() == {ACTIVATIONS, RECIPE}
    assert lm.layers[1].fused.weight_hh_l0 is model.rnn.weight_hh_l1
    assert lm.decoder is model.head and lm.encoder is model.embedding
    names = [n for n, _ in lm.weight_matrices()]
    assert names[0] == "encoder.weight" and not any("bias" in n for n in names)
    assert len(names) == 1 + 2 * 2  # tied embedding once; weight_ih and weight_hh of two layers


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
def test_unfused_path_equals_the_fused_kernel(kind):
    """The observed (unfused) computation is the same function as PyTorch's fused one."""
    torch.manual_seed(0)
    lm = adapt_lm(UserLSTMLM(kind)).double()
    emb = lm.embed(_tokens(60).view(6, 10))
    fused, h_fused = lm.run_layers(emb)
    seen = []
    unfused, h_unfused = lm.run_layers(emb, observer=lambda node, op, pre, post: seen.append((node, op)))
    torch.testing.assert_close(unfused, fused, rtol=1e-12, atol=1e-12)
    for a, b in zip(h_fused, h_unfused):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    per_step = {nn.LSTM: 5, nn.GRU: 3, nn.RNN: 1}[kind]
    assert len(seen) == 2 * 6 * per_step  # 2 layers x 6 steps x activations per step
    assert {op for _, op in seen} <= {"activation_sigm", "activation_tanh"}


class GatedCell(nn.Module):
    """A user-designed cell: h' = tanh(W x + U (g * h)), g = sigmoid(G h), with an optional observer."""

    def __init__(self, n_in: int, n_hidden: int, observe: bool) -> None:
        super().__init__()
        self.w = nn.Linear(n_in, n_hidden)
        self.u = nn.Linear(n_hidden, n_hidden, bias=False)
        self.g = nn.Linear(n_hidden, n_hidden)
        self.hidden_size = n_hidden
        if observe:
            self.forward = self.observed_forward  # type: ignore[method-assign]

    def forward(self, x, h):
        return torch.tanh(self.w(x) + self.u(torch.sigmoid(self.g(h)) * h))

    def observed_forward(self, x, h, observer=None):
        pre_g = self.g(h)
        gate = torch.sigmoid(pre_g)
        pre = self.w(x) + self.u(gate * h)
        out = torch.tanh(pre)
        if observer is not None:
            observer("gate", "activation_sigm", pre_g, gate)
            observer("out", "activation_tanh", pre, out)
        return out


def test_module_cell_stepped_in_a_loop():
    torch.manual_seed(0)
    emb, dec = nn.Embedding(V, 16), nn.Linear(16, V)
    lm = cell_lm(emb, [GatedCell(16, 16, observe=False), GatedCell(16, 16, observe=False)], dec)
    scores = score_model(lm, ALL, tokens=_tokens(), config=TINY)
    unsupported = {n for n, s in scores.items() if s.status == "unsupported"}
    assert unsupported == {"naswot", "linear_regions", "fisher", "flops", "cell_depth", "n_blend", "n_leaky_relu",
                           "n_prod", "recurrent_fanin", "hidden_cov_l3"}
    assert "observations" in scores["naswot"].message and "recipe" in scores["cell_depth"].message
    assert all(scores[n].ok for n in set(ALL) - unsupported)
    # a cell that reports its activations gets the activation proxies; one that states its MACs gets flops
    observed = [GatedCell(16, 16, observe=True), GatedCell(16, 16, observe=True)]
    for cell in observed:
        cell.macs_per_step = 3 * 16 * 16 + 16
    lm = cell_lm(emb, observed, dec)
    scores = score_model(lm, ["naswot", "linear_regions", "fisher", "flops"], tokens=_tokens(), config=TINY)
    assert all(s.ok for s in scores.values()), scores
    assert scores["flops"].value == 2 * (3 * 16 * 16 + 16) + 16 * V


def test_lstm_cell_loop_equals_the_nn_lstm_adapter():
    """nn.LSTMCell stepped in a loop and nn.LSTM with the same weights are the same model to every proxy."""
    torch.manual_seed(0)
    rnn = nn.LSTM(16, 16).double()
    cell = nn.LSTMCell(16, 16).double()
    cell.load_state_dict({k[:-3]: v for k, v in rnn.state_dict().items()})
    emb, dec = nn.Embedding(V, 16).double(), nn.Linear(16, V).double()
    proxies = ["grad_norm", "snip", "grasp", "zen", "gradscore_h0", "hidden_cov", "state_escape"]
    a = score_model(rnn_lm(emb, rnn, dec), proxies, tokens=_tokens(), config=TINY)
    b = score_model(cell_lm(emb, cell, dec), proxies, tokens=_tokens(), config=TINY)
    for name in proxies:
        assert b[name].value == pytest.approx(a[name].value, rel=1e-9), name


def test_score_model_is_reproducible_and_seeded():
    torch.manual_seed(0)
    model = UserLSTMLM()
    a = score_model(model, ["zen", "naswot", "grad_norm"], tokens=_tokens(), config=TINY)
    b = score_model(model, ["zen", "naswot", "grad_norm"], tokens=_tokens(), config=TINY)
    c = score_model(model, ["zen", "naswot", "grad_norm"], tokens=_tokens(), config=TINY.with_(seed=1))
    assert {n: s.value for n, s in a.items()} == {n: s.value for n, s in b.items()}
    assert all(a[n].value != c[n].value for n in a)


def test_bad_models_and_tokens_are_clear_errors():
    with pytest.raises(ValueError, match="vocabulary has 50"):
        score_model(UserLSTMLM(), ["zen"], tokens=torch.arange(60), config=TINY)
    with pytest.raises(ValueError, match="1-D tensor"):
        score_model(UserLSTMLM(), ["zen"], tokens=torch.zeros(3, 4, dtype=torch.long), config=TINY)
    with pytest.raises(KeyError, match="unknown proxy"):
        score_model(UserLSTMLM(), ["no_such_proxy"], tokens=_tokens(), config=TINY)

    class TwoEmbeddings(UserLSTMLM):
        def __init__(self):
            super().__init__()
            self.extra = nn.Embedding(3, 4)

    with pytest.raises(AdapterError, match="2 nn.Embedding"):
        adapt_lm(TwoEmbeddings())
    with pytest.raises(AdapterError, match="bidirectional"):
        rnn_lm(nn.Embedding(V, 8), nn.LSTM(8, 8, bidirectional=True), nn.Linear(16, V))
    with pytest.raises(AdapterError, match="layer 1 .* takes inputs of width 8"):
        rnn_lm(nn.Embedding(V, 8), [nn.LSTM(8, 6), nn.LSTM(8, 8)], nn.Linear(8, V))
    with pytest.raises(AdapterError, match="no model adapter fits"):
        adapt_lm(nn.Sequential(nn.Linear(3, 3)))


def test_a_registered_adapter_is_found():
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = UserLSTMLM()

    def unwrap(model):
        return rnn_lm(model.inner.embedding, model.inner.rnn, model.inner.head) if isinstance(model, Wrapped) else None

    model = Wrapped()
    model.inner.embedding.register_module("noise", nn.Embedding(2, 2))  # the built-in would refuse this one
    with ADAPTERS.scoped():
        register_adapter("test-wrapped", unwrap)
        assert adapt_lm(model).encoder is model.inner.embedding
    assert "test-wrapped" not in ADAPTERS  # registered for the block only
    with pytest.raises(AdapterError, match="no model adapter fits"):
        adapt_lm(model)


def test_an_unsupported_score_is_never_stored(tmp_path):
    from zeronas.core.config import ScoringConfig
    from zeronas.store import open_store

    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        with pytest.raises(StoreError, match="never stored"):
            store.put_cell("lstm", reference_cell("lstm").to_json(), ScoringConfig(),
                           {"naswot": Score("naswot", None, "unsupported", "needs activations")})


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_own_model_page_example_runs(capsys):
    """The score_model example of the documentation (docs/own-model.md), as written."""
    page = (ROOT / "docs" / "own-model.md").read_text()
    code = page[page.index("```python") + len("```python"):page.index("```\n", page.index("```python") + 9)]
    exec(compile(code, "docs/own-model.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["zen", "ok"], ["naswot", "ok"], ["state_escape", "ok"],
                                                    ["grasp", "ok"]]


def test_example_script_scores_an_lstm_and_an_own_cell():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "score_your_model.py"), "--emb", "16", "--hidden",
                           "16", "--proxies", "zen,naswot,flops,cell_depth"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[1:5]}
    assert set(rows) == {"zen", "naswot", "flops", "cell_depth"}
    assert rows["cell_depth"][1] == "unsupported"  # the own cell has no recipe
    assert all(float(v) for name in ("zen", "naswot", "flops") for v in rows[name])
    assert "own cell LM: cell_depth: unsupported: needs a cell-language recipe" in proc.stdout


# ------------------------------------------------------------------------------------- zeronas score-model

USER_MODULE = '''
import torch
from torch import nn

class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10000, 8)    # the PTB vocabulary
        self.rnn = nn.GRU(8, 8, num_layers=2)
        self.out = nn.Linear(8, 10000)

def build():
    torch.manual_seed(0)
    return TinyLM()

not_a_model = 3
'''


def _cli(args, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from zeronas.cli import app

    monkeypatch.syspath_prepend(str(tmp_path))
    return CliRunner().invoke(app, ["score-model", *args, "--batch-size", "3", "--seq-len", "6"])


def test_score_model_command_loads_a_factory_and_a_weights_only_checkpoint(tmp_path, monkeypatch):
    import json
    import sys

    (tmp_path / "zn_user_lm.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("zn_user_lm", None)
    import zn_user_lm

    trained = zn_user_lm.build()
    with torch.no_grad():
        for p in trained.parameters():
            p.mul_(3.0)  # "trained" weights, different from what build() makes
    torch.save({"epoch": 3, "state_dict": trained.state_dict()}, tmp_path / "ck.pt")
    args = ["zn_user_lm:build", "--proxies", "zen,grad_norm,cell_depth", "--json"]
    fresh = _cli(args, tmp_path, monkeypatch)
    loaded = _cli([*args, "--checkpoint", str(tmp_path / "ck.pt")], tmp_path, monkeypatch)
    assert fresh.exit_code == 0 and loaded.exit_code == 0, fresh.output + loaded.output
    a, b = json.loads(fresh.stdout), json.loads(loaded.stdout)
    assert a["scores"]["cell_depth"]["value"] == b["scores"]["cell_depth"]["value"] == 6  # the reference GRU
    assert a["scores"]["zen"]["value"] != b["scores"]["zen"]["value"]  # the checkpoint's weights were scored
    want = score_model(trained, ["zen"], config=TINY.with_(batch_size=3, seq_len=6))["zen"].value
    assert b["scores"]["zen"]["value"] == want
    assert b["checkpoint"] == "ck.pt" and str(tmp_path) not in loaded.output


def test_score_model_command_errors_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "zn_user_lm2.py").write_text(USER_MODULE.replace("class TinyLM", "class Evil(object):\n    "
                                                                 "def __reduce__(self):\n        return (print, "
                                                                 "('pwned',))\n\nclass TinyLM"))
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("zn_user_lm2", None)
    evil_module = importlib.import_module("zn_user_lm2")
    torch.save({"state_dict": evil_module.Evil()}, tmp_path / "evil.pt")
    torch.save({"rnn.weight": torch.zeros(2)}, tmp_path / "wrong.pt")
    cases = [
        (["zn_user_lm2"], "name the model as module:attribute"),
        (["zn_no_such_module:build"], "cannot import 'zn_no_such_module'"),
        (["zn_user_lm2:nothing"], "has no attribute 'nothing'"),
        (["zn_user_lm2:not_a_model"], "is a int, not an nn.Module"),
        (["zn_user_lm2:build", "--checkpoint", str(tmp_path / "missing.pt")], "missing.pt: no such file"),
        (["zn_user_lm2:build", "--checkpoint", str(tmp_path / "evil.pt")], "pickled object of type print"),
        (["zn_user_lm2:build", "--checkpoint", str(tmp_path / "wrong.pt")], "does not fit the model"),
        (["zn_user_lm2:build", "--corpus", "wikitext-2"], "vocabulary has 10000 entries"),
    ]
    for args, message in cases:
        result = _cli([*args, "--proxies", "zen"], tmp_path, monkeypatch)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, (args, result.output)
        assert "pwned" not in result.output
