"""A real terminal for tests: a private tmux server (its own socket, no user config) that runs one
command in a pane; tests type into it (send-keys) and read the screen (capture-pane)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

EXIT_MARK = "TERMINAL-EXIT="  # printed by the pane after the command, with its exit code


class Terminal:
    def __init__(self, workdir: Path, width: int = 160, height: int = 50) -> None:
        if not shutil.which("tmux"):
            raise RuntimeError("tmux is not installed; run `make test-tools` (Debian: apt-get install tmux)")
        self.socket = workdir / "tmux.sock"
        self.width, self.height = width, height

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"tmux {args[0]}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        """Run argv in the pane; when it ends the pane prints EXIT_MARK and its exit code, and stays."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        line = f"env {exports} {shlex.join(argv)}; echo {EXIT_MARK}$?; sleep 600"
        self.tmux("new-session", "-d", "-x", str(self.width), "-y", str(self.height), "-c", str(cwd), "sh", "-c", line)

    def envbuild(self, *args: str, cwd: Path) -> None:
        """`envbuild ARGS` in the pane, from this checkout."""
        repo = Path(__file__).resolve().parents[2]
        self.start([sys.executable, "-m", "envbuild", *args], cwd,
                   {"PYTHONPATH": str(repo), "PATH": os.environ["PATH"], "TERM": "xterm"})

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "0", *keys)

    def type(self, text: str) -> None:
        """Type a line literally, then Enter."""
        self.tmux("send-keys", "-t", "0", "-l", text)
        self.send("Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", "0", "-S", "-500")

    def wait_for(self, pattern: str, timeout: float = 120, after: int = 0) -> re.Match:
        """Wait until `pattern` (a regex) shows on the screen (after the first `after` characters)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            m = re.compile(pattern, re.M).search(screen, after)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not show within {timeout}s; the screen:\n{screen}")
            time.sleep(0.2)

    def exit_code(self, timeout: float = 60) -> int:
        return int(self.wait_for(rf"^{EXIT_MARK}(\d+)", timeout).group(1))

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=30)
