"""Durations: the one grammar of config.yaml and mediasagectl.

A number (decimals allowed) and a unit, ``s``, ``m``, ``h``, ``d`` or ``w``,
case-insensitive, spaces allowed around and between: ``30s``, ``15m``, ``1.5h``,
``7d``, ``2w``. config.yaml's ``sync.interval`` / ``sync.stale_after`` read it (a
bare number there is seconds, as before), and so do mediasagectl's
``--added-after`` / ``--updated-after`` ages.

It lives here, in the client package, because the client imports nothing from
the daemon (so that it stays thin); the daemon's config takes it from here. The
module uses the standard library only, so that import loads nothing else.
"""

from __future__ import annotations

import re

__all__ = ["UNIT_SECONDS", "EXAMPLES", "duration_seconds"]

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EXAMPLES = "30s, 15m, 24h, 7d"  # for messages ("expected a duration like ...")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def duration_seconds(text: str, *, bare_unit: str | None = None) -> float | None:
    """``"1.5h"`` -> 5400.0; None if ``text`` is not a duration.

    A number without a unit is a duration only when ``bare_unit`` names its unit
    (config.yaml: ``"s"``); on the command line ``--added-after 2026`` must not
    quietly mean 2026 seconds ago.
    """
    m = _DURATION.match(text)
    if not m:
        return None
    unit = m.group(2).lower() or bare_unit
    if unit is None:
        return None
    return float(m.group(1)) * UNIT_SECONDS[unit]
