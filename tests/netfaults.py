"""A TCP forwarder that can make its connections go silent, as a dead peer's do.

When Plex's host loses power or a NAT forgets a connection, nothing arrives on
the socket again and nothing says so: no FIN, no RST. `MutingProxy` stands
between a client and a server and, on `mute()`, stops carrying bytes on the
connections open at that moment in both directions while keeping them open;
connections made later are carried as usual (the server is back, or the route).
"""

from __future__ import annotations

import selectors
import socket
import threading


class MutingProxy:
    def __init__(self, host: str, port: int):
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self.answers = 0  # reads carried from the server to a client (the handshake's answer, pongs, ...)
        self._muted: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="muting-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "MutingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for a, b in self._pairs:
            a.close()
            b.close()

    def mute(self) -> None:
        """From now on, the connections open now carry nothing (and stay open)."""
        with self._lock:
            for a, b in self._pairs:
                self._muted.update((a, b))

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        peer: dict[socket.socket, socket.socket] = {}
        while not self._stop.is_set():
            for key, _ in sel.select(0.05):
                sock = key.fileobj
                if sock is self._listener:
                    client, _ = self._listener.accept()
                    server = socket.create_connection(self._target)
                    peer[client], peer[server] = server, client
                    with self._lock:
                        self._pairs.append((client, server))
                    sel.register(client, selectors.EVENT_READ)
                    sel.register(server, selectors.EVENT_READ)
                    continue
                with self._lock:
                    muted = sock in self._muted
                if muted:  # what arrives is left unread: the other side hears nothing
                    sel.unregister(sock)
                    continue
                try:
                    data = sock.recv(65536)
                    if data:
                        peer[sock].sendall(data)
                        self.answers += any(sock is server for _, server in self._pairs)
                        continue
                except OSError:
                    pass
                for end in (sock, peer[sock]):  # one side closed: close the other
                    try:
                        sel.unregister(end)
                    except (KeyError, ValueError):
                        pass
                    end.close()
