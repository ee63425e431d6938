"""Open a page in real headless Chromium (Debian's `chromium`, `make browser`) and look at it.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: it reads
commands on fd 3, answers on fd 4, each message JSON ended by a NUL byte): no port, no network.
The page is opened from disk with the network emulated offline, so anything it tried to fetch
fails and shows up as a failed request and a console error.

    python -m tests.helpers.browser report.html shot.png   # a screenshot, as for README
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WIDTH = 1280


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    failed: list[str] = field(default_factory=list)  # requests that failed (offline)
    value: Any = None  # what the probe script returned
    screenshot: bytes = b""


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.proc, self.write_fd, self.read_fd = proc, write_fd, read_fd
        self.buf, self.next_id, self.events = b"", 0, []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe (exit {self.proc.poll()})")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))


def _high_fd(fd: int) -> int:
    # out of the way of 3 and 4, where chromium expects its pipe ends
    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return new


# ready when every plotly chart on the page has its SVG (plotly draws on load, the Sankey a bit later)
DRAWN = ("[...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('svg.main-svg') && "
         "(!p.querySelector('.sankey') || p.querySelector('.sankey-node')))")


def open_page(path: Path, probe: str, *, height: int = 1800, ready: str = DRAWN, timeout: float = 60) -> PageResult:
    """Load `path` from disk offline, wait until the JS expression `ready` holds, run the JS expression
    `probe` (may return a Promise), collect console errors and requests, take a full-page PNG."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed; run `make browser`")
    to_chrome_r, to_chrome_w = (_high_fd(fd) for fd in os.pipe())
    from_chrome_r, from_chrome_w = (_high_fd(fd) for fd in os.pipe())

    def child_fds() -> None:
        os.dup2(to_chrome_r, 3)
        os.dup2(from_chrome_w, 4)

    profile = tempfile.mkdtemp(prefix="envbuild-chromium-")
    args = [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
            "about:blank"]
    # its caches and dconf go under HOME/XDG dirs whatever --user-data-dir says: keep them in the profile
    env = {**os.environ, "HOME": profile, "XDG_CACHE_HOME": f"{profile}/cache", "XDG_CONFIG_HOME": f"{profile}/config",
           "XDG_DATA_HOME": f"{profile}/data", "XDG_RUNTIME_DIR": profile}
    proc = subprocess.Popen(args, preexec_fn=child_fds, pass_fds=(3, 4, to_chrome_r, from_chrome_w), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(proc, to_chrome_w, from_chrome_r)
    result = PageResult()
    try:
        target = next(t for t in pipe.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = pipe.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                      "uploadThroughput": -1}, session=session)
        pipe.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        pipe.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        pipe.wait_event("Page.loadEventFired", timeout)
        def evaluate(expression: str) -> Any:
            reply = pipe.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                   "awaitPromise": True}, session=session)
            return reply.get("result", {}).get("value")

        deadline = time.monotonic() + timeout
        while not evaluate(ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: the page was not drawn within {timeout:.0f} s ({ready})")
            time.sleep(0.2)
        time.sleep(0.5)  # the Sankey's layout transition
        result.value = evaluate(probe)
        shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session,
                         timeout=timeout)
        result.screenshot = base64.b64decode(shot["data"])
        for e in pipe.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                words = (str(a.get("value", a.get("description"))) for a in p["args"])
                result.errors.append("console: " + " ".join(words))
            elif method == "Runtime.exceptionThrown":
                result.errors.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                result.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent":
                result.requests.append(p["request"]["url"])
            elif method == "Network.loadingFailed":
                result.failed.append(f"{p.get('errorText')} (request {p.get('requestId')})")
        try:
            pipe.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError):
            pass
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        shutil.rmtree(profile, ignore_errors=True)
    return result


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


if __name__ == "__main__":
    page = open_page(Path(sys.argv[1]), "document.title", height=int(sys.argv[3]) if len(sys.argv) > 3 else 1800)
    Path(sys.argv[2]).write_bytes(page.screenshot)
    print(f"{sys.argv[2]}: {png_size(page.screenshot)}; errors: {page.errors or 'none'}")
