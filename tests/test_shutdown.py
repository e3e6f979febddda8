"""``leaf7 serve`` as a real process: SIGTERM drains in-flight requests, and the access log
is one JSON object per line on stdout, with no secrets in it."""

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support.processes import (
    assert_no_valkey,
    create_vendor,
    http,
    serving,
    valkey_pids,
)

PID = "00000000-0000-4000-8000-000000000000"


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_sigterm_drains_the_request_in_flight(data_dir: Path) -> None:
    vendor = create_vendor(data_dir, "Acme", "123")
    with serving(data_dir) as server:
        status, project = http(
            "POST", server.base + "/api/vendor/projects", {"name": "Hub"}, vendor["api_key"]
        )
        assert status == 201
        body = json.dumps({"project_id": PID, "script_key": "secret-key-1", "hwid": "h"}).encode()
        head = (
            "POST /api/loader/execute HTTP/1.1\r\nHost: test\r\n"
            "Content-Type: application/json\r\nX-Request-ID: drain-1\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        [valkey_pid] = valkey_pids(data_dir)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            # Hold the request inside its handler: the storage is stopped (SIGSTOP).
            os.kill(valkey_pid, signal.SIGSTOP)
            try:
                sock.sendall(head + body)
                time.sleep(0.3)
                server.proc.send_signal(signal.SIGTERM)
                time.sleep(0.4)
                # No new connections once shutting down...
                with pytest.raises(OSError):
                    socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            finally:
                os.kill(valkey_pid, signal.SIGCONT)
            # ...but the request in flight is finished and answered.
            response = _read_response(sock)
        assert response.startswith(b"HTTP/1.1 200"), response
        assert b'"code":"PROJECT_NOT_FOUND"' in response
        assert b"X-Request-ID: drain-1" in response
        assert server.proc.wait(10) == 0
        output = server.output()
    assert_no_valkey(data_dir)  # cleanup ran: the embedded server was stopped

    lines = [json.loads(x) for x in output.splitlines() if x.startswith("{")]
    routes = [(x["method"], x["route"], x["status"]) for x in lines]
    assert ("POST", "/api/vendor/projects", 201) in routes
    drained = [x for x in lines if x["request_id"] == "drain-1"]
    assert [(x["route"], x["status"]) for x in drained] == [("/api/loader/execute", 200)]
    assert drained[0]["duration_ms"] >= 600  # it really was in flight across the SIGTERM
    for secret in (vendor["api_key"], "secret-key-1", "Bearer", project["project_id"]):
        assert secret not in output
