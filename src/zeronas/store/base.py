"""What every results store shares: the interface, its error, and the default store's URL."""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol, runtime_checkable

from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score

DEFAULT_STORE = "sqlite:///zeronas.db"  # where the commands keep scores unless told otherwise: all share it

Revisions = Mapping[str, int]  # proxy name -> its current revision, as the caller's registry has it


class StoreError(RuntimeError):
    """A store that cannot be opened or used, or a write that would change a stored record."""


@runtime_checkable
class ResultStore(Protocol):
    """What the executor and the analyses need from a results store. The store knows nothing of proxies: the
    caller names each proxy's current ``revisions`` (:func:`zeronas.proxies.registry.proxy_revisions`); a read
    sees the rows of those revisions (a proxy not named: its highest stored revision), a write files each score
    under its proxy's revision (a proxy not named: revision 1)."""

    def put_cell(self, canonical_id: str, recipe_json: str, config: ScoringConfig,
                 scores: Mapping[str, Score] | Iterable[Score], *, revisions: Revisions | None = None,
                 strict: bool = False) -> int:
        """Write one finished cell in one transaction; return the number of new result rows. Existing rows are
        kept (``strict=True``: raise :class:`StoreError` instead, writing nothing)."""

    def get(self, canonical_id: str, config_hash: str | ScoringConfig, seed: int | None = None, *,
            revisions: Revisions | None = None) -> dict[str, Score]:
        """Every stored score of one cell under one config: ``{proxy: Score}`` (empty if none)."""

    def missing_proxies(self, canonical_ids: Iterable[str], proxies: Iterable[str], config: ScoringConfig, *,
                        revisions: Revisions | None = None) -> dict[str, list[str]]:
        """``{canonical_id: [proxies without a stored row]}`` for the ids that need any work, input order."""

    def missing(self, canonical_ids: Iterable[str], proxies: Iterable[str], config: ScoringConfig, *,
                revisions: Revisions | None = None) -> set[str]:
        """The ids that need work: some requested proxy has no stored row for this config and seed."""

    def scores_table(self, config: ScoringConfig, proxies: Iterable[str] | None = None, *,
                     revisions: Revisions | None = None) -> dict[str, dict[str, Score]]:
        """``{canonical_id: {proxy: Score}}`` for one config (all proxies if ``proxies`` is None)."""

    def recipe(self, canonical_id: str) -> str | None:
        """The recipe JSON stored for a canonical id, or None."""

    def configs(self) -> dict[str, ScoringConfig]:
        """Every scoring config with results, by hash."""

    def delete(self, config: ScoringConfig, *, proxies: Iterable[str] | None = None,
               statuses: Iterable[str] | None = None) -> int:
        """Explicitly forget results (e.g. timeouts, to retry them with a longer limit); return rows deleted."""

    def close(self) -> None: ...
