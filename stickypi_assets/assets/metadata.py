"""Asset metadata shared by the stages (kept small: it lives in Dagster's event log)."""

from dagster import MetadataValue

MAX_LISTED_PROBLEMS = 50


def problems_markdown(problems: list[tuple[str, str]]) -> MetadataValue:
    """``[(object key, reason)]`` as a Markdown list, the first 50 only; ``none`` when empty."""
    lines = [f"- `{key}`: {reason}" for key, reason in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"- … and {len(problems) - MAX_LISTED_PROBLEMS} more (see the table's status/error columns)")
    return MetadataValue.md("\n".join(lines) or "none")
