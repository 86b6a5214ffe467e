"""Scoring contexts that change the model, for tests of what a proxy reacts to."""

from __future__ import annotations

import copy

import torch

from zeronas.proxies.context import ScoringContext


class ChangedContext(ScoringContext):
    """A context whose whole model (every proxy's copy, and the read-only one) is changed by :meth:`change`: a
    copy of the seeded model, so that the seeded parts (the embedding is shared by every context of the process)
    stay as they are. Proxies that read single layers (``layer``, ``layer_outputs``) still see the seeded ones."""

    def change(self, model) -> None:
        raise NotImplementedError

    def _whole(self):
        if not getattr(self, "_changed", False):
            self._template = copy.deepcopy(super()._whole())
            with torch.no_grad():
                self.change(self._template)
            self._changed = True
        return self._template
