"""Firefox for tools/browser_check.py: the same Driver/Session interface as tools/webdriver.py, over Marionette.

Firefox speaks WebDriver through geckodriver, which Debian does not package; Firefox itself has Marionette built in
(`firefox --marionette`), a TCP protocol whose commands are the W3C WebDriver commands under other names. This module
starts Debian's firefox-esr headless with a fresh profile per session (apt-get install firefox-esr), maps each W3C
request that webdriver.Session makes (`POST /url`, `POST /execute/sync`, `POST /element`, ...) to its Marionette
command, and reads the page's uncaught errors from Firefox's own output (the profile turns on
`devtools.console.stdout.content`), since Marionette has no console log command. Python standard library only.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import webdriver

FIREFOX_CANDIDATES = ["firefox-esr", "firefox"]

# W3C WebDriver (method, path under /session/ID with element ids as {e} and attribute names as {name}) -> Marionette.
COMMANDS = [
    ("POST", r"/url", "WebDriver:Navigate"),
    ("POST", r"/execute/sync", "WebDriver:ExecuteScript"),
    ("POST", r"/element", "WebDriver:FindElement"),
    ("POST", r"/elements", "WebDriver:FindElements"),
    ("POST", r"/element/(?P<id>[^/]+)/click", "WebDriver:ElementClick"),
    ("POST", r"/element/(?P<id>[^/]+)/clear", "WebDriver:ElementClear"),
    ("POST", r"/element/(?P<id>[^/]+)/value", "WebDriver:ElementSendKeys"),
    ("GET", r"/element/(?P<id>[^/]+)/displayed", "WebDriver:IsElementDisplayed"),
    ("GET", r"/element/(?P<id>[^/]+)/rect", "WebDriver:GetElementRect"),
    ("GET", r"/element/(?P<id>[^/]+)/text", "WebDriver:GetElementText"),
    ("GET", r"/element/(?P<id>[^/]+)/attribute/(?P<name>[^/]+)", "WebDriver:GetElementAttribute"),
    ("GET", r"/element/(?P<id>[^/]+)/property/(?P<name>[^/]+)", "WebDriver:GetElementProperty"),
    ("GET", r"/element/(?P<id>[^/]+)/screenshot", "WebDriver:TakeScreenshot"),
    ("GET", r"/screenshot", "WebDriver:TakeScreenshot"),
    ("POST", r"/actions", "WebDriver:PerformActions"),
    ("DELETE", r"/actions", "WebDriver:ReleaseActions"),
    ("POST", r"/window/rect", "WebDriver:SetWindowRect"),
    ("DELETE", r"", "WebDriver:DeleteSession"),
]


def available():
    """Whether a Firefox is installed."""
    return webdriver.find(FIREFOX_CANDIDATES) is not None


class Driver:
    """Stands in for webdriver.Driver: each session() is its own headless Firefox process."""

    def session(self, javascript=True, width=1400, height=1000, browser=None):
        return Session(javascript=javascript, width=width, height=height, browser=browser)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Session(webdriver.Session):
    """A headless Firefox window, driven over Marionette."""

    def __init__(self, javascript=True, width=1400, height=1000, browser=None):
        binary = webdriver.find(FIREFOX_CANDIDATES, browser or os.environ.get("FIREFOX"))
        if binary is None:
            raise webdriver.WebDriverError("firefox not found (apt-get install firefox-esr)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.profile = tempfile.mkdtemp(prefix="firefox-profile-")
        prefs = {
            "marionette.port": port,
            "javascript.enabled": javascript,
            "devtools.console.stdout.content": True,
            "browser.shell.checkDefaultBrowser": False,
            "browser.startup.homepage_override.mstone": "ignore",
            "datareporting.policy.dataSubmissionEnabled": False,
            "toolkit.telemetry.reportingpolicy.firstRun": False,
            "app.update.disabledForTesting": True,
            "network.proxy.type": 0,
        }
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for key, value in prefs.items():
                f.write("user_pref(%s, %s);\n" % (json.dumps(key), json.dumps(value)))
        self.log = tempfile.NamedTemporaryFile(prefix="firefox-", suffix=".log", delete=False)
        self.log_offset = 0
        env = dict(os.environ, MOZ_HEADLESS="1", MOZ_HEADLESS_WIDTH=str(width), MOZ_HEADLESS_HEIGHT=str(height))
        self.process = subprocess.Popen(
            [binary, "--headless", "--marionette", "--no-remote", "--profile", self.profile,
             "--window-size=%d,%d" % (width, height), "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while True:
            try:
                self.socket = socket.create_connection(("127.0.0.1", port), timeout=120)
                break
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise webdriver.WebDriverError("firefox did not open Marionette (log: %s)" % self.log.name)
                time.sleep(0.2)
        self.buffer = b""
        self.next_id = 0
        self._receive()  # the greeting: {"applicationType": "gecko", "marionetteProtocol": 3}
        value = self._command("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
        self.id = value["sessionId"]

    # Marionette framing: "LENGTH:JSON", commands [0, id, name, params], responses [1, id, error, result].
    def _receive(self):
        while b":" not in self.buffer:
            self._read()
        length, _, rest = self.buffer.partition(b":")
        self.buffer = rest
        while len(self.buffer) < int(length):
            self._read()
        message, self.buffer = self.buffer[: int(length)], self.buffer[int(length):]
        return json.loads(message)

    def _read(self):
        chunk = self.socket.recv(1 << 16)
        if not chunk:
            raise webdriver.WebDriverError("firefox closed the Marionette connection (log: %s)" % self.log.name)
        self.buffer += chunk

    def _command(self, name, params):
        self.next_id += 1
        data = json.dumps([0, self.next_id, name, params]).encode()
        self.socket.sendall(b"%d:%s" % (len(data), data))
        while True:
            kind, message_id, error, result = self._receive()
            if kind == 1 and message_id == self.next_id:
                break
        if error:
            raise webdriver.WebDriverError("%s: %s: %s" % (name, error.get("error"), str(error.get("message", ""))[:500]))
        if isinstance(result, dict) and set(result) == {"value"}:
            return result["value"]
        return result

    def call(self, method, suffix, body=None):
        for m, pattern, name in COMMANDS:
            match = re.fullmatch(pattern, suffix)
            if m == method and match:
                params = dict(body or {})
                params.update(match.groupdict())
                return self._command(name, params)
        raise webdriver.WebDriverError("no Marionette command for %s %s" % (method, suffix))

    def console(self):
        """The uncaught errors of pages opened from disk since the last call, from Firefox's output ("JavaScript error:
        file://..."; Firefox's own chrome code logs console.error lines there too, so those are not taken)."""
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            f.seek(self.log_offset)
            text = f.read()
            self.log_offset = f.tell()
        return [{"level": "SEVERE", "message": line} for line in text.splitlines()
                if line.startswith("JavaScript error: file://")]

    def close(self):
        try:
            self._command("WebDriver:DeleteSession", {})
        except (OSError, webdriver.WebDriverError):
            pass
        finally:
            self.socket.close()
            webdriver.stop(self.process, self.log)
            shutil.rmtree(self.profile, ignore_errors=True)
