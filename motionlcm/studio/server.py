"""The studio's local web server: the page and its scripts from the installed package, the API of api.py.

Standard library only (`http.server`). One generation runs at a time (the model is not re-entrant); up to
`queue` more wait; any request beyond that is answered 503 at once instead of piling up. The server reads no
path the client names (static files are a fixed list read at start) and writes nothing to disk. Browsers
cannot drive it from other sites: no CORS headers, POSTs must be `application/json` (so a cross-site request
needs a preflight, which is refused), and the Host header must be the address it was started on.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from motionlcm.studio.api import (
    MAX_BODY,
    OPENAPI,
    ApiError,
    GenerateRequest,
    TimelineRequest,
    export,
    generate,
    parse_json,
    timeline,
)

STATIC = Path(__file__).parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css",
         ".txt": "text/plain; charset=utf-8", ".json": "application/json"}  # fmt: skip
# everything the page loads comes from this server: no CDN, no font service, no analytics (a test checks)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


# prompts whose text embedding the studio keeps (26 KB each for MiniLM's 17 x 384 rows): typing makes a new
# prompt every pause, and the pipeline's default 4096 would let the server grow by 100 MB before it levels off
TEXT_CACHE = 256


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any) -> Response:
        return cls(status, json.dumps(data, separators=(",", ":")).encode("utf-8"))


def static_files(root: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type) for every file under `root`, read once at start."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in TYPES:
            files["/static/" + path.relative_to(root).as_posix()] = (path.read_bytes(), TYPES[path.suffix])
    if "/static/index.html" not in files:
        raise ValueError(f"{root}: the studio page (index.html) is missing from the installation")
    files["/"] = files["/static/index.html"]
    return files


class Studio:
    """Routes requests to the API over one pipeline; `handle` is the whole server minus the sockets."""

    def __init__(self, pipe: Any, queue: int = 4, root: Path = STATIC) -> None:
        """`pipe`: one pipeline, or {name: pipeline} for a model choice on the page (the first is the default)."""
        if queue < 0:
            raise ValueError(f"--queue: must be >= 0, got {queue}")
        self.models = dict(pipe) if isinstance(pipe, dict) else {Path(str(pipe.folder.path)).name: pipe}
        if not self.models:
            raise ValueError("studio: no model")
        self.pipe, self.queue = next(iter(self.models.values())), queue
        self.files = static_files(root)
        self._model = threading.Lock()
        self._slots = threading.BoundedSemaphore(queue + 1)  # the running generation and those waiting
        self._movie = threading.Lock()  # one movie renders at a time (seconds of CPU); others get 503
        self._waiting = 0
        self.served = {"generate": 0, "busy": 0, "errors": 0}

    def health(self) -> dict[str, Any]:
        from motionlcm.data.skeleton import JOINT_NAMES, PARENTS

        def backend(pipe: Any) -> str:
            return "torch" if getattr(pipe, "onnx", None) is None else "onnxruntime"

        models = [{"name": name, "path": str(p.folder.path), "kind": p.kind, "backend": backend(p)}
                  for name, p in self.models.items()]  # fmt: skip
        return {"status": "ok", "model": str(self.pipe.folder.path), "kind": self.pipe.kind,
                "backend": backend(self.pipe), "models": models,
                "parents": list(PARENTS), "joint_names": list(JOINT_NAMES), "fps": 20, "queue": {"limit": self.queue, "waiting": self._waiting},
                "served": dict(self.served)}  # fmt: skip

    def handle(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json") -> Response:
        path = path.split("?", 1)[0]
        try:
            if path.startswith("/api/"):
                return self._api(method, path, body, content_type)
            if path not in self.files:
                return Response.json(404, {"error": f"{path}: not found", "field": None})
            if method not in ("GET", "HEAD"):
                return Response.json(405, {"error": f"{method} {path}: method not allowed", "field": None})
            data, kind = self.files[path]
            return Response(200, data, kind, {"Cache-Control": "no-cache"})
        except ApiError as err:
            return Response.json(err.status, err.body())
        except Exception as err:  # the server must answer, whatever the model does
            self.served["errors"] += 1
            return Response.json(500, {"error": f"internal error: {type(err).__name__}: {err}", "field": None})

    def _api(self, method: str, path: str, body: bytes, content_type: str) -> Response:
        routes = {"/api/health": "GET", "/api/openapi.json": "GET", "/api/generate": "POST", "/api/timeline": "POST",
                  "/api/export": "POST"}  # fmt: skip
        if path not in routes:
            return Response.json(404, {"error": f"{path}: no such endpoint", "field": None})
        if method != routes[path]:
            return Response.json(405, {"error": f"{method} {path}: use {routes[path]}", "field": None})
        if path == "/api/health":
            return Response.json(200, self.health())
        if path == "/api/openapi.json":
            return Response.json(200, OPENAPI)
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise ApiError(415, None, f"Content-Type: must be application/json, got {content_type or 'none'}")
        data = parse_json(body)
        if path == "/api/export":
            movie = data.get("format") in ("mp4", "gif")
            if movie and not self._movie.acquire(blocking=False):
                busy = Response.json(503, {"error": "busy: a movie is rendering, try again", "field": None})
                busy.headers["Retry-After"] = "2"
                return busy
            try:
                content, kind, name = export(data)
            finally:
                if movie:
                    self._movie.release()
            return Response(200, content, kind, {"Content-Disposition": f'attachment; filename="{name}"'})
        pipe = self._model_of(data)
        if path == "/api/timeline":
            request = TimelineRequest.parse(data)
            return self._generate(lambda: timeline(pipe, request))
        request = GenerateRequest.parse(data)
        return self._generate(lambda: generate(pipe, request))

    def _model_of(self, data: dict[str, Any]) -> Any:
        """The pipeline a request names in "model" (removed from `data`), the default one when absent."""
        name = data.pop("model", None)
        if name is None:
            return self.pipe
        if name not in self.models:
            raise ApiError(422, "model", f"model: {json.dumps(name)} is not one of {', '.join(self.models)}")
        return self.models[name]

    def _generate(self, make: Any) -> Response:
        if not self._slots.acquire(blocking=False):
            self.served["busy"] += 1
            busy = Response.json(503, {"error": "busy: the generation queue is full, try again", "field": None})
            busy.headers["Retry-After"] = "1"
            return busy
        try:
            self._waiting += 1
            began = time.perf_counter()
            with self._model:
                self._waiting -= 1
                waited = time.perf_counter() - began
                result = make()
            result["ms"]["queue"] = waited * 1000.0
            self.served["generate"] += 1
            return Response.json(200, result)
        finally:
            self._slots.release()


def _handler(studio: Studio, allowed_hosts: set[str], quiet: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "motionlcm-studio"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def _send(self, response: Response, head: bool = False) -> None:
            self.send_response(response.status)
            headers = {"Content-Type": response.content_type, "Content-Length": str(len(response.body)),
                       "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP,
                       "Referrer-Policy": "no-referrer", **response.headers}  # fmt: skip
            if response.content_type == "application/json":
                headers.setdefault("Cache-Control", "no-store")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(response.body)

        def _refuse(self, status: int, message: str) -> None:
            self.close_connection = True
            self._send(Response.json(status, {"error": message, "field": None}))

        def _dispatch(self, method: str) -> None:
            if self.headers.get("Host", "") not in allowed_hosts:
                return self._refuse(421, f"Host: {self.headers.get('Host')!r} is not this studio's address")
            body = b""
            if method == "POST":
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    return self._refuse(411, "Content-Length: required")
                if int(length) > MAX_BODY:
                    return self._refuse(413, f"body: {int(length):,} bytes; at most {MAX_BODY:,}")
                body = self.rfile.read(int(length))
            response = studio.handle(method, self.path, body, self.headers.get("Content-Type", ""))
            self._send(response, head=method == "HEAD")

        def do_GET(self) -> None:  # noqa: N802 (http.server's names)
            self._dispatch("GET")

        def do_HEAD(self) -> None:  # noqa: N802
            self._dispatch("HEAD")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._dispatch("PUT")

        def do_DELETE(self) -> None:  # noqa: N802
            self._dispatch("DELETE")

        def do_OPTIONS(self) -> None:  # noqa: N802 (no CORS preflight is ever granted)
            self._refuse(405, "OPTIONS: cross-origin requests are not allowed")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            if not quiet:
                sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def make_server(studio: Studio, host: str = "127.0.0.1", port: int = 8765, quiet: bool = True) -> ThreadingHTTPServer:
    """A bound server (port 0: any free port); `serve_forever()` runs it."""
    server = _Server((host, port), _handler(studio, set(), quiet))
    actual = server.server_address[1]
    names = {host, "localhost", "127.0.0.1", "[::1]"} if host in ("127.0.0.1", "localhost", "::1") else {host}
    allowed = {f"{name}:{actual}" for name in names}
    if host in ("0.0.0.0", "::"):
        allowed = _AnyHost()  # bound to every interface on purpose (--host 0.0.0.0 warns)
    server.RequestHandlerClass = _handler(studio, allowed, quiet)
    return server


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # the listen backlog: the default 5 resets connections of a burst of clients
    daemon_threads = True


class _AnyHost(set):
    def __contains__(self, item: object) -> bool:
        return True
