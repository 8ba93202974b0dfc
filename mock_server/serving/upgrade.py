"""A request that asks to switch protocols (the `/market-data` websocket) runs on a thread of its own.

The app gets the raw, blocking socket as `werkzeug.socket`, the key through which flask-sock (simple-websocket)
takes over a connection, and keeps the thread for the whole websocket session; a websocket sender then writes
with one `sendall` per wake-up, whatever the event loop is doing. When the session ends, flask-sock raises
ConnectionError instead of answering, as it does under Werkzeug. A request that was not a websocket after all
gets its answer on the socket, then the connection closes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from mock_server.serving import wsgi
from mock_server.serving.wsgi import ParsedRequest, WsgiApp

log = logging.getLogger("tradefence.server")
_LINGER_SECONDS = 1.0


class _SocketControls:
    """`ResponseControls` on a thread that owns its socket: waiting blocks no one else."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def delay(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))

    def drop(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)


def start_upgrade(app: WsgiApp, request: ParsedRequest, server: tuple[str, int], peer: tuple[str, int],
                  sock: socket.socket) -> threading.Thread:
    thread = threading.Thread(target=_serve, args=(app, request, server, peer, sock), name="upgrade", daemon=True)
    thread.start()
    return thread


def _serve(app: WsgiApp, request: ParsedRequest, server: tuple[str, int], peer: tuple[str, int],
           sock: socket.socket) -> None:
    env = wsgi.environ(request, server, peer, _SocketControls(sock))
    env["werkzeug.socket"] = sock
    try:
        answer = wsgi.call(app, env)
        try:
            sock.sendall(wsgi.head(answer, method=request.method, keep_alive=False)
                         + (answer.body if request.method != "HEAD" else b""))
        finally:
            answer.close()
    except (ConnectionError, OSError):
        pass  # a websocket session's normal end, or a client gone
    except Exception:
        log.exception("the app failed on upgrade request %s", request.path.decode("latin-1"))
    finally:
        _linger_close(sock)


def _linger_close(sock: socket.socket) -> None:
    """Send FIN, then read until the client closes too (briefly): closing with the client's last bytes unread
    (its reply to our close frame, say) would answer them with a reset, and the client would see a broken pipe
    instead of a clean close."""
    deadline = time.monotonic() + _LINGER_SECONDS
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(4096):
                break
    sock.close()
