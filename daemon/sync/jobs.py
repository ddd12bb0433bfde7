"""Sync jobs: one at a time, progress in memory, events, and the snapshot swap.

The heavy part of a sync — HTTP, XML parsing, bulk SQLite writes — runs in a
child process (``python -m mediasaged.sync.worker``) so that it never competes
with request handling for this process's GIL. The child fills the *inactive*
slot and reports progress as JSON lines; on success this process flips the live
slot in one short transaction. Cancel, failure or a killed child leave the live
slot exactly as it was (see docs/DESIGN.md, "Snapshots: two slots"). While the
worker runs, it and this process use separate CPUs (``cpus.py``).

An incremental job runs in a spare worker started ahead of it (``spare.py``);
one that died while idle is replaced by a fresh worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any, Callable

from . import cpus
from ..store import NoRoom, StoreError
from .process import WorkerProcess, exit_reason, stuck_reason
from .spare import Spare
from .spec import decoration, sync_settings, worker_env, worker_spec
from .stall import quiet_limit
from ..syncjob import SyncJob
from ..timeutil import now
from .targeted import Notified, Unclear, fetch_notified, nothing_changed

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between sync.progress pushes (~4/s)
CANCEL_GRACE = 5.0  # seconds a cancelled worker gets before SIGKILL (sync.cancel answers within it)
CHANGES_OVERLAP = 3600  # seconds an incremental sync re-reads before the last sync's start
RESUME_WITHIN = 3600  # seconds: a partial slot whose last page is older is not resumed (README)
MODES = ("auto", "full", "incremental")


class Syncer:
    """Starts, watches and cancels sync jobs; publishes their events."""

    def __init__(self, store: Any, config: Callable[[], Any], publish: Callable[[str, object], None]):
        self._store = store
        self._config = config  # current Config (SIGHUP may replace it)
        self._publish = publish
        self.job: SyncJob | None = None
        # (machineIdentifier, friendlyName, music section key) once the job's worker knows
        self._job_server: tuple[str, str, str | None] | None = None
        self._task: asyncio.Task | None = None
        self._worker: WorkerProcess | None = None
        self._spare = Spare(worker_env)  # a worker started ahead, for the next incremental job
        self._cancel_requested = False
        self._restart = False
        self._starting = asyncio.Lock()
        self.plex_reachable: bool | None = None
        # the music section's key on Plex: the live library's (`State.plex_section_id`, read at the
        # daemon's startup), then what each sync's worker found `plex.library` to be
        self.section_id: str | None = None
        # Tracks Plex notified as deleted: the next incremental sync removes them
        # without listing every key (its count check still has the last word).
        self.deleted_on_plex: set[str] = set()
        # the schedule's full syncs count from these (daemon.Daemon.scheduled_at); the attempt
        # too, so that a failing database is not tried again at every tick
        self.last_full_attempt: int | None = None
        self.last_full_sync: int | None = None  # the start of the last full sync that succeeded
        # Plex answers as another server than the cached library's: the old library
        # keeps answering until a full sync of the new one replaces it (CONTRACT §3).
        self.server_changed = False
        # The last job's error when the database could not record it (a full or
        # read-only disk): library.status and sync.status still tell it.
        self.unrecorded_error: str | None = None
        self.rejected_token: str | None = None  # the token Plex answered HTTP 401 to in the last job
        self.on_finished: Callable[[SyncJob], None] = lambda job: None  # after a job's outcome is recorded

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def connecting(self) -> bool:
        """A job runs and does not know Plex's answer yet."""
        return self.running and self._job_server is None

    async def start(self, mode: str = "auto", trigger: str = "manual", notified: list[dict] | None = None, *,
                    restart: bool = False) -> tuple[bool, int]:
        """Start a job. ``notified``: timeline entries Plex sent; an incremental job then
        fetches just those items first (`targeted.py`) and reads listings only if it must.
        ``restart``: a full sync does not resume a partial slot."""
        async with self._starting:  # two concurrent starts must not both create a job
            if self.running:
                return False, self.job.job_id
            effective = mode
            if mode == "auto":  # incremental when a complete cache exists; the worker checks the server
                state = await self._store.state()  # (a full sync cut short is finished first)
                resumable = not restart and await self.resumable() is not None
                effective = "incremental" if self._can_apply_changes(state) and not resumable else "full"
            started = now()
            if effective == "full":
                self.last_full_attempt = started
            self.job = await self._store.create_job(mode=effective, trigger=trigger, started_at=started)
            self._job_server = None
            self._cancel_requested = False
            self.rejected_token = None
            self._restart = restart
            targets = notified if effective == "incremental" else None
            self._task = asyncio.create_task(self._run(self.job, targets), name=f"sync-{self.job.job_id}")
        self._publish("sync.started", self.job.view())
        return True, self.job.job_id

    async def cancel(self) -> tuple[bool, int | None]:
        """SIGTERM to the worker's group, SIGKILL after CANCEL_GRACE; answers within about that."""
        if not self.running:
            return False, self.job.job_id if self.job else None
        self._cancel_requested = True
        job, worker = self.job, self._worker
        if worker is not None and not worker.exited:
            worker.terminate(kill_after=CANCEL_GRACE)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), CANCEL_GRACE + 1.0)
        except asyncio.TimeoutError:  # its outcome is still being recorded: it will say cancelled
            log.warning("sync job %d: cancelled, still recording the outcome", job.job_id)
            return True, job.job_id
        return self.job.state == "cancelled", self.job.job_id  # it may have finished meanwhile

    async def shutdown(self) -> None:
        self._spare.closed = True
        if self.running:
            await self.cancel()
        await self._spare.close()

    def keep_spare(self) -> None:
        """Start a spare worker soon (`spare.py`), if an incremental job could use it."""
        async def wanted() -> bool:
            return not self.running and self._can_apply_changes(await self._store.state())
        self._spare.keep(wanted)

    async def status(self, job_id: int | None = None) -> dict | None:
        if self.job is not None and job_id in (None, self.job.job_id) and (self.running or self.unrecorded_error):
            return self.job.view()  # running, or ended on a disk that could not record it
        stored = await self._store.get_job(job_id)
        return stored.view() if stored else None

    def progress(self) -> dict | None:
        if not self.running:
            return None
        job = self.job
        return {"job_id": job.job_id, "phase": job.phase, "current": job.current, "total": job.total}

    async def resumable(self) -> dict | None:
        """The partial slot a full sync would continue now, or None.

        One a full sync cut short left in the inactive slot (stop, crash, worker
        death), built with today's settings, whose last page is at most
        RESUME_WITHIN old. The worker also checks it is the same Plex server.
        """
        partial = await self._store.partial_slot()
        if partial is None or partial["settings"] != sync_settings(self._config()):
            return None
        if now() - partial["updated_at"] > RESUME_WITHIN \
                or max(partial["updated_at"], partial["first_started_at"]) > now():  # the clock went back since
            return None
        return {**partial, "since": partial["first_started_at"] - CHANGES_OVERLAP}

    # -- the job ------------------------------------------------------------

    async def _run(self, job: SyncJob, notified: list[dict] | None = None) -> None:
        t0 = time.monotonic()
        deleted, self.deleted_on_plex = self.deleted_on_plex, set()
        try:
            outcome = await self._apply_notified(job, notified) if notified else None
            if outcome is None and not deleted:
                outcome = await self._unchanged(job)
            if outcome is None:
                outcome = await self._run_worker(job, sorted(deleted))
            if self._cancel_requested:
                state, error = "cancelled", "cancelled"
            elif outcome.get("event") == "done":
                await self._swap(job, outcome, t0)
                state, error = "succeeded", None
            else:
                state, error = "failed", outcome.get("message") or exit_reason(outcome.get("returncode"))
        except StoreError as exc:  # the cache database failed the swap: the message names file and cause
            state, error = "failed", str(exc)
        except Exception:  # noqa: BLE001 - a sync must never take the daemon down
            log.exception("sync job %d crashed", job.job_id)
            state, error = "failed", "internal error during sync (see the daemon log)"
        if state != "succeeded":  # the next sync removes them then
            self.deleted_on_plex |= deleted
        # Readers see the job as running until its outcome is on disk.
        await self._finish(job, state, error)
        self._store.checkpoint_soon()  # after the job: its end does not wait for it
        self.keep_spare()
        self.on_finished(self.job)

    async def _unchanged(self, job: SyncJob) -> dict | None:
        """An incremental job on an unchanged library, told by a few counts (`targeted.nothing_changed`):
        it only records the sync. None: run the worker."""
        cfg = self._config()
        state = await self._store.state()
        if job.mode != "incremental" or self.section_id is None or not self._can_apply_changes(state):
            return None
        since = await self._store.changes_since(CHANGES_OVERLAP)
        if since is None:
            return None
        job.phase = "checking"
        if not await asyncio.to_thread(
                nothing_changed, url=cfg.plex.url, token=cfg.plex.token, timeout=cfg.plex.timeout,
                verify_ssl=cfg.plex.verify_ssl, server_id=state.plex_server_id, library=cfg.plex.library,
                section_id=self.section_id, since=since, track_count=state.track_count):
            job.phase = "starting"
            return None
        self.plex_reachable = True
        return {"event": "done", "applied": True, "mode": "incremental", "slot": state.live_slot,
                "settings": sync_settings(cfg), "added": 0, "updated": 0, "removed": 0,
                "track_count": state.track_count, "synced_at": now()}

    async def _apply_notified(self, job: SyncJob, notified: list[dict]) -> dict | None:
        """The notified items, fetched and written in place; None: run an incremental sync instead."""
        cfg = self._config()
        state = await self._store.state()
        # After a sync that failed, the named items alone would leave out what it did not
        # apply (the next listing sync would find it, but no one may ask for one soon):
        # the job reads every change since the last sync that read them all instead.
        if not self._can_apply_changes(state) or state.last_error is not None:
            return None
        job.phase = "fetching"
        try:
            changes = await asyncio.to_thread(
                fetch_notified, Notified.of(notified), url=cfg.plex.url, token=cfg.plex.token,
                timeout=cfg.plex.timeout, verify_ssl=cfg.plex.verify_ssl, server_id=state.plex_server_id,
                spec=decoration(cfg))
            job.phase = "applying"
            done = await self._store.apply_changes(
                slot=state.live_slot, generation=state.generation, rows=changes.rows, deleted=changes.deleted,
                albums=changes.albums, synced_at=now(), gone=changes.gone)
        except (Unclear, StoreError, NoRoom) as exc:
            log.info("notified changes need an incremental sync: %s", exc)
            job.phase = "starting"
            return None
        self.plex_reachable = True
        log.info("applied %d notified items with %d requests to Plex", len(changes.rows) + len(changes.deleted),
                 changes.requests)
        return {"event": "done", "applied": True, "mode": "incremental", "slot": state.live_slot,
                "settings": sync_settings(cfg), "notified_only": True, **done}

    def _can_apply_changes(self, state: Any) -> bool:
        """Whether the live library can be brought up to date incrementally.

        It needs a complete library built with today's settings: another
        library section or another live rule needs every track read again. So does a
        `plex.library` that the last sync found to be another section than the cached one
        (renamed on Plex, and another given its name).
        """
        return (state.synced_at is not None and bool(state.plex_server_id)
                and state.sync_settings == sync_settings(self._config())
                and state.plex_section_id in (None, self.section_id))

    async def _run_worker(self, job: SyncJob, deleted: list[str]) -> dict:
        cfg = self._config()
        state = await self._store.state()
        spec = worker_spec(cfg, state, job, deleted)
        if job.mode == "incremental" and self._can_apply_changes(state):
            spec["since"] = await self._store.changes_since(CHANGES_OVERLAP)
        if spec["since"] is None:
            spec["mode"] = job.mode = "full"
            spec["resume"] = None if self._restart else await self.resumable()
        with cpus.separated(cfg.sync.separate_cpus) as sync_cpus:
            outcome = await self._watch_worker(job, state, spec, sync_cpus)
        return {**outcome, "settings": sync_settings(cfg)}

    async def _watch_worker(self, job: SyncJob, state: Any, spec: dict, sync_cpus: frozenset[int] | None) -> dict:
        """Run the job in the spare (an incremental one) or a fresh worker, and follow it."""
        spare = await self._spare.take() if spec["mode"] == "incremental" else None
        if spare is None:
            await self._spare.discard()  # a full sync's memory peak must not carry an idle spare
        else:
            outcome = await self._follow(job, state, spec, sync_cpus, spare, spare=True)
            if outcome is not None:
                return outcome
            # It died before it said a word (killed while idle; the kernel had not told us yet):
            # it did nothing, so the job runs in a fresh worker.
            log.warning("the spare sync worker ended before its job began (%s); starting a fresh one",
                        exit_reason(spare.returncode))
        return await self._follow(job, state, spec, sync_cpus, await WorkerProcess.spawn(worker_env()))

    async def _follow(self, job: SyncJob, state: Any, spec: dict, sync_cpus: frozenset[int] | None,
                      worker: WorkerProcess, spare: bool = False) -> dict | None:
        """Begin ``worker``'s job and read its messages until it has ended; its outcome. None: a spare
        that ended without a word and was not cancelled (the caller starts a fresh worker)."""
        self._worker = worker
        worker.begin(spec, sync_cpus)
        if self._cancel_requested:  # cancelled while the worker was starting
            worker.terminate(kill_after=CANCEL_GRACE)
        cfg = self._config()
        limit = quiet_limit(cfg.sync.stalled_after, cfg.plex.timeout, cfg.sync.retries)
        watch = asyncio.create_task(worker.kill_if_stuck(limit)) if limit else None
        last: dict = {}
        last_push = 0.0
        heard = False
        try:
            async for msg in worker.messages():
                heard = True
                last = msg if msg["event"] in ("done", "error") else last
                if msg["event"] == "server":
                    self.plex_reachable = True
                    self.section_id = msg.get("section_id")
                    self._check_server(job, state, msg)
                elif msg["event"] == "resumed":
                    job.resumed_from = msg["job_id"]
                    log.info("sync job %d resumes job %d's partial slot (%d tracks)", job.job_id, msg["job_id"],
                             msg["tracks"])
                elif msg["event"] == "progress":
                    job.phase = msg["phase"]
                    job.total = msg.get("total", job.total)
                    job.current = max(job.current, msg.get("current", 0))
                    if time.monotonic() - last_push >= PROGRESS_INTERVAL or job.current == job.total:
                        last_push = time.monotonic()
                        self._publish("sync.progress", job.view())
                elif msg["event"] == "error":
                    if msg.get("unreachable"):
                        self.plex_reachable = False
                    if msg.get("unauthorized"):
                        self.rejected_token = spec["plex"]["token"]
        finally:  # also when reading it failed: its work is lost anyway
            if watch is not None:
                watch.cancel()
            await worker.stop(CANCEL_GRACE)
            self._worker = None
        if worker.stuck_for is not None:
            return {"event": "error", "message": stuck_reason(worker.stuck_for), "returncode": worker.returncode}
        if spare and not heard and not self._cancel_requested:
            return None
        return {**last, "returncode": worker.returncode}

    def _check_server(self, job: SyncJob, state: Any, msg: dict) -> None:
        """A different Plex server: this full sync replaces the old library when it completes.

        Until then the old library keeps answering (library.status says
        ``server_changed``); a failed sync of the new server leaves it in place.
        """
        known = state.plex_server_id
        if known and known != msg["server_id"]:
            log.warning("Plex server changed (%s -> %s): the old library answers until a full sync "
                        "of the new one completes", known, msg["server_id"])
            self.server_changed = True
            if job.trigger != "manual":
                job.trigger = "server_change"
        elif known:
            self.server_changed = False
        self._job_server = (msg["server_id"], msg["server_name"], msg.get("section_id"))

    async def _swap(self, job: SyncJob, done: dict, t0: float) -> None:
        job.phase = "swapping"
        job.mode = done["mode"]  # an incremental job on a different server ran as a full one
        job.added, job.updated, job.removed = done["added"], done["updated"], done["removed"]
        job.skipped = dict(done.get("skipped") or {})
        job.current = job.total = done["track_count"]
        changed = bool(job.added or job.updated or job.removed)
        server_id, server_name, section_id = self._job_server or (None, None, None)
        # A change set applied from notifications alone read only what Plex named: the next
        # incremental sync still reads every change since the last sync that read them all.
        through = None if done.get("notified_only") else job.started_at
        if done.get("applied"):  # written into the live slot, generation and synced_at included
            state = await self._store.record_sync(
                server_id=server_id, server_name=server_name, synced_at=done.get("synced_at"),
                duration_ms=int((time.monotonic() - t0) * 1000), sync_settings=done["settings"],
                changes_through=through, section_id=section_id)
        else:
            state = await self._store.activate_slot(
                done["slot"],
                server_id=server_id,
                server_name=server_name,
                synced_at=now(),
                duration_ms=int((time.monotonic() - t0) * 1000),
                track_count=done["track_count"],
                changed=changed,
                sync_settings=done["settings"],
                changes_through=through,
                section_id=section_id,
            )
        job.phase = "done"
        if job.mode == "full":
            self.last_full_sync = job.started_at
        self.server_changed = False
        if changed:
            self._publish("library.changed", {"generation": state.generation, "added": job.added,
                                              "updated": job.updated, "removed": job.removed})

    async def _finish(self, job: SyncJob, state: str, error: str | None) -> None:
        if state == "succeeded":
            log.info("sync job %d succeeded: +%s ~%s -%s%s", job.job_id, job.added, job.updated, job.removed,
                     f" (skipped: {job.skipped})" if job.skipped else "")
        else:
            log.warning("sync job %d %s: %s", job.job_id, state, error)
        final = replace(job, state=state, error=error, finished_at=now())
        self.unrecorded_error = None
        try:
            if state == "failed":
                await self._store.record_error(error)
            await self._store.save_job(final)
        except StoreError as exc:  # the outcome still reaches clients from memory; the row says "running"
            log.error("recording the end of sync job %d failed: %s", job.job_id, exc)
            self.unrecorded_error = error or str(exc)
        self.job = final
        self._publish("sync.finished", final.view())

