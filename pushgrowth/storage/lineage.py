"""What a step read: the assets behind every dataset read while `recording`, for the asset's metadata.

A read of a dataset is a read of its `asset`, except for a partition its writer wrote in the same step's
partition (`writer_offset` days after it): daily_assignments of day D writes the decisions of D + 1, and
push_outbox of day D reads those from daily_assignments, while older decisions are the `decisions` log.
Reads outside a recording (the CLI, the simulation driver, tests) are not noted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pushgrowth.storage.datasets import Dataset


@dataclass
class Reads:
    """The asset keys (user strings) read during one recording."""

    partition_date: dt.date | None = None
    assets: set[str] = field(default_factory=set)

    def add(self, dataset: Dataset, date: dt.date | None) -> None:
        fresh = (dataset.writer is not None and dataset.writer_offset and date is not None
                 and self.partition_date is not None
                 and date == self.partition_date + dt.timedelta(days=dataset.writer_offset))
        self.assets.add(dataset.written_by if fresh else dataset.asset)


_CURRENT: ContextVar[Reads | None] = ContextVar("pushgrowth_reads", default=None)


@contextlib.contextmanager
def recording(partition_date: dt.date | None = None) -> Iterator[Reads]:
    """Note every dataset read inside the block (nested recordings each see their own reads)."""
    reads = Reads(partition_date)
    token = _CURRENT.set(reads)
    try:
        yield reads
    finally:
        _CURRENT.reset(token)


def note(dataset: Dataset, date: dt.date | None = None) -> None:
    """Record a read of `dataset` (partition `date`) in the current recording, if any."""
    reads = _CURRENT.get()
    if reads is not None:
        reads.add(dataset, date)


def note_asset(asset: str) -> None:
    """Record a read of an asset that is not a lake dataset (a model alias in the MLflow registry)."""
    reads = _CURRENT.get()
    if reads is not None:
        reads.assets.add(asset)
