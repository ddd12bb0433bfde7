"""How we reach Plex, against real parts: the requests after connecting (plex/transport.py: urllib3,
not requests) over TLS, through a proxy and from a compressing server, as plexapi's connection
goes; and one CA bundle for every client of the daemon (plex/cabundle.py). The emulator serves
https with a self-signed certificate (tests/fixtures/tls); the proxy is a forwarding one on a
socket."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import urllib3

from mediasaged.plex.client import PlexLibrary
from mediasaged.plex.errors import PlexError, PlexUnreachable, connection_reason
from mediasaged.plex.transport import Transport, on_this_machine, plex_session
from tests.emulator import PlexEmulator, generate_library
from tests.emulator.fixtures import EMULATOR_TOKEN
from tests.mirror import assert_mirror, cached_library, expected_library
from tests.test_plex_events import finished_event_job

pytestmark = pytest.mark.timeout(30)
TLS = Path(__file__).parent / "fixtures" / "tls"  # CN 127.0.0.1, valid until 2126 (README there)


@pytest.fixture
def tls_emulator():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
    with PlexEmulator(generate_library(300, seed=3), token=EMULATOR_TOKEN, tls=context) as emu:
        yield emu


def read_through(emu: PlexEmulator, **kw) -> None:
    """Connect (plexapi, requests), then one request in sequence and four on fetch threads (the transport)."""
    with PlexLibrary.connect(emu.url, emu.token, "Music", timeout=5, retries=0, concurrent_pages=3, **kw) as p:
        assert p.track_count() == len(emu.library.tracks)
        p.COUNT_BATCH = 10
        keys = sorted(emu.library.tracks, key=int)[:40]
        assert sorted(p.tracks_present(keys), key=int) == keys


def test_https_without_verification(tls_emulator):
    read_through(tls_emulator, verify_ssl=False)
    assert sum("/library/metadata/" in line for line in tls_emulator.request_log) == 4


def test_https_verified_against_a_ca_bundle_from_the_environment(tls_emulator, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(TLS / "cert.pem"))
    read_through(tls_emulator, verify_ssl=True)
    assert sum("/library/metadata/" in line for line in tls_emulator.request_log) == 4


def test_https_with_an_unknown_certificate_says_how_to_accept_it(tls_emulator, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(PlexUnreachable) as ei:
        read_through(tls_emulator, verify_ssl=True)
    assert "certificate verification failed" in str(ei.value) and "plex.verify_ssl: false" in str(ei.value)


class _Forward(BaseHTTPRequestHandler):
    """A forwarding HTTP proxy: the absolute URI of each GET is fetched (directly) and answered back."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.server.credentials and self.headers.get("Proxy-Authorization") != self.server.credentials:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.seen.append(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "proxy-connection")}
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with direct.open(urllib.request.Request(self.path, headers=headers), timeout=5) as resp:
                status, answer_headers, body = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, answer_headers, body = exc.code, exc.headers, exc.read()
        self.send_response(status)
        for name, value in answer_headers.items():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def forwarding_proxy(user: str | None = None, password: str = ""):
    """A proxy on a socket: yields (its URL, with the credentials if any; the URIs it forwarded).
    With ``user``, a request without their Basic Proxy-Authorization is answered 407."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
    server.seen = []
    server.credentials = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    login = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@" if user else ""
    try:
        yield f"http://{login}127.0.0.1:{server.server_address[1]}", server.seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("form", ["plain", "login", "no scheme"])
def test_every_request_goes_through_the_proxy_of_the_environment(plex_emulator, monkeypatch, form):
    """``http_proxy`` takes every request there, plexapi's and the transport's: credentials in its
    URL are sent to the proxy (Basic, as requests sends them), and ``host:port`` without a scheme
    is an http proxy, for both."""
    with forwarding_proxy(*(("mediasage", "p@ss:w0rd") if form == "login" else ())) as (proxy, seen):
        monkeypatch.setenv("http_proxy", proxy.removeprefix("http://") if form == "no scheme" else proxy)
        monkeypatch.setenv("no_proxy", "")
        read_through(plex_emulator)
    paths = [urlsplit(uri).path for uri in seen]
    assert "/library/sections" in paths  # plexapi's connection
    assert paths.count(f"/library/sections/{plex_emulator.library.section_key}/all") == 1  # the count, in sequence
    assert sum(p.startswith("/library/metadata/") for p in paths) == 4  # the fetch threads'
    assert len(seen) == plex_emulator.request_count


def test_the_transport_itself_refuses_an_unknown_certificate(tls_emulator, monkeypatch):
    """Its own verification, not only plexapi's connection's: a transport made like a verifying session."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    transport = Transport.like(plex_session(tls_emulator.url, True), tls_emulator.url, connections=1)
    with pytest.raises(urllib3.exceptions.HTTPError) as ei:
        transport.get(tls_emulator.url + "/identity", headers={}, params=None, timeout=5)
    assert "certificate verification failed" in connection_reason(ei.value, 5)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(TLS / "cert.pem"))
    transport = Transport.like(plex_session(tls_emulator.url, True), tls_emulator.url, connections=1)
    assert transport.get(tls_emulator.url + "/identity", headers={}, params=None, timeout=5).status == 200


@pytest.mark.parametrize("where", ["REQUESTS_CA_BUNDLE", "system store"])
async def test_the_daemon_trusts_a_private_ca_in_every_client(tls_emulator, daemon_factory, tmp_path, where):
    """A Plex behind a private CA, named by ``$REQUESTS_CA_BUNDLE`` or installed in the system's store
    (here ``$SSL_CERT_FILE``, OpenSSL's own variable): the sync worker (plexapi, the transport), the
    notification socket (wss) and the notified items' fetch (urllib) all verify against it
    (plex/cabundle.py). A notified edit is then applied item by item, no listing read."""
    emu = tls_emulator
    cert = str(TLS / "cert.pem")
    env = ({"REQUESTS_CA_BUNDLE": cert, "CURL_CA_BUNDLE": ""} if where == "REQUESTS_CA_BUNDLE" else
           {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": "", "SSL_CERT_FILE": cert, "SSL_CERT_DIR": str(tmp_path)})
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"plex_events": True}, env=env)
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    assert await asyncio.to_thread(emu.wait_for_ws_clients, 1, 20), daemon.log()
    emu.request_log.clear()
    key = sorted(emu.library.tracks, key=int)[0]
    emu.edit_track(key, title="Edited over TLS")

    job = await finished_event_job(daemon)

    assert (job["state"], job["updated"]) == ("succeeded", 1), (job, daemon.log())
    assert not [p for p in emu.request_log if "/all" in p], "fetched item by item, not by a fallback sync"
    assert (await daemon.call("tracks.get", rating_keys=[key]))["tracks"][0]["title"] == "Edited over TLS"


async def test_a_compressing_server_is_read_exactly_and_asked_to_compress_unless_on_this_machine(daemon_factory):
    """Plex compresses an answer for a client that asks (PlexConnect#293). The transport asks unless
    Plex is on this machine (bytes cost nothing there; compressing and decompressing them cost CPU
    on both sides), and decodes what comes compressed. A full and an incremental sync of a
    compressing server are exact."""
    with PlexEmulator(generate_library(600, seed=5), token=EMULATOR_TOKEN, gzip=True) as emu:
        listing = f"{emu.url}/library/sections/{emu.library.section_key}/all?type=10"
        session = plex_session(emu.url, True)
        for compressed, encodings in ((None, {None}), (False, {None}), (True, {"gzip", "deflate"})):
            answer = Transport.like(session, emu.url, connections=1, compressed=compressed).get(
                listing, headers={"X-Plex-Token": emu.token}, params=None, timeout=5)
            assert answer.headers.get("Content-Encoding") in encodings, compressed
            assert answer.body.startswith(b"<?xml") and b"</MediaContainer>" in answer.body
        daemon = await daemon_factory(plex_url=emu.url, token=emu.token)
        assert (await daemon.sync())["state"] == "succeeded", daemon.log()
        for key in sorted(emu.library.tracks, key=int)[:30]:
            emu.edit_track(key, title=f"Compressed {key}")
        job = await daemon.sync(mode="incremental")
        assert (job["state"], job["updated"]) == ("succeeded", 30), (job, daemon.log())
        assert_mirror(await cached_library(daemon), expected_library(emu))


@pytest.mark.parametrize("url, here", [
    ("http://127.0.0.1:32400", True), ("http://127.8.9.10:32400", True), ("http://[::1]:32400", True),
    ("http://localhost:32400", True), ("https://LocalHost", True), ("http://192.168.1.20:32400", False),
    ("https://192-168-1-20.0123456789abcdef.plex.direct:32400", False), ("http://plex:32400", False)])
def test_which_servers_are_on_this_machine(url, here):
    assert on_this_machine(url) is here


def test_a_socks_proxy_is_refused_by_name():
    """urllib3 speaks to http and https proxies only: a SOCKS one in the environment fails the sync
    with a message naming it, not with an internal error."""
    session = plex_session("http://127.0.0.1:32400", True)
    session.proxies = {"http": "socks5://someone:secret@127.0.0.1:1080"}
    with pytest.raises(PlexError) as ei:
        Transport.like(session, "http://127.0.0.1:32400", connections=1)
    assert "socks5 proxy" in str(ei.value) and "secret" not in str(ei.value)
