"""A loopback SMTP sink for the dispatch benchmark, in a process of its own.

Run as `python -m bench.smtp_sink PORT_FILE`: it binds 127.0.0.1 on a free port,
writes the port number to PORT_FILE (atomically, so a reader never sees half of it),
accepts every message and counts it. On SIGTERM (or SIGINT) it stops and prints one
JSON object: `{"messages": …, "bytes": …, "connections": …}`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m bench.smtp_sink PORT_FILE")
    print(json.dumps(asyncio.run(serve(Path(sys.argv[1])))), flush=True)
