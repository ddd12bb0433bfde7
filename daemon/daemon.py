"""The daemon's lifecycle: startup, main loop, shutdown — plain awaits in order.

Signal handlers only set flags and wake the main loop (as uvicorn does); the
loop then reloads config, pings the systemd watchdog, starts scheduled syncs
and syncs for changes Plex notified, and on a stop request falls through to an
orderly shutdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
import socket
import time
from pathlib import Path

from . import systemd
from .config import Config, ConfigError, load_config
from .rpc.methods import build_methods
from .plex.events import NotificationListener
from .rpc.dispatch import CallContext, dispatch, jsonrpc_methods
from .rpc.server import Connection, Server, SocketError, bind_unix_socket
from .store import Store, StoreError
from .sync.jobs import Syncer
from .sync.owed import RetryPlan
from .timeutil import now

log = logging.getLogger("mediasaged")

TICK = 1.0  # seconds between main-loop housekeeping passes
PLEX_QUIET = 2.0  # seconds Plex must be quiet after a change it notified before the sync starts
# Notified entries kept for one sync. Past this many (Plex scanning a large new folder sends
# one per item), the sync reads every change instead: the cheaper tool for that much, and
# the entries stop taking memory.
MAX_NOTIFIED = 10_000


class StartupError(Exception):
    """The daemon cannot start (exit 3)."""


class Daemon:
    """Owns the store, the syncer and the server; the `rpc.dispatch.Services` RPC handlers see."""

    def __init__(self, config: Config, config_path: str | None):
        """``config_path``: the ``--config`` argument (None: as load_config resolves it)."""
        self.config = config
        self.config_path = config_path
        self.store = Store(config.cache.path, group=config.cache.group)
        d = config.daemon
        self.server = Server(self._dispatch, allowed_uids=d.allowed_uids, read_only_uids=d.read_only_uids,
                             heavy_slots=self.store.readers, max_connections=d.max_connections,
                             max_connections_per_uid=d.max_connections_per_uid)
        self.syncer = Syncer(self.store, lambda: self.config, self.server.publish)
        self.syncer.on_finished = self._observe_finished_job
        self._methods = jsonrpc_methods(build_methods())
        self.started_at = now()
        self.socket_path: Path = config.daemon.socket
        self._owns_socket_file = False
        self._should_exit = False
        self._should_reload = False
        self._wake: asyncio.Event | None = None
        self._status = ""
        self._listener: NotificationListener | None = None
        self._plex_changed_at: float | None = None  # monotonic time of the last change Plex notified
        self._notified: list[dict] = []  # timeline entries Plex sent since the last notified sync
        self._catch_up = False  # the next notified sync reads every change (socket was down, or past MAX_NOTIFIED)
        self.retry = RetryPlan()  # the owed sync (README, "Recovering by itself")
        self._retry_mode = "auto"
        self._listener_wanted = False  # follow Plex once no sync is still connecting with an untried token
        self._startup_listener: NotificationListener | None = None  # its first connection needs no catch-up
        self._startup_listener_due = False  # the listener started next is the startup's

    # -- what RPC handlers use --------------------------------------------

    def next_sync_at(self) -> int | None:
        """When the schedule or the retry of an owed sync starts the next sync (None: neither)."""
        times = [t for t in (self.scheduled_at(), self.retry.retry_at) if t is not None]
        return int(min(times)) if times else None

    def scheduled_at(self) -> float | None:
        """When the schedule's next sync (a full one) is due: ``sync.interval`` after the later of
        the last full sync that succeeded, the last full sync attempted and the daemon's start.
        Incremental syncs do not put it off: it is the safety net for what they cannot see."""
        interval = self.config.sync.interval
        if interval is None:
            return None
        return max(self.syncer.last_full_sync or 0, self.syncer.last_full_attempt or 0, self.started_at) + interval

    def syncs_on_its_own(self) -> bool:
        """Whether the daemon starts syncs by itself at all (and so retries owed ones)."""
        return self.config.sync.interval is not None or self.config.sync.stale_after is not None

    async def _dispatch(self, line: str, conn: Connection) -> bytes | None:
        return await dispatch(line, self._methods, CallContext(self, conn),
                              max_response=self.config.daemon.max_response_mib << 20)

    # -- lifecycle ------------------------------------------------------------

    async def run(self) -> int:
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_exit)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        try:
            await self.startup()
        except StartupError as exc:
            log.error("%s", exc)
            await self.store.close()
            return 3
        try:
            await self.main_loop()
        finally:
            await self.shutdown()
        return 0

    def _request_exit(self) -> None:
        self._should_exit = True
        self._wake.set()

    def _request_reload(self) -> None:
        self._should_reload = True
        self._wake.set()

    async def startup(self) -> None:
        for warning in self.config.warnings:
            log.warning("%s", warning)
        try:
            await self.store.open()
        except StoreError as exc:
            raise StartupError(f"database unusable: {exc}") from None
        self.syncer.last_full_sync = await self.store.last_full_sync()
        # whose notifications are the cache's from the start, not only once a sync has run
        self.syncer.section_id = (await self.store.state()).plex_section_id
        interrupted = await self.store.fail_interrupted_jobs("interrupted: the daemon stopped during the sync")
        if interrupted:
            log.warning("marked %d sync job(s) left running by a previous daemon as failed", interrupted)
        activated = systemd.listen_fds()
        if activated:
            sock = activated[0]
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise StartupError("the socket passed by the service manager is not a Unix stream socket")
            sock.setblocking(False)
            self.socket_path = Path(socket_name(sock))
            log.info("using socket %s passed by the service manager", self.socket_path)
        else:
            try:
                sock = bind_unix_socket(self.socket_path, self.config.daemon.socket_mode)
            except SocketError as exc:
                raise StartupError(str(exc)) from None
            self._owns_socket_file = True
        await self.server.start(sock)
        # Everything made so far lives as long as the daemon: keep it out of the
        # garbage collector's way, so requests do not pay for collecting it.
        gc.collect()
        gc.freeze()
        log.info("mediasaged listening on %s (cache %s)", self.socket_path, self.config.cache.path)
        systemd.ready()
        await self._start_owed_sync()
        self.syncer.keep_spare()  # a sync worker with its imports done, for the next incremental sync
        self._follow_plex(at_startup=True)

    def _follow_plex(self, at_startup: bool = False) -> None:
        """(Re)start following Plex's notifications if ``sync.plex_events`` is on.

        The new listener starts at once, or -- while a sync is still connecting
        -- once it has: a token Plex rejects is then asked about once, not twice.
        """
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self._listener_wanted = self.config.sync.plex_events
        self._startup_listener_due = at_startup and self.config.sync.plex_events
        self._start_listener_when_due()

    def _start_listener_when_due(self) -> None:
        if not self._listener_wanted or self._listener is not None or self.syncer.connecting \
                or self.retry.token_rejected:
            return
        self._listener_wanted = False
        loop = asyncio.get_running_loop()
        p = self.config.plex
        listener = self._listener = NotificationListener(
            p.url, p.token, verify_ssl=p.verify_ssl, timeout=p.timeout,
            on_change=lambda entries: loop.call_soon_threadsafe(self._plex_changed, entries),
            section_id=lambda: self.syncer.section_id,
            on_connect=lambda: loop.call_soon_threadsafe(self._plex_answered, listener),
            on_rejected=lambda: loop.call_soon_threadsafe(self._plex_rejected_token, listener),
            on_refused=lambda: loop.call_soon_threadsafe(self._plex_refused_notifications, listener))
        if self._startup_listener_due:
            self._startup_listener, self._startup_listener_due = listener, False
        listener.start()

    def _plex_answered(self, listener: NotificationListener) -> None:
        """Plex's notifications connected: an owed sync that found Plex unreachable runs now. What
        Plex changed while nobody followed it was not notified: unless this is the startup's
        first connection (``sync.stale_after`` decides there), it is read -- after a drop, a
        reload that replaced the listener, notifications turned on by a reload (the next
        notified sync is an incremental one, started as if Plex had notified a change)."""
        if listener is not self._listener:  # a reload replaced it meanwhile
            return
        if self.syncer.plex_reachable is not True:
            self.syncer.plex_reachable = True
            if not self.syncer.running and self.retry.plex_is_back(now()):
                log.info("Plex answers again: starting the owed sync now")
                self._wake.set()
                return
        at_startup = listener is self._startup_listener and listener.connections == 1
        if not at_startup and self.retry.retry_at is None:  # (an owed sync to come reads every change)
            log.info("following Plex's notifications again: reading what changed while they were not followed")
            self._catch_up = True
            self._plex_changed([])

    def _plex_rejected_token(self, listener: NotificationListener) -> None:
        """The notification socket got HTTP 401: say so, and leave retries to the interval."""
        if listener is not self._listener:  # a reload replaced it meanwhile
            return
        self._listener = None
        self._listener_wanted = True  # again after a reload that changes the token, or a successful sync
        if self.syncs_on_its_own() and not self.syncer.running:
            self.retry.failed("Plex rejected the token (HTTP 401)", now(), self.config.sync.interval,
                              unauthorized=True)

    def _plex_refused_notifications(self, listener: NotificationListener) -> None:
        """Plex serves the token the library but not its notifications (not the owner's token):
        syncs go on as scheduled; following Plex waits for a reload (which may change the token)."""
        if listener is self._listener:
            self._listener = None

    def _plex_changed(self, entries: list[dict]) -> None:
        """Plex notified changes: they are applied once Plex has been quiet for PLEX_QUIET."""
        self._plex_changed_at = time.monotonic()
        if not self._catch_up:  # (a sync that reads every change needs no entries)
            self._notified.extend(entries)
            self.syncer.deleted_on_plex.update(e["item_id"] for e in entries if e["type"] == 10 and e["state"] == 9)
            if len(self._notified) > MAX_NOTIFIED:
                log.info("Plex notified more than %d changes: the next sync reads every change instead",
                         MAX_NOTIFIED)
                self._catch_up = True
                self._notified = []
                self.syncer.deleted_on_plex.clear()  # its count check finds them
        asyncio.get_running_loop().call_later(PLEX_QUIET + 0.01, self._wake.set)

    def is_stale(self, state) -> bool:
        """Never synced, or synced longer ago than ``sync.stale_after``."""
        stale_after = self.config.sync.stale_after
        return state.synced_at is None or (stale_after is not None and now() - state.synced_at > stale_after)

    async def _start_owed_sync(self) -> None:
        """At startup: the sync owed for an empty or stale cache, or for a failed last sync."""
        if self.store.moved_aside is not None:  # a corrupt file was replaced by an empty cache
            log.warning("rebuilding the cache (the old file is %s): starting a full sync", self.store.moved_aside)
            await self.syncer.start("full", "startup")
            return
        if not self.syncs_on_its_own():
            return
        state = await self.store.state()
        if self.config.sync.stale_after is not None and self.is_stale(state):
            reason = "the cache is empty" if state.synced_at is None else "the cache is stale"
        elif await self.syncer.resumable() is not None:  # auto then runs it as a full sync that resumes
            reason = "a full sync was cut short"
        elif state.last_error:
            reason = f"the last sync failed: {state.last_error}"
        else:
            return
        log.info("%s: starting a sync", reason)
        self.retry.owe(reason, now())
        await self._start_retry()

    async def _start_retry(self) -> None:
        self.retry.retry_at = None  # the job's end schedules the next one, if any
        await self.syncer.start(self._retry_mode, "startup")

    def _observe_finished_job(self, job) -> None:
        """Feed a finished job's outcome to the retry plan (before readers see it end)."""
        interval = self.config.sync.interval
        if job.state == "succeeded":
            if self.retry.token_rejected:
                self._listener_wanted = self.config.sync.plex_events  # the token works again
            self.retry.settled()
        elif job.state == "failed" and self.syncs_on_its_own():
            # A 401 to a token a reload has replaced meanwhile says nothing about the new one.
            rejected = self.syncer.rejected_token is not None and self.syncer.rejected_token == self.config.plex.token
            self.retry.failed(job.error or "the sync failed", now(), interval, unauthorized=rejected,
                              attempted_at=job.started_at)
            if self.syncer.rejected_token is not None and not rejected:
                self.retry.retry_at = now()
            self._retry_mode = "full" if job.mode == "full" else "auto"
            when = "after the token changes" if self.retry.retry_at is None else \
                f"in {self.retry.retry_at - now():.0f} s"
            log.info("the owed sync will be retried %s", when)
        elif job.state == "cancelled":
            self.retry.postpone(now(), interval)

    async def main_loop(self) -> None:
        watchdog = systemd.watchdog_interval()
        last_ping = 0.0
        while not self._should_exit:
            try:
                await asyncio.wait_for(self._wake.wait(), min(TICK, watchdog or TICK))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self._should_exit:
                break
            if self._should_reload:
                self._should_reload = False
                self.reload()
            if watchdog and time.monotonic() - last_ping >= watchdog:
                systemd.watchdog_ping()
                last_ping = time.monotonic()
            try:
                await self._housekeeping()
            except StoreError as exc:  # e.g. a full disk: keep serving, say why
                log.error("%s", exc)

    async def _housekeeping(self) -> None:
        self._start_listener_when_due()
        if not self.syncer.running and self.store.wal_removed():
            log.error("the write-ahead log %s-wal was removed while in use: saving it and reopening the cache",
                      self.store.path)
            await self.store.recover_wal()
        state = await self.store.state()
        scheduled = self.scheduled_at()
        if scheduled is not None and now() >= scheduled and not self.syncer.running:
            # Full: the safety net for what incremental syncs cannot see (a rating
            # or play count Plex may not timestamp, an edit missed while down).
            self.retry.retry_at = None  # this is the attempt; its end schedules the next, if any
            await self.syncer.start("full", "schedule")
        if self.retry.due(now()) and not self.syncer.running:
            await self._start_retry()
        changed = self._plex_changed_at
        if changed is not None and time.monotonic() - changed >= PLEX_QUIET and not self.syncer.running:
            self._plex_changed_at = None  # changes notified from here on get a sync of their own
            notified, self._notified = self._notified, []
            catch_up, self._catch_up = self._catch_up, False
            await self.syncer.start("auto", "plex_event", notified=None if catch_up else notified)
        progress = self.syncer.progress()
        if progress:
            of = f" / {progress['total']:,}" if progress["total"] else ""
            status = f"Syncing {progress['current']:,}{of} ({progress['phase']})"
        elif state.synced_at is None:
            status = "Not synced"
        else:
            status = f"Library: {state.track_count:,} tracks"
        if status != self._status:
            self._status = status
            systemd.status(status)

    def reload(self) -> None:
        """SIGHUP: take the new config, or keep the old one if it is invalid."""
        systemd.reloading()
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload: config %s is invalid, keeping the current one:", self.config.source or "./config.yaml")
            for problem in exc.problems:
                log.error("  %s", problem)
            systemd.ready()
            return
        old = self.config
        for key, before, after in (("cache.path", old.cache.path, new.cache.path),
                                   ("cache.group", old.cache.group, new.cache.group),
                                   ("daemon.socket", old.daemon.socket, new.daemon.socket),
                                   ("daemon.socket_mode", old.daemon.socket_mode, new.daemon.socket_mode)):
            if before != after:
                log.warning("reload: %s changed; it takes effect at the next restart", key)
        self.config = dataclasses.replace(
            new,
            cache=old.cache,
            daemon=dataclasses.replace(new.daemon, socket=old.daemon.socket, socket_mode=old.daemon.socket_mode),
        )
        self.server.configure(new.daemon.allowed_uids, new.daemon.read_only_uids,
                              new.daemon.max_connections, new.daemon.max_connections_per_uid)
        if old.plex.token != new.plex.token:
            self.retry.token_changed(now())  # a sync owed for a rejected token is tried at once
        if (old.plex, old.sync.plex_events) != (new.plex, new.sync.plex_events):
            self._follow_plex()
        logging.getLogger().setLevel(new.daemon.log_level.upper())
        for warning in new.warnings:
            log.warning("%s", warning)
        log.info("reloaded config from %s", new.source or "defaults")
        systemd.ready()

    async def shutdown(self) -> None:
        systemd.stopping()
        log.info("stopping")
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            await asyncio.to_thread(listener.join)
        await self.syncer.shutdown()
        await self.server.close()
        await self.store.close()
        if self._owns_socket_file:
            self.socket_path.unlink(missing_ok=True)
        log.info("stopped")


def socket_name(sock: socket.socket) -> str:
    name = sock.getsockname()
    return name if isinstance(name, str) else name.decode(errors="replace")
