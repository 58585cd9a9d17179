"""A real container registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1.

`LocalRegistry(base)` writes a small YAML configuration (filesystem storage under `base`, a free
port on 127.0.0.1, optionally htpasswd basic auth), starts `docker-registry serve`, and waits for
`/v2/` to answer. It also pushes content itself through the API (`push_blob`, `push_manifest`),
so tests can make manifest lists and OCI indexes without another tool, and finds a blob's file in
the storage directory (`blob_path`) so a test can corrupt it. `FlakyProxy` sits in front of a
registry and can demand bearer tokens (a small token service of its own) or cut blob transfers
short.

Usable as a script to try things by hand: `python3 tests/docker/registry.py [--auth USER:PASS]`
serves until interrupted.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

PACKAGES = {"docker-registry": "docker-registry", "htpasswd": "apache2-utils"}


def missing_packages(auth: bool = False) -> list[str]:
    """The Debian packages whose programs the registry needs and are not on PATH."""
    need = ["docker-registry"] + (["htpasswd"] if auth else [])
    return [PACKAGES[t] for t in need if shutil.which(t) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    """Debian's docker-registry serving from a temporary directory on 127.0.0.1."""

    def __init__(self, base: Path, auth: tuple[str, str] | None = None):
        self.base = Path(base)
        self.storage = self.base / "storage"
        self.auth = auth
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> LocalRegistry:
        self.storage.mkdir(parents=True, exist_ok=True)
        lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
                 "storage:", "  filesystem:", f"    rootdirectory: {self.storage}",
                 "  delete:", "    enabled: true", "http:", f"  addr: {self.host}"]
        if self.auth:
            htpasswd = self.base / "htpasswd"
            subprocess.run(["htpasswd", "-Bbc", str(htpasswd), *self.auth], check=True,
                           capture_output=True)
            lines += ["auth:", "  htpasswd:", "    realm: dtx-test", f"    path: {htpasswd}"]
        config = self.base / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        self.log = open(self.base / "registry.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited:\n" +
                                   (self.base / "registry.log").read_text())
            try:
                r = requests.get(self.url + "/v2/", timeout=1)
                if r.status_code in (200, 401):
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not answer within 20 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- pushing through the API --------------------------------------------------------------

    def _session(self) -> requests.Session:
        s = requests.Session()
        if self.auth:
            s.auth = self.auth
        return s

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload `data` as a blob of `repo` (monolithic upload); return its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        s = self._session()
        r = s.post(f"{self.url}/v2/{repo}/blobs/uploads/")
        r.raise_for_status()
        location = r.headers["Location"]
        if location.startswith("/"):
            location = self.url + location
        sep = "&" if "?" in location else "?"
        r = s.put(f"{location}{sep}digest={digest}", data=data,
                  headers={"Content-Type": "application/octet-stream"})
        r.raise_for_status()
        return digest

    def push_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        """Put a manifest or index under `reference`; return its digest."""
        r = self._session().put(f"{self.url}/v2/{repo}/manifests/{reference}", data=data,
                                headers={"Content-Type": media_type})
        if r.status_code >= 400:
            raise RuntimeError(f"pushing manifest {repo}:{reference}: {r.status_code} {r.text}")
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def blob_path(self, digest: str) -> Path:
        """The file holding blob `digest` in the storage directory."""
        hex_ = digest.split(":", 1)[1]
        return (self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_[:2] /
                hex_ / "data")


class FlakyProxy:
    """An HTTP proxy in front of a registry that can demand bearer tokens (with basic
    credentials at its `/token` endpoint), cut the first `cut_blobs` blob responses after
    `cut_after` bytes (closing the connection), and answer the first `fail_count` requests for
    /v2/ content with `fail_status` (e.g. 429 or 503)."""

    def __init__(self, upstream: str, token_auth: tuple[str, str] | None = None,
                 cut_blobs: int = 0, cut_after: int = 1000, fail_status: int = 0,
                 fail_count: int = 0):
        self.upstream = upstream
        self.fail_status = fail_status
        self.fail_count = fail_count
        self.token_auth = token_auth
        self.cut_blobs = cut_blobs
        self.cut_after = cut_after
        self.token = base64.b64encode(os.urandom(18)).decode()
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.handle(self)

            def do_HEAD(self):
                proxy.handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests.append((h.path, dict(h.headers)))
        if self.token_auth and h.path.startswith("/token"):
            expected = "Basic " + base64.b64encode(":".join(self.token_auth).encode()).decode()
            if h.headers.get("Authorization") != expected:
                return self._send(h, 401, b'{"details":"bad credentials"}')
            return self._send(h, 200, json.dumps({"token": self.token}).encode())
        if self.token_auth and h.headers.get("Authorization") != f"Bearer {self.token}":
            repo = re.match(r"/v2/(.+)/(?:manifests|blobs|tags)/", h.path)
            challenge = f'Bearer realm="{self.url}/token",service="dtx-test"'
            if repo:
                challenge += f',scope="repository:{repo.group(1)}:pull"'

            return self._send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}',
                              {"WWW-Authenticate": challenge})
        with self.lock:
            fail = self.fail_count > 0 and h.path.startswith("/v2/") and h.path != "/v2/"
            if fail:
                self.fail_count -= 1
        if fail:
            return self._send(h, self.fail_status, b'{"errors":[{"code":"TOOMANYREQUESTS",'
                              b'"message":"slow down"}]}', {"Retry-After": "0"})
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() in ("accept", "range", "accept-encoding")}
        conn = http.client.HTTPConnection(self.upstream.split("://", 1)[1], timeout=30)
        conn.request(h.command, h.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        cut = False
        with self.lock:
            if "/blobs/" in h.path and resp.status in (200, 206) and self.cut_blobs > 0 \
                    and len(body) > self.cut_after:
                self.cut_blobs -= 1
                cut = True
        out_headers = {k: v for k, v in resp.getheaders()
                       if k.lower() not in ("content-length", "connection",
                                            "transfer-encoding")}
        if cut:
            h.send_response(resp.status)
            for k, v in out_headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:self.cut_after])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(h, resp.status, body if h.command != "HEAD" else b"", out_headers,
                   length=len(body))

    @staticmethod
    def _send(h, status: int, body: bytes, headers: dict | None = None,
              length: int | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)


if __name__ == "__main__":
    import argparse
    import tempfile
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth", help="USER:PASS for htpasswd basic auth")
    opts = parser.parse_args()
    auth = tuple(opts.auth.split(":", 1)) if opts.auth else None
    with tempfile.TemporaryDirectory() as tmp, LocalRegistry(Path(tmp), auth) as reg:
        print(f"registry at {reg.url} (storage {reg.storage}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sys.exit(0)
