"""SQLite state: one row per job, holding its JobDescription JSON.

``state.db`` is made under a temporary name and renamed into place once its
schema is written, so an existing ``state.db`` always has a header: an empty or
unreadable one is damage, never a fresh start. The platform then refuses to
start with a ``StateError`` that names the file, says what is wrong and how to
recover (``apolo-jupyter local start --reset-state`` keeps the damaged file
beside it and starts with an empty history).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
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


class StateError(RuntimeError):
    """The platform's state cannot be used; the message says how to recover."""


RESET_HINT = (
    "The platform does not start over on its own, so that no job history is lost "
    "silently. To keep a copy of the damaged file and start with an empty "
    "history, run: apolo-jupyter local start --reset-state"
)


def _create(path: Path) -> None:
    """A new, empty state database at ``path``, complete before it appears."""
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.executescript(SCHEMA)
    finally:
        db.close()
    os.replace(tmp, path)


def _damaged(path: Path, what: str) -> StateError:
    return StateError(f"the job history {path} {what}. {RESET_HINT}")


class Store:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            _create(path)
        elif path.stat().st_size == 0:
            raise _damaged(path, "is empty (0 bytes): it was truncated")
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            check = self._db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(check[0] if check else "no answer")
            self._db.execute(
                "SELECT seq, id, name, owner, status, created_at, body FROM jobs LIMIT 0"
            )
        except sqlite3.DatabaseError as exc:
            raise _damaged(path, f"is damaged ({exc})") from None

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


def set_aside(path: Path) -> Path | None:
    """Move a state database (and its WAL files) aside as
    ``<name>.damaged-<time>``; returns the new path, None if there was none."""
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            os.replace(source, kept.with_name(kept.name + suffix))
    return kept
