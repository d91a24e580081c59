"""Small inputs for tests/resources/placement.py (its declared sizes are what the cloud would see; these files
are what a test reads): clicks as CSV, logs as JSON lines, an archive as Parquet."""

from __future__ import annotations

import json
from pathlib import Path


def write_inputs(folder: Path) -> dict[str, str]:
    """Write the three sources under ``folder``; return source name -> location."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    users = [f"u{index % 7}" for index in range(60)]
    clicks = folder / "clicks"
    clicks.mkdir(parents=True)
    (clicks / "part-0.csv").write_text(
        "user,page\n" + "".join(f"{user},/p{index % 5}\n" for index, user in enumerate(users))
    )
    logs = folder / "logs"
    logs.mkdir()
    (logs / "part-0.jsonl").write_text(
        "".join(
            json.dumps({"user": user, "kind": "view" if index % 3 else "buy"}) + "\n"
            for index, user in enumerate(users)
        )
    )
    archive = folder / "archive"
    archive.mkdir()
    table = pa.table({"user": users[:40], "amount": [float(index) * 1.5 for index in range(40)]})
    pq.write_table(table, archive / "part-0.parquet")
    return {"clicks": f"{clicks}/", "logs": f"{logs}/", "archive": f"{archive}/"}
