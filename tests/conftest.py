"""Test-wide settings: one torch thread (the test models are tiny; thread start-up costs more than it saves)."""

import torch

torch.set_num_threads(1)
