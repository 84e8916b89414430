"""Tables as lists of dicts (one dict a row): Markdown and CSV writers shared by stats and sweep."""
from __future__ import annotations

import csv
import io
from pathlib import Path


def columns(rows: list[dict]) -> list[str]:
    """Column names in first-seen order over all rows (rows may carry different columns)."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(rows: list[dict]) -> str:
    cols = columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    return buf.getvalue()


def write(rows: list[dict], stem: Path, title: str = "") -> tuple[Path, Path]:
    """Write stem.csv and stem.md; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    csv_path.write_text(csv_text(rows))
    md_path.write_text((f"# {title}\n\n" if title else "") + markdown(rows))
    return csv_path, md_path
