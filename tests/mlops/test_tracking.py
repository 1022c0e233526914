"""MLflow helpers of `v2v ui`: the classic experiment page, waiting until the server answers."""

from __future__ import annotations

import http.server
import socket
import threading
import time

from v2v.mlops.tracking import classic_view_url, wait_for_server


def test_the_ui_opens_the_classic_experiment_view() -> None:
    base = "http://127.0.0.1:5000"
    assert classic_view_url(base, "3") == f"{base}/#/experiments/3/runs?workflowType=machine_learning"
    assert classic_view_url(base, None) == f"{base}/#/experiments?workflowType=machine_learning"


def test_wait_for_server_returns_when_it_answers_and_gives_up_when_it_died() -> None:
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert wait_for_server(f"http://127.0.0.1:{server.server_address[1]}", 10)
    finally:
        server.shutdown()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens once the socket closes
    started = time.monotonic()
    assert not wait_for_server(f"http://127.0.0.1:{closed}", 60, alive=lambda: time.monotonic() - started < 1)
    assert time.monotonic() - started < 10  # a dead server is not waited for
