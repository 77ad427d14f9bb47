"""What a device-day pipeline returns to its asset: the rows for its table, how long they took, what went wrong.

One class so the assets' metadata (:class:`~stickypi_assets.orchestration.assets.metadata.StatusTally`) reads
every stage the same way: rows per ``status``, and ``(object, message)`` for each item that could not be used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class DayRows:
    rows: pd.DataFrame
    seconds: float
    errors: list[tuple[str, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Rows with this ``status`` (``ok``, ``error``, …)."""
        return int((self.rows["status"] == status).sum()) if len(self.rows) else 0
