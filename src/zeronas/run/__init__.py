"""Scoring at scale: many cells, many processes (or a Ray cluster), results written to a store as they finish."""

from zeronas.run.executor import EXECUTORS, ExecutorError, RunSummary, WorkerPool, score_many
from zeronas.run.scoring import score_and_read

__all__ = ["EXECUTORS", "ExecutorError", "RunSummary", "WorkerPool", "score_and_read", "score_many"]
