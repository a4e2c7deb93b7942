"""A minimal WebDriver client (W3C protocol over HTTP, Python standard library only) for Debian's chromium-driver.

Used by tools/browser_check.py, tools/explore_bench.py and tools/screenshots.py. No browser is downloaded: the
browser is /usr/bin/chromium and the driver /usr/bin/chromedriver (apt-get install chromium chromium-driver).
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

# A parent may start this process with most signals blocked (the Swift test runner does: SIGTERM among them), and
# children inherit the mask: then the browser ignores the SIGTERM that ends a session, and every close waits for a
# timeout (measured: the explore browser test took 190 s instead of 35 s). Unblock them for this process and its
# children.
signal.pthread_sigmask(signal.SIG_SETMASK, set())

CHROMIUM_CANDIDATES = ["chromium", "chromium-browser", "google-chrome"]
DRIVER_CANDIDATES = ["chromedriver", "chromium-driver"]


def find(names, override=None):
    if override:
        return override
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def available():
    """Whether a Chromium and its driver are installed."""
    return find(CHROMIUM_CANDIDATES) is not None and find(DRIVER_CANDIDATES) is not None


class WebDriverError(RuntimeError):
    pass


def stop(process, log, timeout=20):
    """Ends a browser or driver process (terminate, then kill) and removes its log file."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    os.unlink(log.name)


class Driver:
    """One chromedriver process; sessions are opened with `session()`."""

    def __init__(self, driver=None):
        path = find(DRIVER_CANDIDATES, driver or os.environ.get("CHROMEDRIVER"))
        if path is None:
            raise WebDriverError("chromedriver not found (apt-get install chromium chromium-driver)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = tempfile.NamedTemporaryFile(prefix="chromedriver-", suffix=".log", delete=False)
        # Not under tools/cpuid_avx2only.c (the CPUID mask that stands in for an AVX2-only CPU when the test suite
        # runs under it): Chromium's sandbox does not survive CPUID faulting, and the browser's own code path is
        # not what the mask is about.
        env = dict(os.environ)
        preload = [p for p in env.pop("LD_PRELOAD", "").split(":") if p and "cpuid_avx2only" not in p]
        if preload:
            env["LD_PRELOAD"] = ":".join(preload)
        self.process = subprocess.Popen(
            [path, "--port=%d" % self.port], stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 20
        while True:
            try:
                if self.request("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.time() > deadline or self.process.poll() is not None:
                raise WebDriverError("chromedriver did not start (log: %s)" % self.log.name)
            time.sleep(0.1)

    def request(self, method, path, body=None, timeout=120):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                payload = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            payload = json.loads(e.read() or b"{}")
            value = payload.get("value", {})
            raise WebDriverError("%s %s: %s: %s" % (method, path, value.get("error"), value.get("message", "")[:500]))
        return payload.get("value")

    def session(self, javascript=True, width=1400, height=1000, browser=None):
        return Session(self, javascript=javascript, width=width, height=height, browser=browser)

    def close(self):
        stop(self.process, self.log)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Session:
    """A headless Chromium window."""

    def __init__(self, driver, javascript=True, width=1400, height=1000, browser=None):
        self.driver = driver
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            "--force-device-scale-factor=1",
            "--window-size=%d,%d" % (width, height),
            "--user-data-dir=" + self.profile,
        ]
        options = {"args": args, "binary": find(CHROMIUM_CANDIDATES, browser or os.environ.get("CHROMIUM"))}
        if not javascript:
            options["prefs"] = {"profile.managed_default_content_settings.javascript": 2}
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": options,
                    "goog:loggingPrefs": {"browser": "ALL"},
                }
            }
        }
        value = driver.request("POST", "/session", caps)
        self.id = value["sessionId"]

    def _path(self, suffix):
        return "/session/%s%s" % (self.id, suffix)

    def call(self, method, suffix, body=None):
        return self.driver.request(method, self._path(suffix), body)

    def open(self, path):
        url = path if "://" in path else "file://" + os.path.abspath(path)
        self.call("POST", "/url", {"url": url})

    def run(self, script, *args):
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, script, timeout=30, interval=0.02):
        """Polls `script` until it returns a truthy value; returns it."""
        deadline = time.time() + timeout
        while True:
            value = self.run(script)
            if value:
                return value
            if time.time() > deadline:
                raise WebDriverError("timed out waiting for: " + script)
            time.sleep(interval)

    def element(self, css):
        value = self.call("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(value.values()))

    def elements(self, css):
        return [next(iter(v.values())) for v in self.call("POST", "/elements", {"using": "css selector", "value": css})]

    def click(self, element):
        self.call("POST", "/element/%s/click" % element, {})

    def displayed(self, element):
        return self.call("GET", "/element/%s/displayed" % element)

    def rect(self, element):
        return self.call("GET", "/element/%s/rect" % element)

    def text(self, element):
        return self.call("GET", "/element/%s/text" % element)

    def attribute(self, element, name):
        return self.call("GET", "/element/%s/attribute/%s" % (element, name))

    def property(self, element, name):
        return self.call("GET", "/element/%s/property/%s" % (element, name))

    def click_at(self, element, x, y):
        """Moves the mouse to (x, y) CSS pixels from the element's top-left corner and clicks there."""
        r = self.rect(element)
        # W3C pointer offsets are from the element's centre.
        dx, dy = int(round(x - r["width"] / 2)), int(round(y - r["height"] / 2))
        move = {"type": "pointerMove", "duration": 0, "origin": {"element-6066-11e4-a52e-4f735466cecf": element}, "x": dx, "y": dy}
        actions = [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                    "actions": [move, {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]
        self.call("POST", "/actions", {"actions": actions})
        self.call("DELETE", "/actions")

    def keys(self, element, text):
        self.call("POST", "/element/%s/value" % element, {"text": text})

    def press(self, key):
        """Presses one key (e.g. '\\ue015' for ArrowDown) on the focused element."""
        actions = [{"type": "key", "id": "keyboard", "actions": [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]
        self.call("POST", "/actions", {"actions": actions})
        self.call("DELETE", "/actions")

    def console(self):
        """Browser console entries since the last call: [{'level', 'message'}]."""
        try:
            return self.call("POST", "/se/log", {"type": "browser"}) or []
        except WebDriverError:
            return self.call("POST", "/log", {"type": "browser"}) or []

    def screenshot(self, path, element=None):
        suffix = "/screenshot" if element is None else "/element/%s/screenshot" % element
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("GET", suffix)))

    def resize(self, width, height):
        self.call("POST", "/window/rect", {"width": width, "height": height})

    def close(self):
        try:
            self.call("DELETE", "")
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
