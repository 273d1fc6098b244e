"""One machine's cluster: the README's "Scaling out" topology, every piece on loopback.

`scripts/cluster-up` starts PostgreSQL (`scripts/postgres-start`), a Prefect server
whose own database is on it, Rapport's schema, the process work pool with the
deployments of prefect.yaml, N process workers and the HTTP API, waiting (bounded) for
each to answer before the next; `scripts/cluster-down` stops what it started. Several
machines run the same commands, one role each: this module only wires them together.

Every long-running piece runs in a process group of its own. Its pid file,
`var/cluster/NAME.pid`, holds the pid and the process's start time (Linux's
/proc/PID/stat), so a pid reused after the piece ended is never signalled, and the
pieces stop in the reverse order of their start times. Output goes to
`var/cluster/NAME.log`. A PostgreSQL that was already running is used, not recorded,
so cluster-down leaves it running.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "var" / "cluster"
POOL = "rapport-process"
HOST = "127.0.0.1"
STARTUP = 180.0  # seconds for one piece; Prefect's server has taken 55 s on a busy machine
GRACE = 20.0  # seconds between SIGTERM and SIGKILL when stopping
# How each piece is asked to stop: PostgreSQL's postmaster shuts its backends down
# itself on SIGINT ("fast shutdown"); the others get SIGTERM across their group.
STOP_SIGNALS = {"postgres": signal.SIGINT}


class Failure(RuntimeError):
    """A piece did not come up; the message says which and why."""


@dataclass(frozen=True)
class Recorded:
    """A pid file: the piece's name, its pid and the process's start time."""

    name: str
    pid: int
    started: int

    def alive(self) -> bool:
        return start_time(self.pid) == self.started


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), None when no such process runs."""
    fields = stat_fields(Path(f"/proc/{pid}/stat"))
    return None if fields is None else int(fields[19])


def members(pgid: int) -> list[int]:
    """The processes still running in process group `pgid`."""
    return [
        int(stat.parent.name)
        for stat in Path("/proc").glob("[0-9]*/stat")
        if (fields := stat_fields(stat)) is not None and int(fields[2]) == pgid
    ]


def stat_fields(stat: Path) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces):
    state (field 3), ..., pgrp (5), ..., starttime (22). None for a process that has
    ended, including a zombie (ended; only its parent has yet to notice)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields


def record(state: Path, name: str, pid: int) -> Recorded:
    started = start_time(pid)
    if started is None:
        raise Failure(f"{name} (pid {pid}) exited at once; see {state / name}.log")
    (state / f"{name}.pid").write_text(f"{pid} {started}\n")
    return Recorded(name, pid, started)


def recorded(state: Path) -> list[Recorded]:
    """The pid files of `state`, last started first (the order to stop them in)."""
    found = []
    for path in state.glob("*.pid"):
        try:
            pid, started = (int(field) for field in path.read_text().split())
        except ValueError:
            path.unlink()  # not one of ours, or cut short: nothing to signal safely
            continue
        found.append(Recorded(path.stem, pid, started))
    return sorted(found, key=lambda r: r.started, reverse=True)


def stop(piece: Recorded, grace: float = GRACE) -> str:
    """Stops one piece: a process group's leader with everything left in its group (a
    worker with its children), any other process alone; SIGKILL after `grace` s."""
    if not piece.alive():
        return f"{piece.name}: not running (pid {piece.pid})"
    # The group outlives its leader while a member runs, so its id is not reused.
    group = os.getpgid(piece.pid) == piece.pid

    def left() -> bool:
        return bool(members(piece.pid)) if group else piece.alive()

    with suppress(ProcessLookupError):  # it ended in the meantime
        if group and piece.name not in STOP_SIGNALS:
            os.killpg(piece.pid, signal.SIGTERM)
        else:  # PostgreSQL's postmaster stops its backends itself
            os.kill(piece.pid, STOP_SIGNALS.get(piece.name, signal.SIGTERM))
    end = time.monotonic() + grace
    while left() and time.monotonic() < end:
        time.sleep(0.2)
    if not left():
        return f"{piece.name}: stopped (pid {piece.pid})"
    with suppress(ProcessLookupError):
        (os.killpg if group else os.kill)(piece.pid, signal.SIGKILL)
    return f"{piece.name}: killed after {grace:.0f} s (pid {piece.pid})"


def strays(state: Path) -> list[Recorded]:
    """What the pieces started in sessions of their own and left behind (Prefect runs
    each flow run in a process group of its own): every process whose environment has
    this cluster's PREFECT_HOME, which cluster-up sets for everything it starts."""
    marker = f"PREFECT_HOME={state / 'prefect'}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        try:
            ours = pid != os.getpid() and marker in environ.read_bytes().split(b"\0")
        except OSError:
            continue
        if ours and (started := start_time(pid)) is not None:
            found.append(Recorded("left behind", pid, started))
    return found


def down(state: Path = STATE, grace: float = GRACE) -> list[str]:
    """Stops every recorded piece, last started first, and removes its pid file; then
    whatever they left behind."""
    report = []
    for piece in recorded(state):
        report.append(stop(piece, grace))
        (state / f"{piece.name}.pid").unlink(missing_ok=True)
    return report + [stop(stray, grace) for stray in strays(state)]


def wait_for(what: str, ready: Callable[[], bool], pieces: list[Recorded], state: Path) -> None:
    """Polls `ready` (the pieces answering) until true, for at most STARTUP seconds;
    fails at once when a piece exits. The failure shows the piece's log."""
    end = time.monotonic() + STARTUP
    while time.monotonic() < end:
        if ready():
            return
        if ended := [piece for piece in pieces if not piece.alive()]:
            log = state / f"{ended[0].name}.log"
            raise Failure(f"{what}: {ended[0].name} exited\n{tail(log)}")
        time.sleep(1)
    log = state / f"{pieces[-1].name}.log"
    raise Failure(f"{what}: no answer within {STARTUP:.0f} s\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {log})"
    return f"--- last lines of {log} ---\n" + "\n".join(text)


def answers(url: str, method: str = "GET", json: object = None) -> httpx.Response | None:
    try:
        response = httpx.request(method, url, json=json, timeout=5)
    except httpx.HTTPError:
        return None
    return response if response.status_code == 200 else None


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) != 0


def secret_key(state: Path) -> Path:
    """A random RAPPORT_SECRET_KEY kept in `state`, made once; never printed."""
    path = state / "secret-key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path


@dataclass(frozen=True)
class Cluster:
    """What `up` starts, where it writes, and the command lines it runs."""

    workers: int
    prefect_port: int
    api_port: int
    state: Path = STATE
    bin: Path = Path(sys.executable).parent  # rapport and prefect beside this Python

    def start(self, name: str, command: list[str], env: Mapping[str, str]) -> Recorded:
        with (self.state / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,  # the workers load the flows of this checkout
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return record(self.state, name, process.pid)

    def run(self, name: str, command: list[str], env: Mapping[str, str]) -> str:
        """Runs a one-off step to its end, its output in NAME.log; returns its stdout."""
        log = self.state / f"{name}.log"
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)
        with log.open("ab") as out:
            out.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise Failure(f"{' '.join(command[-3:])} failed ({done.returncode})\n{tail(log)}")
        return done.stdout.decode()

    def postgres(self, env: Mapping[str, str]) -> tuple[str, str]:
        """Rapport's and Prefect's database URLs on scripts/postgres-start's server
        (RAPPORT_PG_PORT, RAPPORT_PG_DATA); records the server if this call started it."""
        script = [str(ROOT / "scripts" / "postgres-start")]
        before = time.time()
        rapport_url = self.run("postgres-start", [*script, "rapport"], env).strip()
        prefect_url = self.run("postgres-start", [*script, "prefect"], env).strip()
        with psycopg.connect(rapport_url.replace("+psycopg", "")) as connection:
            row = connection.execute(
                "SELECT current_setting('data_directory'), "
                "extract(epoch FROM pg_postmaster_start_time())"
            ).fetchone()
        assert row is not None
        data, started = row
        if float(started) >= before:  # postgres-start started it just now
            pid = int((Path(data) / "postmaster.pid").read_text().split()[0])
            record(self.state, "postgres", pid)
        return rapport_url, prefect_url.replace("+psycopg", "+asyncpg")

    def up(self) -> dict[str, str]:
        """Starts every piece; returns the settings a shell needs to use the cluster.
        Checks first, so a failure stops only what this call started."""
        self.check()
        try:
            return self.start_all()
        except (Failure, KeyboardInterrupt) as error:
            stopped = down(self.state)
            raise Failure("\n".join([str(error) or "interrupted", *stopped])) from None

    def check(self) -> None:
        """Fails, before anything starts, on a running cluster or a port in use."""
        self.state.mkdir(parents=True, exist_ok=True)
        if running := [r.name for r in recorded(self.state) if r.alive()]:
            raise Failure(
                f"a cluster is already running ({', '.join(running)}): "
                "stop it first with scripts/cluster-down"
            )
        down(self.state)  # stale pid files of a cluster that ended by itself
        for port in (self.prefect_port, self.api_port):
            if not port_free(port):
                raise Failure(f"port {port} on {HOST} is in use; choose another (--help)")

    def start_all(self) -> dict[str, str]:
        rapport, prefect = str(self.bin / "rapport"), str(self.bin / "prefect")
        prefect_api = f"http://{HOST}:{self.prefect_port}/api"
        api = f"http://{HOST}:{self.api_port}"
        env = {**os.environ, "PREFECT_HOME": str(self.state / "prefect")}
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        env.setdefault("PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT", "false")
        database_url, prefect_database = self.postgres(env)
        exports = shell_settings(env, self.state, prefect_api, database_url, api)

        server_env = {**env, "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database}
        command = [rapport, "ui", "--host", HOST, "--port", str(self.prefect_port)]
        server = self.start("prefect-server", command, server_env)
        health = f"{prefect_api}/health"
        wait_for("the Prefect server", lambda: answers(health) is not None, [server], self.state)
        self.run("db-upgrade", [rapport, "db", "upgrade"], env)
        self.run("deploy", [rapport, "deploy", "--pool", POOL], env)

        names = [f"worker-{n}" for n in range(1, self.workers + 1)]
        workers = [
            self.start(name, [prefect, "worker", "start", "--pool", POOL, "--name", name], env)
            for name in names
        ]

        def online() -> bool:
            found = answers(f"{prefect_api}/work_pools/{POOL}/workers/filter", "POST", {})
            listed = (
                {w["name"] for w in found.json() if w["status"] == "ONLINE"} if found else set()
            )
            return all(name in listed for name in names)

        wait_for(f"{self.workers} workers online", online, workers, self.state)
        command = [rapport, "api", "--host", HOST, "--port", str(self.api_port)]
        api_piece = self.start("api", command, env)
        wait_for(
            "the Rapport API",
            lambda: answers(f"{api}/healthz") is not None,
            [api_piece],
            self.state,
        )
        return exports


def shell_settings(
    env: dict[str, str], state: Path, prefect_api: str, database_url: str, api: str
) -> dict[str, str]:
    """Puts the cluster's settings into `env` (the pieces' environment) and returns
    them as a shell should export them: the secret key as a `$(cat FILE)`, never its
    value. A RAPPORT_SECRET_KEY or RAPPORT_PUBLIC_URL already set is kept."""
    exports = {"PREFECT_API_URL": prefect_api, "RAPPORT_DATABASE_URL": database_url}
    if not env.get("RAPPORT_PUBLIC_URL"):
        exports["RAPPORT_PUBLIC_URL"] = api  # unsubscribe links reach this API
    env.update(exports)
    if not env.get("RAPPORT_SECRET_KEY"):
        key = secret_key(state)
        env["RAPPORT_SECRET_KEY"] = key.read_text()
        exports["RAPPORT_SECRET_KEY"] = f'"$(cat {key})"'
    return exports


def describe(cluster: Cluster, exports: Mapping[str, str]) -> str:
    env_file = cluster.state / "env"
    lines = [f"export {name}={value}" for name, value in exports.items()]
    env_file.write_text("\n".join(lines) + "\n")
    return "\n".join(
        [
            f"Prefect UI:  http://{HOST}:{cluster.prefect_port}",
            f"Rapport API: http://{HOST}:{cluster.api_port}  (docs: /docs)",
            f"workers:     {cluster.workers} on the {POOL} work pool",
            f"logs and pid files: {cluster.state}",
            f"To use it from a shell (or `. {env_file}`):",
            *(f"  {line}" for line in lines),
            "Stop it with scripts/cluster-down.",
        ]
    )


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def port(text: str) -> int:
    value = int(text)
    if not 1024 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port from 1024 to 65535")
    return value


def parser(command: str) -> argparse.ArgumentParser:
    """The options of `scripts/cluster-up` or `scripts/cluster-down`."""
    if command == "down":
        return argparse.ArgumentParser(
            prog="scripts/cluster-down", description="Stops what scripts/cluster-up started."
        )
    up = argparse.ArgumentParser(
        prog="scripts/cluster-up",
        description="Starts Rapport's cluster on 127.0.0.1: PostgreSQL (scripts/postgres-start, "
        "which reads RAPPORT_PG_PORT and RAPPORT_PG_DATA), a Prefect server on it, the "
        "deployments, process workers and the HTTP API. Logs and pid files: var/cluster/.",
    )
    up.add_argument("--workers", type=positive, default=2, help="process workers (default 2)")
    up.add_argument("--prefect-port", type=port, default=4200, help="Prefect server and UI")
    up.add_argument("--api-port", type=port, default=8000, help="Rapport's HTTP API")
    return up


def main(argv: list[str], state: Path = STATE) -> int:
    """`python -m rapport.cluster up|down [options]`, what the two scripts run."""
    command, *options = argv or [""]
    if command not in ("up", "down"):
        print("usage: python -m rapport.cluster up|down [--help]", file=sys.stderr)
        return 2
    args = parser(command).parse_args(options)
    if command == "down":
        report = down(state)
        print("\n".join(report) if report else f"cluster-down: nothing recorded in {state}")
        return 0
    cluster = Cluster(args.workers, args.prefect_port, args.api_port, state)
    try:
        exports = cluster.up()
    except Failure as error:
        print(f"cluster-up: {error}", file=sys.stderr)
        return 1
    print(describe(cluster, exports))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
