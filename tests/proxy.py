"""A TCP proxy on loopback that cuts any connection after it has carried N bytes upstream.

Stands in for a vCenter (or a network) that fails in the middle of an upload.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class CuttingProxy:
    def __init__(self, upstream: tuple[str, int], cut_after: int, dead_after_cut: bool = False) -> None:
        """``dead_after_cut``: once a connection is cut, every new one is closed at once (the
        network stays down, so cleanup calls fail too)."""
        self.upstream = upstream
        self.cut_after = cut_after
        self.dead_after_cut = dead_after_cut
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            if self.dead_after_cut and self.cuts:
                client.close()
                continue
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        carried = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                carried += len(data)
                if counted and carried > self.cut_after:
                    self.cuts += 1
                    break
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def start(self) -> CuttingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()


@contextmanager
def cutting_proxy(upstream: tuple[str, int], cut_after: int, dead_after_cut: bool = False) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(upstream, cut_after, dead_after_cut).start()
    try:
        yield proxy
    finally:
        proxy.stop()
