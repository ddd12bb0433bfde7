"""Which certificates an ``https://`` Plex URL is verified against: one rule for every client.

Three clients talk to Plex: the sync worker (plexapi's requests session and the urllib3 pool
after it, `transport.py`), the daemon's targeted fetches (urllib, `items.ItemFetcher`) and its
notification socket (websocket-client, `events.py`). All three verify against the CA bundle the
environment names the way requests reads one (``$REQUESTS_CA_BUNDLE``, else
``$CURL_CA_BUNDLE``: a file, or a directory of hashed certificates); else against the store
Python's own clients use, OpenSSL's default (``$SSL_CERT_FILE`` and ``$SSL_CERT_DIR`` honoured:
where a private CA installed on the system is). Only where the system has no store at all does
the worker fall back to certifi's, requests' default. So a Plex behind a private CA is trusted,
or not, by all of them alike. Standard library only (the daemon process imports it).
"""
from __future__ import annotations

import os
import ssl


def ca_bundle() -> str | None:
    """The CA bundle the environment names (a file or a directory), or None: the client's default."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def worker_store() -> str | bool:
    """What the sync worker verifies against (requests' and urllib3's ``verify``): the bundle the
    environment names; else the system's store as Python finds it (its default file, else its
    directory); else True: certifi's."""
    bundle = ca_bundle()
    if bundle is not None:
        return bundle
    paths = ssl.get_default_verify_paths()
    if paths.cafile and os.path.isfile(paths.cafile):
        return paths.cafile
    if paths.capath and os.path.isdir(paths.capath):
        return paths.capath
    return True


def _locations(bundle: str) -> dict[str, str]:
    return {"capath": bundle} if os.path.isdir(bundle) else {"cafile": bundle}


def ssl_context(verify: bool) -> ssl.SSLContext | None:
    """urllib's context for an https URL: unverified, the bundle's, or None (Python's default)."""
    if not verify:
        return ssl._create_unverified_context()  # noqa: SLF001 - as configured (plex.verify_ssl: false)
    bundle = ca_bundle()
    return None if bundle is None else ssl.create_default_context(**_locations(bundle))


def websocket_sslopt(verify: bool) -> dict | None:
    """websocket-client's ``sslopt`` for a wss URL: unverified, the bundle's, or None (its default)."""
    if not verify:
        return {"cert_reqs": ssl.CERT_NONE}
    bundle = ca_bundle()
    if bundle is None:
        return None
    return {"ca_cert_path": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
