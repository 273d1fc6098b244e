"""scripts/ui-screenshots and scripts/report-screenshot on a machine with no font that
has Chinese glyphs: the zh-CN artifacts and report would come out as empty boxes, so
both stop before anything is started or written and say which package to install.

A fontconfig file that names no font directory stands for such a machine; no browser,
server or report is needed to reach the check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT

INSTALL = "apt-get install -y fonts-noto-cjk"


def no_fonts(tmp_path: Path, locale: str) -> dict[str, str]:
    """The environment of a machine without any font, in staff language `locale`."""
    config = tmp_path / "fonts.conf"
    config.write_text('<?xml version="1.0"?><fontconfig></fontconfig>\n')
    return {
        **os.environ,
        "FONTCONFIG_FILE": str(config),
        "RAPPORT_STAFF_LOCALE": locale,
        "TMPDIR": str(tmp_path),  # a failed run keeps its scratch directory
    }


def ui_screenshots(tmp_path: Path, locale: str) -> subprocess.CompletedProcess[str]:
    """ui-screenshots against a port nothing listens on, with `true` as the browser."""
    out = tmp_path / "shots"
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ui-screenshots"), "--server",
         "http://127.0.0.1:9", "--chromium", "true", "--out-dir", str(out)],
        env=no_fonts(tmp_path, locale),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def test_ui_screenshots_stops_without_a_chinese_font(tmp_path: Path) -> None:
    done = ui_screenshots(tmp_path, "zh-CN")
    assert done.returncode == 2, done.stderr
    assert "no font with Chinese glyphs" in done.stderr
    assert INSTALL in done.stderr
    assert not (tmp_path / "shots").exists()


def test_ui_screenshots_in_english_needs_no_chinese_font(tmp_path: Path) -> None:
    done = ui_screenshots(tmp_path, "en")
    assert "no font with Chinese glyphs" not in done.stderr
    assert "Connection refused" in done.stderr  # it went on to the server, not there


def test_report_screenshot_stops_without_a_chinese_font(tmp_path: Path) -> None:
    """Run from a copy whose `rapport` only records that it ran: the check comes first."""
    (tmp_path / "scripts").mkdir()
    script = shutil.copy(ROOT / "scripts" / "report-screenshot", tmp_path / "scripts")
    rapport = tmp_path / ".venv" / "bin" / "rapport"
    rapport.parent.mkdir(parents=True)
    rapport.write_text(f"#!/bin/sh\ntouch {tmp_path / 'rapport-ran'}\n")
    rapport.chmod(0o755)
    done = subprocess.run(
        [script], env=no_fonts(tmp_path, "zh-CN"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert INSTALL in done.stderr
    assert not (tmp_path / "rapport-ran").exists()
