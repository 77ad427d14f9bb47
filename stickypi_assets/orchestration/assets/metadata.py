"""Asset metadata shared by the stages (kept small: it lives in Dagster's event log)."""

from typing import Protocol

from dagster import MetadataValue

from stickypi_assets.storage.object_store import ObjectStore

MAX_LISTED_PROBLEMS = 50


def problems_markdown(problems: list[tuple[str, str]]) -> MetadataValue:
    """``[(object key, reason)]`` as a Markdown list, the first 50 only; ``none`` when empty."""
    lines = [f"- `{key}`: {reason}" for key, reason in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"- … and {len(problems) - MAX_LISTED_PROBLEMS} more (see the table's status/error columns)")
    return MetadataValue.md("\n".join(lines) or "none")


def hourly_bars_markdown(hours: list[int], title: str, width: int = 360, height: int = 110) -> MetadataValue:
    """A small bar chart (PNG, base64 in Markdown) of how many events fall in each UTC hour of the day.

    Drawn with OpenCV (no plotting library needed) and kept to a few kB: it lives in the event log.
    """
    import base64

    import cv2
    import numpy as np

    counts = np.bincount(np.asarray(hours, dtype=int) % 24, minlength=24) if len(hours) else np.zeros(24, int)
    img = np.full((height, width, 3), 255, np.uint8)
    top, bottom, left = 14, height - 16, 6
    bar = (width - 2 * left) // 24
    peak = max(int(counts.max()), 1)
    for h, n in enumerate(counts):
        x0 = left + h * bar
        y0 = bottom - int(round((bottom - top) * n / peak))
        cv2.rectangle(img, (x0 + 1, y0), (x0 + bar - 2, bottom), (180, 120, 40), -1)
        if h % 6 == 0:
            cv2.putText(img, f"{h:02d}h", (x0, height - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (60, 60, 60), 1)
    cv2.putText(img, f"{title} (max {peak}/h)", (left, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    ok, png = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        return MetadataValue.md(f"{title}: " + ", ".join(f"{h:02d}h {n}" for h, n in enumerate(counts) if n))
    data = base64.b64encode(png.tobytes()).decode("ascii")
    return MetadataValue.md(f"![{title}](data:image/png;base64,{data})")


def path_or_count(store: ObjectStore, keys: list[str]) -> MetadataValue | int:
    """A link to the one object a one-day run wrote, or how many objects a range run wrote."""
    return MetadataValue.path(store.uri(keys[0])) if len(keys) == 1 else len(keys)


def per_item(seconds: float, n: int, digits: int) -> float:
    """Seconds per item (image, tuboid, frame) rounded to ``digits``; 0.0 when there was none."""
    return round(seconds / n, digits) if n else 0.0


class DayResult(Protocol):
    """What a pipeline's device-day result tells an asset: its rows per status and its problems."""

    errors: list[tuple[str, str]]

    def count(self, status: str) -> int: ...


class StatusTally:
    """The rows per status and the problems of the device-days of one run, for the asset's metadata.

    ``names`` maps each status to its metadata entry, in the order the entries are listed
    (``{"ok": "n_ok", "error": "n_errors"}``)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.counts = dict.fromkeys(names, 0)
        self.errors: list[tuple[str, str]] = []

    def add(self, day: DayResult) -> None:
        for status in self.counts:
            self.counts[status] += day.count(status)
        self.errors += day.errors

    def __getitem__(self, status: str) -> int:
        return self.counts[status]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def metadata(self) -> dict[str, int]:
        """``{entry: rows}`` of each status."""
        return {self.names[status]: n for status, n in self.counts.items()}
