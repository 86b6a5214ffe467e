"""Reference cells written in the cell language: vanilla RNN, LSTM and GRU.

These follow PyTorch's definitions exactly (``nn.RNNCell``, ``nn.LSTMCell``, ``nn.GRUCell``), so a model
built from them can be checked against PyTorch. They are not NAS-Bench-NLP's example recipes: its "lstm"
uses tanh on the input and output gates, and its "gru" applies the reset gate before the matmul. Those are
in the benchmark as ordinary cells.
"""

from __future__ import annotations

from zeronas.cells.recipe import Cell, parse_recipe

RNN_TANH = {
    "pre": {"op": "linear", "input": ["x", "h_prev_0"]},
    "h_new_0": {"op": "activation_tanh", "input": ["pre"]},
}

# h_new_0 = h (the output), h_new_1 = c (the carried memory)
LSTM = {
    "i": {"op": "linear", "input": ["x", "h_prev_0"]},
    "f": {"op": "linear", "input": ["x", "h_prev_0"]},
    "g": {"op": "linear", "input": ["x", "h_prev_0"]},
    "o": {"op": "linear", "input": ["x", "h_prev_0"]},
    "i_gate": {"op": "activation_sigm", "input": ["i"]},
    "f_gate": {"op": "activation_sigm", "input": ["f"]},
    "g_act": {"op": "activation_tanh", "input": ["g"]},
    "o_gate": {"op": "activation_sigm", "input": ["o"]},
    "keep": {"op": "elementwise_prod", "input": ["f_gate", "h_prev_1"]},
    "write": {"op": "elementwise_prod", "input": ["i_gate", "g_act"]},
    "h_new_1": {"op": "elementwise_sum", "input": ["keep", "write"]},
    "c_act": {"op": "activation_tanh", "input": ["h_new_1"]},
    "h_new_0": {"op": "elementwise_prod", "input": ["o_gate", "c_act"]},
}

# PyTorch's GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = z*h + (1-z)*n
GRU = {
    "r": {"op": "linear", "input": ["x", "h_prev_0"]},
    "z": {"op": "linear", "input": ["x", "h_prev_0"]},
    "r_gate": {"op": "activation_sigm", "input": ["r"]},
    "z_gate": {"op": "activation_sigm", "input": ["z"]},
    "n_x": {"op": "linear", "input": ["x"]},
    "n_h": {"op": "linear", "input": ["h_prev_0"]},
    "n_h_reset": {"op": "elementwise_prod", "input": ["r_gate", "n_h"]},
    "n_pre": {"op": "elementwise_sum", "input": ["n_x", "n_h_reset"]},
    "n": {"op": "activation_tanh", "input": ["n_pre"]},
    "h_new_0": {"op": "blend", "input": ["z_gate", "h_prev_0", "n"]},
}

REFERENCE_RECIPES: dict[str, dict] = {"rnn": RNN_TANH, "lstm": LSTM, "gru": GRU}


def reference_cell(name: str) -> Cell:
    """One of ``rnn``, ``lstm``, ``gru`` as a validated cell."""
    try:
        recipe = REFERENCE_RECIPES[name]
    except KeyError:
        raise KeyError(f"no reference cell {name!r} (known: {', '.join(REFERENCE_RECIPES)})") from None
    return parse_recipe(recipe, source=f"reference cell {name!r}", name=name)
