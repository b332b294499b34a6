"""Export jobs: create, run (in process or in ``aiusage worker``), notify, serve.

Two kinds of export (docs/metrics.md "Exports"): ``events`` (the raw session and detection
rows of the range, the default) and ``people`` (one row per person over the range, from the
dashboard's rollups).

Lifecycle of an ``export_jobs`` row: ``pending`` -> ``running`` (claimed by exactly one runner
with ``UPDATE ... WHERE status = 'pending'``) -> ``done`` (file written, ExportCompleted sent
to ``user:{orgId}:{userId}``) or ``failed`` (``error`` set). Files are written to
``data_dir/exports/{job_id}.{csv|jsonl}.part`` and renamed when complete, so a download never
sees half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from aiusage.errors import Forbidden, NotFound, ValidationError
from aiusage.exports.people import PEOPLE_COLUMNS, people_rows
from aiusage.exports.signing import SignatureExpired, SignatureInvalid, UrlSigner
from aiusage.exports.writer import COLUMNS, encode_header, encode_rows, export_rows
from aiusage.metrics.span import utc_span
from aiusage.store.database import Database
from aiusage.store.tables import export_jobs as _jobs

log = logging.getLogger("aiusage.exports")

FORMATS: Final = ("csv", "jsonl")
KINDS: Final = ("events", "people")
PENDING: Final = "pending"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
DEFAULT_URL_TTL_S: Final = 3600


class ExportPublisher(Protocol):
    """The part of ``realtime.publisher.EventPublisher`` exports use."""

    async def export_completed(
        self, org_id: str, user_id: str, job_id: str, download_url: str, **extra: Any
    ) -> None:
        """Send ExportCompleted ``{jobId, downloadUrl}`` to ``user:{org_id}:{user_id}``."""
        ...


class DownloadGone(Exception):
    """The link expired (HTTP 410)."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A finished export ready to be served."""

    path: Path
    filename: str
    media_type: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ExportService:
    """Creates and runs export jobs.

    Args:
        db: The store.
        data_dir: Files go to ``data_dir/exports``.
        signer: Signs download links (``UrlSigner.load_or_create(data_dir)``).
        publisher: Sends ExportCompleted (None: no notification).
        run_in_process: Run each job in a background task of this process (the default);
            False leaves jobs pending for ``aiusage worker``.
        url_ttl_s: Lifetime of download links (default 1 h).
        base_url: Prefix of download links ("" = relative, resolved by the browser).
        clock: Current time (aware UTC).
        chunk_rows: Rows per database read while exporting.
    """

    def __init__(
        self,
        db: Database,
        data_dir: str | os.PathLike[str],
        signer: UrlSigner,
        publisher: ExportPublisher | None = None,
        *,
        run_in_process: bool = True,
        url_ttl_s: int = DEFAULT_URL_TTL_S,
        base_url: str = "",
        clock: Callable[[], datetime] = _utcnow,
        chunk_rows: int = 1000,
    ) -> None:
        self._db = db
        self.directory = Path(data_dir) / "exports"
        self._signer = signer
        self.publisher = publisher
        self._in_process = run_in_process
        self._ttl = url_ttl_s
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self._chunk = chunk_rows
        self._tasks: set[asyncio.Task[bool]] = set()

    # -- API ----------------------------------------------------------------------------------

    async def create(
        self,
        org_id: str,
        user_id: str,
        start: datetime,
        end: datetime,
        fmt: str,
        kind: str = "events",
    ) -> dict[str, Any]:
        """Create a pending job and (in process mode) start it in the background.

        Raises:
            ValidationError: Unknown format or kind, naive times, ``from`` not before ``to``,
                or (people) bounds that are not whole UTC hours.
        """
        if fmt not in FORMATS:
            raise ValidationError(f"format must be one of {', '.join(FORMATS)}")
        if kind not in KINDS:
            raise ValidationError(f"kind must be one of {', '.join(KINDS)}")
        if start.tzinfo is None or end.tzinfo is None:
            raise ValidationError("from and to must include a time zone")
        if start >= end:
            raise ValidationError("from must be before to")
        if kind == "people":
            utc_span(start, end)  # refuse now what the job could not compute later
        job_id = uuid.uuid4().hex
        now = self._clock()
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    insert(_jobs).values(
                        id=job_id,
                        org_id=org_id,
                        user_id=user_id,
                        from_time=start,
                        to_time=end,
                        format=fmt,
                        kind=kind,
                        status=PENDING,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            # The organization was removed (the job's foreign key): the same answer as the
            # access check gives once its cache has seen the removal (docs/security.md).
            raise Forbidden("Unknown organization") from exc
        # Read before starting: the answer describes the job as created (pending), whatever
        # the background task has done by the time the reply is written.
        created = await self.get(org_id, user_id, job_id)
        if self._in_process:
            task = asyncio.create_task(self.run_job(job_id), name=f"export-{job_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return created

    async def get(self, org_id: str, user_id: str, job_id: str) -> dict[str, Any]:
        """The job as JSON for its owner (with a fresh download link once done).

        Raises:
            NotFound: No such job of this user in this organization (others' jobs are not
                revealed).
        """
        row = await self._row(job_id)
        if row is None or row["org_id"] != org_id or row["user_id"] != user_id:
            raise NotFound(f"export {job_id!r} not found")
        return self._json(row)

    async def list(self, org_id: str, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The caller's own jobs in this organization, newest first (at most ``limit``)."""
        async with self._db.read() as conn:
            rows = (
                (
                    await conn.execute(
                        select(_jobs)
                        .where(_jobs.c.org_id == org_id, _jobs.c.user_id == user_id)
                        .order_by(_jobs.c.created_at.desc(), _jobs.c.id.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [self._json(row) for row in rows]

    def download_url(self, job_id: str, user_id: str) -> str:
        """A signed link valid for the configured TTL from now."""
        exp = int(self._clock().timestamp()) + self._ttl
        sig = self._signer.sign(job_id, user_id, exp)
        return f"{self._base_url}/api/exports/{job_id}/download?exp={exp}&sig={sig}"

    async def open_download(
        self, org_id: str | None, user_id: str, job_id: str, exp: int, sig: str
    ) -> ExportFile:
        """Check a download request and return the file to serve.

        Args:
            org_id: The caller's organization (None: any, for SuperAdmin).
            user_id: The caller; must be the job's owner.

        Raises:
            NotFound: No such job (404).
            Forbidden: The caller is not the job's owner, or the signature is bad (403).
            DownloadGone: The link expired (410).
            ValidationError: The job is not done (409-like; served as 409 by the API).
        """
        row = await self._row(job_id)
        if row is None:
            raise NotFound(f"export {job_id!r} not found")
        if row["user_id"] != user_id or (org_id is not None and row["org_id"] != org_id):
            raise Forbidden("this export belongs to another user")
        try:
            self._signer.verify(job_id, user_id, exp, sig, self._clock().timestamp())
        except SignatureInvalid:
            raise Forbidden("invalid download signature") from None
        except SignatureExpired:
            raise DownloadGone("download link expired") from None
        if row["status"] != DONE or not row["path"]:
            raise ValidationError(f"export {job_id!r} is {row['status']}")
        fmt = row["format"]
        prefix = "aiusage-people" if row["kind"] == "people" else "aiusage-export"
        return ExportFile(
            path=Path(row["path"]),
            filename=f"{prefix}-{job_id}.{fmt}",
            media_type="text/csv" if fmt == "csv" else "application/x-ndjson",
        )

    # -- running ------------------------------------------------------------------------------

    async def run_job(self, job_id: str) -> bool:
        """Claim and run one pending job; False when another runner has it already."""
        async with self._db.write() as conn:
            claimed = await conn.execute(
                update(_jobs)
                .where(_jobs.c.id == job_id, _jobs.c.status == PENDING)
                # Keep the row's other columns: only the status moves.
                .values(status=RUNNING)
            )
        if claimed.rowcount != 1:
            return False
        row = await self._row(job_id)
        assert row is not None
        try:
            count, path = await self._write(row)
        except Exception as exc:
            log.exception("export_failed job=%s", job_id)
            async with self._db.write() as conn:
                await conn.execute(
                    update(_jobs)
                    .where(_jobs.c.id == job_id)
                    .values(status=FAILED, error=type(exc).__name__, completed_at=self._clock())
                )
            return True
        async with self._db.write() as conn:
            await conn.execute(
                update(_jobs)
                .where(_jobs.c.id == job_id)
                .values(status=DONE, path=str(path), row_count=count, completed_at=self._clock())
            )
        log.info("export_done job=%s rows=%d", job_id, count)
        if self.publisher is not None:
            try:
                await self.publisher.export_completed(
                    row["org_id"],
                    row["user_id"],
                    job_id,
                    self.download_url(job_id, row["user_id"]),
                    format=row["format"],
                    kind=row["kind"],
                    rowCount=count,
                )
            except Exception:  # the job is done; GET /api/exports/{id} still gives the link
                log.exception("export_notify_failed job=%s", job_id)
        return True

    async def run_pending(self, limit: int = 10) -> int:
        """Run up to ``limit`` pending jobs, oldest first (``aiusage worker``). Returns how many
        this call ran."""
        async with self._db.read() as conn:
            ids = list(
                (
                    await conn.execute(
                        select(_jobs.c.id)
                        .where(_jobs.c.status == PENDING)
                        .order_by(_jobs.c.created_at)
                        .limit(limit)
                    )
                ).scalars()
            )
        ran = 0
        for job_id in ids:
            if await self.run_job(job_id):
                ran += 1
        return ran

    async def wait_idle(self) -> None:
        """Wait for the in-process jobs started so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel in-process jobs (they stay ``running``; see docs/metrics.md "Exports")."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _write(self, row: Any) -> tuple[int, Path]:
        fmt = row["format"]
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{row['id']}.{fmt}"
        part = final.with_name(final.name + ".part")
        count = 0
        started = time.monotonic()
        span = (row["org_id"], row["from_time"], row["to_time"])
        columns: tuple[str, ...]
        if row["kind"] == "people":
            columns = PEOPLE_COLUMNS
            rows = people_rows(self._db, *span, chunk=self._chunk, clock=self._clock)
        else:
            columns = COLUMNS
            rows = export_rows(self._db, *span, chunk=self._chunk)
        fh = await asyncio.to_thread(part.open, "w", encoding="utf-8", newline="")
        try:
            await asyncio.to_thread(fh.write, encode_header(fmt, columns))
            async for chunk in rows:
                count += len(chunk)
                await asyncio.to_thread(fh.write, encode_rows(fmt, chunk, columns))
        finally:
            await asyncio.to_thread(fh.close)
        await asyncio.to_thread(os.replace, part, final)
        log.debug("export_written job=%s s=%.3f", row["id"], time.monotonic() - started)
        return count, final

    async def _row(self, job_id: str) -> Any:
        async with self._db.read() as conn:
            return (
                (await conn.execute(select(_jobs).where(_jobs.c.id == job_id))).mappings().first()
            )

    def _json(self, row: Any) -> dict[str, Any]:
        done = row["status"] == DONE
        return {
            "id": row["id"],
            "jobId": row["id"],
            "organizationId": row["org_id"],
            "userId": row["user_id"],
            "status": row["status"],
            "format": row["format"],
            "kind": row["kind"],
            "from": _iso(row["from_time"]),
            "to": _iso(row["to_time"]),
            "createdAt": _iso(row["created_at"]),
            "completedAt": _iso(row["completed_at"]),
            "rowCount": row["row_count"],
            "error": row["error"],
            "downloadUrl": self.download_url(row["id"], row["user_id"]) if done else None,
        }


__all__ = ["FORMATS", "KINDS", "DownloadGone", "ExportFile", "ExportPublisher", "ExportService"]
