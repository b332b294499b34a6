"""``aiusage worker`` runs pending export jobs from the shared store in its own loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiusage.cli.worker import run_worker
from aiusage.exports.service import ExportService
from aiusage.exports.signing import UrlSigner
from aiusage.settings import Settings
from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository

NOW = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)


async def make_pending_job(settings: Settings) -> tuple[str, ExportService, Database]:
    db = Database(settings.resolved_database_url)
    await db.migrate()
    async with db.write() as conn:
        await OrganizationRepository().create(conn, "acme", "Acme", now=NOW)
    service = ExportService(
        db, settings.data_dir, UrlSigner.load_or_create(settings.data_dir), run_in_process=False
    )
    job = await service.create("acme", "mgr", NOW - timedelta(days=1), NOW, "jsonl")
    assert job["status"] == "pending"
    return job["id"], service, db


async def test_worker_once_runs_the_pending_export_job(tmp_path):
    settings = Settings(data_dir=tmp_path)
    job_id, service, db = await make_pending_job(settings)
    try:
        assert await run_worker(settings, once=True) == 0
        job = await service.get("acme", "mgr", job_id)
        assert job["status"] == "done" and job["rowCount"] == 0
        assert (tmp_path / "exports" / f"{job_id}.jsonl").exists()
    finally:
        await db.dispose()


@pytest.mark.integration
async def test_worker_publishes_through_a_real_redis_backplane(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        redis_url="redis://127.0.0.1:6379/0",
        channel_prefix=f"P2bTest{tmp_path.name}",
    )
    job_id, service, db = await make_pending_job(settings)
    try:
        assert await run_worker(settings, once=True) == 0
        assert (await service.get("acme", "mgr", job_id))["status"] == "done"
    finally:
        await db.dispose()
