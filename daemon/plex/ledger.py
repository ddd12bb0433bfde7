"""Account for every item of a track listing, and check the total against what Plex reports.

Plex's ``totalSize`` counts items; a sync must not trust it blindly (it is absent from
some answers, and it can change while a library is being read), nor trust itself (a
listing that shifted, a page that came back short). `KeyLedger` sees every item of one
listing: items without a ``ratingKey`` are skipped and counted, a key the previous page
already had is dropped and counted (memory stays flat at any library size: a key seen
again further on is caught by the slot writer, whose upsert keeps one row; the sync
worker counts those from the slot's row count). `verify` then compares what was read with every
``totalSize`` Plex gave -- the count before the listing, each page's, the count after --
and raises `PlexCountMismatch` when they disagree or when there is none to compare with.
A sync that fails this check keeps the cache it had. Standard library only.
"""
from __future__ import annotations

import logging
from collections import Counter

from .errors import PlexError

log = logging.getLogger("mediasaged.plex")

NO_RATING_KEY = "no_rating_key"
DUPLICATE_KEY = "duplicate_key"
LOGGED_EXAMPLES = 5  # offenders named in the log, per reason and listing


class PlexCountMismatch(PlexError):
    """What a full listing read does not add up to what Plex says the section holds."""


class ShrinkWatch:
    """A listing Plex shrinks while we page it by offset (it deleted an item): every later item
    moves back by one, and the one at the next page's start falls between two pages, unread.
    `moved` is told each page's ``totalSize`` in turn and says when it is lower than the page
    before's: the caller reads the listing again from its start. A full track listing catches a
    skipped item in its counts (`KeyLedger.verify`); listings without that check (changes, album
    listings) use this. An item added meanwhile moves the later ones forward (read twice, never
    missed); an addition and a deletion between the same two pages leave the total as it was.
    """

    REREADS = 3  # times a listing is read again before `moved` gives up (PlexError)

    def __init__(self, what: str) -> None:
        self.what = what
        self._last: int | None = None
        self.rereads = 0

    def moved(self, total: int | None) -> bool:
        """Whether this page's ``total`` is lower than the page before's (read again from the start)."""
        last, self._last = self._last, total
        if total is None or last is None or total >= last:
            return False
        self.rereads += 1
        if self.rereads > self.REREADS:
            raise PlexError(f"Plex's {self.what} kept changing while they were read ({self.REREADS + 1} "
                            "times): items are being deleted")
        log.info("Plex's %s went from %d to %d while read: reading them again", self.what, last, total)
        self._last = None
        return True


def _describe(row: dict) -> str:
    key = row.get("rating_key") or "(none)"
    return f"ratingKey {key}, {row.get('title', '')!r} by {row.get('artist', '')!r}"


class KeyLedger:
    """Every item of one listing: what was kept, what was skipped and why, Plex's totals."""

    def __init__(self, noun: str = "tracks"):
        self.noun = noun
        self.items = 0
        self.kept = 0
        self._previous: set[str] = set()  # the keys of the page before
        self.skipped: Counter[str] = Counter()
        self.totals: list[tuple[str, int]] = []  # (where Plex said it, totalSize)

    def note_total(self, where: str, total: int | None) -> None:
        if total is not None:
            self.totals.append((where, total))

    def admit(self, rows: list[dict], where: str) -> list[dict]:
        """The rows to keep: keyed, and not on this page or the one before already."""
        self.items += len(rows)
        fresh = []
        page: set[str] = set()
        for row in rows:
            key = row.get("rating_key")
            if not key:
                self._skip(NO_RATING_KEY, row, where)
            elif key in self._previous or key in page:
                self._skip(DUPLICATE_KEY, row, where)
            else:
                page.add(key)
                fresh.append(row)
        self._previous = page
        self.kept += len(fresh)
        return fresh

    def _skip(self, reason: str, row: dict, where: str) -> None:
        self.skipped[reason] += 1
        if self.skipped[reason] <= LOGGED_EXAMPLES:
            what = "without a ratingKey" if reason == NO_RATING_KEY else "listed again"
            log.warning("skipped an item %s in Plex's %s: %s", what, where, _describe(row))
        elif self.skipped[reason] == LOGGED_EXAMPLES + 1:
            log.warning("more %s items in this listing; only the count is kept", reason)

    def verify(self) -> int:
        """Check the listing against Plex's totals; returns the verified total.

        Raises PlexCountMismatch when Plex gave no total at all, when its totals changed
        during the listing, or when the items read (kept + skipped) are not its total."""
        skipped = sum(self.skipped.values())
        read = f"{self.kept} {self.noun}" + (f" (+{skipped} skipped)" if skipped else "")
        if not self.totals:
            raise PlexCountMismatch(
                f"Plex did not say how many {self.noun} the section holds (no totalSize in any "
                f"answer), so the {read} read cannot be verified; the cache keeps its last "
                f"complete state")
        values = {t for _, t in self.totals}
        if len(values) > 1:
            seen = ", ".join(f"{t} {where}" for where, t in _changes(self.totals))
            raise PlexCountMismatch(
                f"Plex's track count changed while the library was being read ({seen}): "
                f"the result can't be trusted; the cache keeps its last complete state and the "
                f"next sync reads it again")
        total = values.pop()
        if self.items != total:
            raise PlexCountMismatch(
                f"read {read} but Plex reports {total} in the section: the listing was "
                f"incomplete or inconsistent; the cache keeps its last complete state")
        return total


def _changes(totals: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The totals where the value changed (first of each run), for a short message."""
    out: list[tuple[str, int]] = []
    for where, t in totals:
        if not out or out[-1][1] != t:
            out.append((where, t))
    return out
