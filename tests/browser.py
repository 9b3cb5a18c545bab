"""A real headless Chromium for the page tests, driven through the DevTools protocol over a pipe.

Only the standard library: Chromium started with `--remote-debugging-pipe` reads protocol
messages (JSON, each ended by a NUL byte) on its file descriptor 3 and writes answers and events
on 4. No Playwright or Selenium download (their browsers cannot be fetched here); Debian's
`chromium` package is enough (`.ci/run` installs it).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--hide-scrollbars", "--mute-audio")


def executable() -> str | None:
    """The Chromium to use: $SPEEDATLAS_CHROMIUM, else chromium or chromium-browser on PATH."""
    named = os.environ.get("SPEEDATLAS_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    pass


class Browser:
    """One Chromium with one page. `call` sends a command and returns its result; `events` keeps
    every event seen (e.g. Page.javascriptDialogOpening: a script that ran an alert)."""

    def __init__(self, path: str, width: int = 1280, height: int = 1000):
        self.profile = tempfile.mkdtemp(prefix="speedatlas-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # copies above 3 and 4 (closed at exec), so that moving them onto 3 and 4 clobbers nothing
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)]

        def child() -> None:  # Chromium reads fd 3 and writes fd 4 (dup2 makes them inheritable)
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        # close_fds=False: closing would take 3 and 4 too; every other descriptor of ours is
        # close-on-exec (PEP 446)
        self.process = subprocess.Popen(
            [path, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=child,
        )
        for fd in (to_chrome_r, from_chrome_w, *high):
            os.close(fd)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=True)

    # -- the protocol ------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed its pipe (it crashed or could not start)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session: bool = False,
             timeout: float = 60.0) -> dict[str, Any]:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)
            if answer.get("method") == "Page.javascriptDialogOpening":  # never leave a page blocked
                self._id += 1
                self._send({"id": self._id, "method": "Page.handleJavaScriptDialog", "params": {"accept": True},
                            "sessionId": self.session})

    # -- what the tests use -------------------------------------------------------------------
    def open(self, url: str, settle: float = 0.5, timeout: float = 60.0) -> None:
        """Load `url` and wait for its load event (then `settle` seconds for scripts to render)."""
        before = len(self.events)
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events[before:]):
            self.events.append(self._receive(deadline))
        time.sleep(settle)

    def evaluate(self, expression: str, context: int | None = None) -> Any:
        """The value of a JavaScript expression in the page (or in an execution context)."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        result = self.call("Runtime.evaluate", params, session=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, context: int | None = None) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression, context)
            if value:
                return value
            time.sleep(0.2)
        raise BrowserError(f"timed out waiting for {expression}")

    def frame_context(self, url_prefix: str) -> int:
        """An execution context inside the first frame whose URL starts with `url_prefix` (an
        iframe of another origin, e.g. a data: URL, that the page's scripts cannot reach)."""
        def frames(tree: dict[str, Any]):
            yield tree["frame"]
            for child in tree.get("childFrames", []):
                yield from frames(child)

        tree = self.call("Page.getFrameTree", session=True)["frameTree"]
        frame = next((f for f in frames(tree) if f.get("url", "").startswith(url_prefix)), None)
        if frame is None:
            raise BrowserError(f"no frame at {url_prefix}…")
        world = self.call("Page.createIsolatedWorld", {"frameId": frame["id"], "worldName": "speedatlas-test"},
                          session=True)
        return world["executionContextId"]

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page, not only the window, unless full_page is False)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 16000),
                              "scale": 1}
        data = self.call("Page.captureScreenshot", params, session=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def dialogs(self) -> list[str]:
        """Messages of every alert/confirm/prompt a page script opened."""
        return [e["params"].get("message", "") for e in self.events if e.get("method") == "Page.javascriptDialogOpening"]

    def close(self) -> None:
        try:
            self._send({"id": self._id + 1, "method": "Browser.close"})
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)
