"""scripts/cluster-up and cluster-down without starting a cluster: the options, the
checks made before anything starts, the settings printed for a shell, and stopping by
pid file with real (dummy) processes in process groups of their own.

The whole cluster (PostgreSQL, a Prefect server, workers, the API) is not started
here: tests/flows/test_deploy.py already pays for one Prefect server start in the suite.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rapport.cluster import (
    Cluster,
    Failure,
    down,
    main,
    members,
    parser,
    record,
    recorded,
    shell_settings,
    wait_for,
)


@contextmanager
def running(script: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """`sh -c script` in a session of its own, once it has printed `ready`; its group is
    killed at the end if it still runs."""
    process = subprocess.Popen(
        ["sh", "-c", script],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    with process:
        try:
            assert process.stdout is not None and process.stdout.readline() == b"ready\n"
            yield process
        finally:
            if members(process.pid):
                os.killpg(process.pid, 9)
            process.wait(timeout=10)


@pytest.fixture
def piece() -> Iterator[subprocess.Popen[bytes]]:
    """A long-running dummy in a process group of its own, with a child of its own, as
    a worker runs its flow runs."""
    with running("sleep 300 & sleep 300 & echo ready; wait") as process:
        yield process


def test_options_of_cluster_up() -> None:
    args = parser("up").parse_args([])
    assert (args.workers, args.prefect_port, args.api_port) == (2, 4200, 8000)
    assert parser("up").parse_args(["--workers", "3"]).workers == 3
    for wrong in (["--workers", "0"], ["--workers", "two"], ["--api-port", "80"]):
        with pytest.raises(SystemExit) as exit:
            parser("up").parse_args(wrong)
        assert exit.value.code == 2
    assert main(["sideways"]) == 2


def test_down_stops_the_recorded_group_and_twice_is_harmless(
    tmp_path: Path, piece: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(members(piece.pid)) == 3, "sh and its two sleeps"
    record(tmp_path, "worker-1", piece.pid)

    assert main(["down"], state=tmp_path) == 0
    assert capsys.readouterr().out == f"worker-1: stopped (pid {piece.pid})\n"
    assert members(piece.pid) == [], "the worker's child went with it"
    assert list(tmp_path.glob("*.pid")) == []

    assert main(["down"], state=tmp_path) == 0
    assert capsys.readouterr().out == f"cluster-down: nothing recorded in {tmp_path}\n"


def test_down_stops_last_started_first_and_leaves_a_reused_pid_alone(
    tmp_path: Path, piece: subprocess.Popen[bytes]
) -> None:
    first = record(tmp_path, "prefect-server", piece.pid)
    # A pid file whose process ended and whose pid now belongs to another process:
    # same pid, another start time.
    (tmp_path / "api.pid").write_text(f"{piece.pid} {first.started - 1}\n")
    (tmp_path / "worker-9.pid").write_text("cut short")
    assert [r.name for r in recorded(tmp_path)] == ["prefect-server", "api"]
    assert not (tmp_path / "worker-9.pid").exists()

    report = down(tmp_path, grace=5)
    assert report == [
        f"prefect-server: stopped (pid {piece.pid})",
        f"api: not running (pid {piece.pid})",
    ]


def test_a_dummy_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    with running("trap '' TERM; echo ready; sleep 300") as stubborn:
        record(tmp_path, "worker-1", stubborn.pid)
        assert down(tmp_path, grace=1) == [f"worker-1: killed after 1 s (pid {stubborn.pid})"]
        assert stubborn.wait(timeout=10) == -9


def test_up_refuses_a_running_cluster_and_leaves_it_running(
    tmp_path: Path, piece: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    record(tmp_path, "api", piece.pid)
    assert main(["up", "--prefect-port", "4599", "--api-port", "8599"], state=tmp_path) == 1
    assert "already running (api): stop it first with scripts/cluster-down" in (
        capsys.readouterr().err
    )
    assert piece.poll() is None
    assert [r.name for r in recorded(tmp_path)] == ["api"]


def test_up_fails_before_starting_anything_when_a_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Failure, match=f"port {port} on 127.0.0.1 is in use"):
            Cluster(workers=2, prefect_port=port, api_port=port, state=tmp_path).up()
    assert list(tmp_path.iterdir()) == []


def test_shell_settings_never_show_the_secret_key(tmp_path: Path) -> None:
    urls = ("http://127.0.0.1:4500/api", "postgresql+psycopg://r@h/rapport", "http://h:8500")
    env: dict[str, str] = {}
    exports = shell_settings(env, tmp_path, *urls)
    key_file = tmp_path / "secret-key"
    key = key_file.read_text()
    assert len(key) >= 40 and key_file.stat().st_mode & 0o077 == 0
    assert env["RAPPORT_SECRET_KEY"] == key
    assert exports == {
        "PREFECT_API_URL": urls[0],
        "RAPPORT_DATABASE_URL": urls[1],
        "RAPPORT_PUBLIC_URL": urls[2],
        "RAPPORT_SECRET_KEY": f'"$(cat {key_file})"',
    }
    again: dict[str, str] = {}
    shell_settings(again, tmp_path, *urls)
    assert again["RAPPORT_SECRET_KEY"] == key, "one key per cluster, kept"

    own = {"RAPPORT_SECRET_KEY": "mine-" + "x" * 40, "RAPPORT_PUBLIC_URL": "https://r.example"}
    exports = shell_settings(own, tmp_path / "elsewhere", *urls)
    assert set(exports) == {"PREFECT_API_URL", "RAPPORT_DATABASE_URL"}
    assert own["RAPPORT_SECRET_KEY"].startswith("mine-")


def test_waiting_for_a_piece_that_exited_fails_at_once_with_its_log(tmp_path: Path) -> None:
    with running("echo ready; sleep 300") as process:
        piece = record(tmp_path, "api", process.pid)
        os.killpg(process.pid, 9)
        process.wait(timeout=10)
    (tmp_path / "api.log").write_text("ERROR: address already in use\n")
    with pytest.raises(Failure, match="the Rapport API: api exited") as failure:
        wait_for("the Rapport API", lambda: False, [piece], tmp_path)
    assert "ERROR: address already in use" in str(failure.value)


def test_down_stops_what_the_pieces_left_in_sessions_of_their_own(
    tmp_path: Path, piece: subprocess.Popen[bytes]
) -> None:
    """A flow run its worker started in a process group of its own, still running."""
    marker = {"PREFECT_HOME": str(tmp_path / "prefect")}
    with running("echo ready; exec sleep 300", **marker) as flow_run:
        record(tmp_path, "worker-1", piece.pid)
        assert down(tmp_path, grace=5) == [
            f"worker-1: stopped (pid {piece.pid})",
            f"left behind: stopped (pid {flow_run.pid})",
        ]
        assert flow_run.wait(timeout=10) == -15
    with running("echo ready; exec sleep 300", PREFECT_HOME="/elsewhere") as other:
        assert down(tmp_path) == []
        assert other.poll() is None, "another cluster's process is left alone"
