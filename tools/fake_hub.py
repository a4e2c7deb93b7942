#!/usr/bin/env python3
"""A local stand-in for the Hugging Face Hub's file endpoints, for tests without internet.

Serves `GET`/`HEAD {endpoint}/{org}/{name}/resolve/{revision}/{filename}` with the headers the Hub sends
(`ETag`, `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`, `X-Error-Code`, `Accept-Ranges`), and answers LFS files
(`*.safetensors`, `*.bin`, anything over 10 MB) with a 302 to a second listener on another port, the "CDN", which
serves blobs by SHA-256 with `Range` support. Python standard library only.

Usage:
    python3 tools/fake_hub.py --repo timm/tiny=Tests/ViTKitTests/Resources/fixtures/models/timm_vit [--repo ...]
    python3 tools/fake_hub.py --manifest hub.json [--log requests.jsonl] [--token SECRET]

It prints `PORT <hub port> <cdn port>` on one line once both listen on 127.0.0.1 (port 0: the system picks), then
serves until standard input closes or it is sent SIGTERM. Point vitclassify or huggingface_hub at it with
`HF_ENDPOINT=http://127.0.0.1:<hub port>`.

The manifest (JSON) describes repositories and faults to inject:
    {"repos": {"org/name": {
        "files": {"config.json": "/path/to/config.json", ...},   # the repository's main commit
        "tags": ["v1"],                                            # more revision names for the same commit
        "private": false,                                          # true: 401 unless Authorization: Bearer <token>
        "status": 500,                                             # every resolve answers this status
        "faults": {"model.safetensors": {
            "cut_after": 1000,      # the first N GETs of the blob send this many bytes, then drop the connection
            "cut_times": 1,
            "corrupt": true,        # serve the content with one byte changed (headers still name the true SHA-256)
            "no_range": true,       # ignore Range headers (always 200 with the whole file)
            "delay_per_chunk": 0.05 # seconds between 16 KiB chunks (to make downloads overlap)
        }}}}}
Every request is appended to the log (JSON lines: server, method, path, range, authorization "none" / "token" /
"other"), so a test can check what was sent where; the token itself is never written to the log.
"""

import argparse
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack")
LFS_THRESHOLD = 10 * 1024 * 1024
CHUNK = 16 * 1024


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, repo_id, spec):
        self.repo_id = repo_id
        self.files = {}  # filename -> bytes
        for name, path in sorted(spec.get("files", {}).items()):
            with open(path, "rb") as f:
                self.files[name] = f.read()
        listing = "".join(f"{name}\0{git_blob_sha1(data)}\n" for name, data in sorted(self.files.items()))
        self.commit = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()
        self.revisions = {"main": self.commit, self.commit: self.commit}
        for tag in spec.get("tags", []):
            self.revisions[tag] = self.commit
        self.private = bool(spec.get("private", False))
        self.status = spec.get("status")
        self.faults = spec.get("faults", {})

    def is_lfs(self, name):
        return name.endswith(LFS_SUFFIXES) or len(self.files[name]) > LFS_THRESHOLD


class State:
    def __init__(self, repos, token, log_path):
        self.repos = repos
        self.token = token
        self.log_path = log_path
        self.lock = threading.Lock()
        self.blobs = {}  # sha256 -> (repo, filename)
        self.cuts = {}  # (repo_id, filename) -> times cut so far
        for repo in repos.values():
            for name, data in repo.files.items():
                self.blobs[hashlib.sha256(data).hexdigest()] = (repo, name)
        self.cdn_origin = None

    def log(self, entry):
        if not self.log_path:
            return
        with self.lock, open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1"
    state: State = None
    role = "hub"

    def log_message(self, format, *args):  # quiet
        pass

    def authorization(self):
        value = self.headers.get("Authorization")
        if value is None:
            return "none"
        return "token" if self.state.token and value == f"Bearer {self.state.token}" else "other"

    def record(self):
        self.state.log({
            "server": self.role, "method": self.command, "path": self.path,
            "range": self.headers.get("Range"), "authorization": self.authorization(),
        })

    def send(self, status, headers, body=b""):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, status, code, message, extra=None):
        headers = {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message}
        headers.update(extra or {})
        self.send(status, headers, json.dumps({"error": message}).encode())

    def do_HEAD(self):
        self.handle_request()

    def do_GET(self):
        self.handle_request()

    def handle_request(self):
        self.record()
        try:
            if self.role == "cdn":
                self.serve_cdn()
            else:
                self.serve_hub()
        except (BrokenPipeError, ConnectionResetError):
            pass

    # {org}/{name}/resolve/{revision}/{filename}; the revision may be percent-encoded (refs%2Fpr%2F1).
    def serve_hub(self):
        path = urllib.parse.urlsplit(self.path).path
        parts = path.lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self.error(404, "NotFound", "not a resolve URL")
        repo_id = urllib.parse.unquote(f"{parts[0]}/{parts[1]}")
        revision = urllib.parse.unquote(parts[3])
        filename = urllib.parse.unquote("/".join(parts[4:]))
        repo = self.state.repos.get(repo_id)
        if repo is not None and repo.status:
            return self.error(int(repo.status), "ServerError", f"injected status {repo.status}")
        if repo is None or (repo.private and self.authorization() != "token"):
            return self.error(401, "RepoNotFound", "Repository not found")
        commit = repo.revisions.get(revision)
        if commit is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        data = repo.files.get(filename)
        if data is None:
            return self.error(404, "EntryNotFound", f"{filename} does not exist at {commit}", headers)
        if repo.is_lfs(filename):
            sha256 = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n"
            query = urllib.parse.urlencode({"repo": repo_id, "file": filename, "X-Amz-Signature": "fake"})
            headers.update({
                "ETag": f'"{git_blob_sha1(pointer.encode())}"',
                "X-Linked-Etag": f'"{sha256}"',
                "X-Linked-Size": str(len(data)),
                "Location": f"{self.state.cdn_origin}/blobs/{sha256}?{query}",
            })
            return self.send(302, headers, b"Found. Redirecting")
        headers.update({"ETag": f'"{git_blob_sha1(data)}"', "Content-Type": "application/octet-stream"})
        self.send_body(data, headers, {})

    def serve_cdn(self):
        path = urllib.parse.urlsplit(self.path).path
        parts = path.lstrip("/").split("/")
        if len(parts) != 2 or parts[0] != "blobs" or parts[1] not in self.state.blobs:
            return self.error(404, "NotFound", "no such blob")
        repo, name = self.state.blobs[parts[1]]
        faults = repo.faults.get(name, {})
        data = repo.files[name]
        if faults.get("corrupt"):
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self.send_body(data, {"ETag": f'"{parts[1]}"', "Content-Type": "application/octet-stream"}, faults,
                       key=(repo.repo_id, name))

    def send_body(self, data, headers, faults, key=None):
        headers = dict(headers)
        headers["Accept-Ranges"] = "none" if faults.get("no_range") else "bytes"
        start, status = 0, 200
        requested = self.headers.get("Range")
        if requested and not faults.get("no_range"):
            spec = requested.strip()
            if not spec.startswith("bytes=") or "," in spec or not spec[6:].endswith("-"):
                return self.error(416, "RangeNotSatisfiable", "only 'bytes=N-' ranges are served")
            start = int(spec[6:-1])
            if start >= len(data):
                return self.send(416, {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        headers["Content-Length"] = str(len(body))
        cut = None
        if key is not None and "cut_after" in faults and self.command == "GET":
            with self.state.lock:
                done = self.state.cuts.get(key, 0)
                if done < int(faults.get("cut_times", 1)):
                    self.state.cuts[key] = done + 1
                    cut = int(faults["cut_after"])
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        delay = float(faults.get("delay_per_chunk", 0))
        limit = len(body) if cut is None else min(cut, len(body))
        sent = 0
        while sent < limit:
            chunk = body[sent:min(sent + CHUNK, limit)]
            self.wfile.write(chunk)
            self.wfile.flush()
            sent += len(chunk)
            if delay:
                threading.Event().wait(delay)
        if cut is not None:
            # Drop the connection mid-body, as a network failure would.
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


def make_server(state, role):
    handler = type(f"{role.capitalize()}Handler", (Handler,), {"state": state, "role": role})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", help="JSON file describing repositories and faults")
    parser.add_argument("--repo", action="append", default=[], metavar="ORG/NAME=DIR",
                        help="serve every file of DIR as the main commit of ORG/NAME")
    parser.add_argument("--token", default=os.environ.get("FAKE_HUB_TOKEN"),
                        help="the token private repositories accept (default: $FAKE_HUB_TOKEN)")
    parser.add_argument("--log", help="append one JSON line per request to this file")
    args = parser.parse_args()

    specs = {}
    if args.manifest:
        with open(args.manifest) as f:
            specs.update(json.load(f)["repos"])
    for item in args.repo:
        repo_id, _, folder = item.partition("=")
        specs[repo_id] = {"files": {n: os.path.join(folder, n) for n in sorted(os.listdir(folder))
                                    if os.path.isfile(os.path.join(folder, n))}}
    state = State({rid: Repo(rid, spec) for rid, spec in specs.items()}, args.token, args.log)
    hub, cdn = make_server(state, "hub"), make_server(state, "cdn")
    state.cdn_origin = f"http://127.0.0.1:{cdn.server_address[1]}"
    for server in (hub, cdn):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {hub.server_address[1]} {cdn.server_address[1]}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Stops when the parent closes our standard input (or dies): no server is left behind.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    hub.shutdown()
    cdn.shutdown()


if __name__ == "__main__":
    main()
