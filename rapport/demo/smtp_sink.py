"""A loopback SMTP sink for the demo and the dispatch benchmark, in a process of its own.

`running_sink(folder)` starts it and stops it. Run by hand as
`python -m rapport.demo.smtp_sink PORT_FILE`: it binds 127.0.0.1 on a free port,
writes the port number to PORT_FILE (atomically, so a reader never sees half of it),
accepts every message and counts it. On SIGTERM (or SIGINT) it stops and prints one
JSON object: `{"messages": …, "bytes": …, "connections": …}`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

LOOPBACK = "127.0.0.1"


class CountingHandler:
    """aiosmtpd handler that accepts everything and only counts."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.connections = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        self.bytes += len(envelope.original_content or b"")
        return "250 OK"

    def figures(self) -> dict[str, int]:
        return {"messages": self.messages, "bytes": self.bytes, "connections": self.connections}


def write_port(path: Path, port: int) -> None:
    """Writes `port` to `path` by renaming a finished file over it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n")
    os.replace(partial, path)


async def serve(port_file: Path) -> dict[str, int]:
    """Serves until SIGTERM or SIGINT; returns the counts."""
    loop = asyncio.get_running_loop()
    handler = CountingHandler()

    def connection() -> SMTP:
        handler.connections += 1
        return SMTP(handler, hostname="sink.loopback", ident="bench sink")

    server = await loop.create_server(connection, LOOPBACK, 0)
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    socket: Any = server.sockets[0]
    write_port(port_file, int(socket.getsockname()[1]))
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
    return handler.figures()


@contextmanager
def running_sink(folder: Path) -> Iterator[tuple[int, dict[str, int]]]:
    """Starts the sink in a process of its own; yields its port and, after the block,
    its counts."""
    port_file = folder / "sink.port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "rapport.demo.smtp_sink", str(port_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    counts: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the SMTP sink did not start")
            time.sleep(0.02)
        yield int(port_file.read_text()), counts
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        if out.strip():
            counts.update(json.loads(out.strip().splitlines()[-1]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m rapport.demo.smtp_sink PORT_FILE")
    print(json.dumps(asyncio.run(serve(Path(sys.argv[1])))), flush=True)
