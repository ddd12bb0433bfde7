"""GET requests to one Plex server: urllib3's connection pool, without requests' work per request.

plexapi connects through a ``requests`` session (`plex_session`: it needs one). Every
request after that -- a listing's pages, the batched metadata of an incremental sync --
goes through a `Transport` made `like` that session: the same proxy, the same TLS
verification, on urllib3, which is what requests itself sends them with. requests adds
~0.3-0.5 ms of CPU to each request (merging the session's settings, hooks, cookies,
reading the body in 10 KB pieces); an incremental sync of 1% of a 100k library makes ~70
requests on the worker's one CPU, ~18 ms of it (docs/PERFORMANCE.md).

A `Transport` is safe to share between threads (urllib3's pool is): the sync's fetch
threads and its main thread take connections from one pool.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Mapping, NamedTuple
from urllib.parse import urlencode, urlsplit

import requests
import urllib3

from .cabundle import worker_store
from .errors import PlexError
from .redact import safe_url

# Like requests, a compressed answer is asked for and decoded (XML shrinks ~10x on the wire),
# except from a server on this machine: there the bytes cost nothing, and compressing them costs
# Plex's CPU and decompressing ours. Against a compressing emulator on loopback, asking for it
# made a full sync of 100k tracks ~9% slower and the 1% incremental case ~40% (docs/PERFORMANCE.md).
_COMPRESSED = {"Accept-Encoding": "gzip, deflate", "Accept": "*/*"}
_PLAIN = {"Accept-Encoding": "identity", "Accept": "*/*"}
# No retries of its own (`PlexLibrary._fetch` retries what is worth it); redirects followed as
# requests follows them for a GET.
_RETRIES = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=30, raise_on_redirect=True)


def plex_session(url: str, verify: bool | str) -> requests.Session:
    """The ``requests`` session plexapi connects to the Plex server at ``url`` with, the environment
    read once.

    requests reads the proxy variables (``*_proxy``, ``no_proxy``) and the CA-bundle ones
    (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``; the store is chosen by `cabundle.worker_store`)
    again for every request: ~0.3 ms of a
    request's ~0.9 ms here. Every request goes to this one server, so they are read here
    as requests reads them for its URL, and the session is told not to read them again
    (`Transport.like` takes them from it). ``~/.netrc`` is not read: Plex authenticates by
    token, in a header."""
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(url))  # no_proxy honoured
    if verify is True:
        verify = worker_store()  # (the rule every client of ours follows, `cabundle.py`)
    session.verify = verify
    return session


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


class Transport:
    """GETs to one server through a urllib3 pool of up to ``connections`` kept-alive connections.

    `get` raises ``urllib3.exceptions.HTTPError`` (its subclasses name the cause: a refused
    connection, a timeout, TLS, a connection dropped in an answer or one shorter than its
    Content-Length), which `errors.connection_reason` reads as it reads requests' errors."""

    def __init__(self, pool: urllib3.PoolManager, *, compressed: bool):
        self._pool = pool
        self._headers = _COMPRESSED if compressed else _PLAIN

    @classmethod
    def like(cls, session: requests.Session, url: str, *, connections: int,
             compressed: bool | None = None) -> "Transport":
        """A transport with ``session``'s proxy for ``url`` and its TLS verification (`plex_session`).
        ``compressed``: ask for compressed answers (None: unless the server is on this machine,
        `on_this_machine`)."""
        if compressed is None:
            compressed = not on_this_machine(url)
        scheme = urlsplit(url).scheme
        proxy = session.proxies.get(scheme) or session.proxies.get("all")
        verify = session.verify
        tls: dict = {}
        if scheme == "https":
            if verify is False:
                tls = {"cert_reqs": "CERT_NONE", "assert_hostname": False}
            else:
                bundle = verify if isinstance(verify, str) else requests.certs.where()
                where = "ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"
                tls = {"cert_reqs": "CERT_REQUIRED", where: bundle}
        options = dict(num_pools=2, maxsize=max(1, connections), block=False, retries=_RETRIES, **tls)
        if not proxy:
            return cls(urllib3.PoolManager(**options), compressed=compressed)
        proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")  # http_proxy=host:port, as requests
        if urlsplit(proxy).scheme not in ("http", "https"):
            raise PlexError(f"the proxy {safe_url(proxy)} (http_proxy, https_proxy or all_proxy) is a "
                            f"{urlsplit(proxy).scheme} proxy: only http and https proxies are supported")
        # a proxy's credentials in its URL go as Proxy-Authorization, as requests sends them
        user, password = requests.utils.get_auth_from_url(proxy)
        if user:
            options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}")
        return cls(urllib3.ProxyManager(proxy, **options), compressed=compressed)

    def get(self, url: str, *, headers: Mapping[str, str], params: Mapping[str, str] | None,
            timeout: float) -> Answer:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        resp = self._pool.request("GET", url, headers={**self._headers, **headers},
                                  timeout=urllib3.Timeout(connect=timeout, read=timeout))
        return Answer(resp.status, resp.headers, resp.data)

    def close(self) -> None:
        self._pool.clear()


def on_this_machine(url: str) -> bool:
    """Whether ``url``'s host is a loopback address or ``localhost`` (a Plex on this machine)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name
        return False
