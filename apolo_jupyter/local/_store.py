"""SQLite state: one row per job, holding its JobDescription JSON."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._records import JobRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_name ON jobs(name);
"""


@dataclass(frozen=True)
class JobFilter:
    statuses: Sequence[str] = ()
    name: str | None = None
    owners: Sequence[str] = ()
    tags: Sequence[str] = ()
    since: str | None = None
    until: str | None = None
    reverse: bool = False
    limit: int | None = None

    def matches_tags(self, body: str) -> bool:
        if not self.tags:
            return True
        tags = set(json.loads(body).get("tags") or ())
        return all(tag in tags for tag in self.tags)


class Store:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def save(self, job: JobRecord) -> str:
        """Insert or update; returns the JSON body as stored."""
        body = json.dumps(job.to_api(), separators=(",", ":"))
        self._db.execute(
            "INSERT INTO jobs (id, name, owner, status, created_at, body) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status=excluded.status, body=excluded.body",
            (job.id, job.name, job.owner, job.status.value, job.created_at, body),
        )
        return body

    def save_many(self, jobs: Sequence[JobRecord]) -> None:
        self._db.execute("BEGIN")
        for job in jobs:
            self.save(job)
        self._db.execute("COMMIT")

    def get(self, id_or_name: str) -> JobRecord | None:
        row = self._db.execute(
            "SELECT body FROM jobs WHERE id = ?", (id_or_name,)
        ).fetchone()
        if row is None:
            row = self._db.execute(
                "SELECT body FROM jobs WHERE name = ? ORDER BY seq DESC LIMIT 1",
                (id_or_name,),
            ).fetchone()
        return JobRecord.from_api(json.loads(row[0])) if row else None

    def unfinished(self) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT body FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled') "
            "ORDER BY seq"
        ).fetchall()
        return [JobRecord.from_api(json.loads(body)) for (body,) in rows]

    def iter_bodies(self, flt: JobFilter, batch: int = 500) -> Iterator[list[str]]:
        """Matching JobDescription JSON texts, in batches (never all in memory)."""
        where: list[str] = []
        args: list[object] = []
        if flt.statuses:
            where.append(f"status IN ({','.join('?' * len(flt.statuses))})")
            args.extend(flt.statuses)
        if flt.name:
            where.append("name = ?")
            args.append(flt.name)
        if flt.owners:
            where.append(f"owner IN ({','.join('?' * len(flt.owners))})")
            args.extend(flt.owners)
        if flt.since:
            where.append("created_at >= ?")
            args.append(flt.since)
        if flt.until:
            where.append("created_at <= ?")
            args.append(flt.until)
        sql = "SELECT body FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC" if flt.reverse else " ORDER BY seq"
        cursor = self._db.execute(sql, args)
        left = flt.limit
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                return
            out = [body for (body,) in rows if flt.matches_tags(body)]
            if left is not None:
                out = out[:left]
                left -= len(out)
            if out:
                yield out
            if left is not None and left <= 0:
                return
