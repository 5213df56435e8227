"""The remote backend's limits, against small servers on 127.0.0.1: http(s) only, no redirects
(the Authorization header never reaches another host), a capped answer size, and credentials
kept out of provenance, events and logs."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.runtime.remote import RemoteError, RemoteRuntime

COMPLETION = {"choices": [{"text": "CCO", "finish_reason": "stop",
                           "logprobs": {"token_logprobs": [-0.1, -0.2, -0.3]}}],
              "usage": {"completion_tokens": 3}}


class _Server:
    """An OpenAI-like server; ``routes`` maps a path to (status, headers, body bytes)."""

    def __init__(self, routes=None, host="127.0.0.1"):
        self.routes = routes or {}
        self.seen: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.seen.append((self.command, self.path, dict(self.headers)))
                path = self.path.split("?")[0]
                status, headers, body = outer.routes.get(path, (None, None, None)) if path in outer.routes \
                    else outer.default(path)
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def default(self, path):
        if path.endswith("/models"):
            return 200, {"Content-Type": "application/json"}, json.dumps({"data": [{"id": "tiny"}]}).encode()
        if path.endswith("/completions"):
            return 200, {"Content-Type": "application/json"}, json.dumps(COMPLETION).encode()
        return 404, {}, b"no"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    made = []

    def make(**kw):
        made.append(_Server(**kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.mark.parametrize("url,words", [
    ("file:///etc/passwd", "must start with http:// or https://, not file://"),
    ("ftp://127.0.0.1/v1", "not ftp://"),
    ("127.0.0.1:8000/v1", "must start with http:// or https://"),
    ("http:///v1", "has no host"),
    ("http://127.0.0.1:99999/v1", "not a usable server URL"),
    ("", "URL is empty"),
])
def test_only_http_and_https(url, words):
    with pytest.raises(RemoteError, match=words.replace("(", r"\(").replace("/", "/")):
        RemoteRuntime(url)


def test_a_file_url_opens_nothing(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "models").write_text(json.dumps({"data": [{"id": "local-file"}]}))
    with pytest.raises(RemoteError, match="nothing was opened"):
        RemoteRuntime(tmp_path.as_uri())


def test_redirects_are_not_followed(servers):
    other = servers(host="127.0.0.1")
    first = servers(routes={"/v1/models": (302, {"Location": f"http://localhost:{other.port}/v1/models"}, b"")})
    with pytest.raises(RemoteError, match=r"redirects \(HTTP 302 to http://localhost\); redirects are not followed"):
        RemoteRuntime(f"http://127.0.0.1:{first.port}/v1", api_key="sk-TOPSECRET")
    assert len(first.seen) == 1 and first.seen[0][2].get("Authorization") == "Bearer sk-TOPSECRET"
    assert other.seen == []  # the key never reached the other host


def test_the_answer_size_is_capped(servers):
    """The limit comes in as an argument; the engine process reads it from LOGOS_REMOTE_MAX_BYTES."""
    from engine.runtime.remote import DEFAULT_MAX_RESPONSE, max_response_from

    big = json.dumps({"data": [{"id": "x" * (2 << 20)}]}).encode()
    srv = servers(routes={"/v1/models": (200, {"Content-Type": "application/json"}, big)})
    limit = max_response_from({"LOGOS_REMOTE_MAX_BYTES": str(1 << 20)})
    with pytest.raises(RemoteError, match=r"/v1/models: the answer is larger than 1048576 bytes"):
        RemoteRuntime(f"http://127.0.0.1:{srv.port}/v1", max_response_bytes=limit)
    assert max_response_from({}) == max_response_from({"LOGOS_REMOTE_MAX_BYTES": "lots"}) == DEFAULT_MAX_RESPONSE
    assert RemoteRuntime(f"http://127.0.0.1:{srv.port}/v1").model.startswith("xxx")  # 32 MiB default


def test_credentials_in_the_url_become_a_header_and_are_never_shown(servers):
    srv = servers()
    rt = RemoteRuntime(f"http://alice:pa%40ss@127.0.0.1:{srv.port}/v1?key=QSECRET")
    assert rt.url == f"http://127.0.0.1:{srv.port}/v1?key=***"
    method, path, headers = srv.seen[0]
    assert path == "/v1/models?key=QSECRET"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"alice:pa@ss").decode()
    text = json.dumps(rt.describe())
    assert "pa@ss" not in text and "pa%40ss" not in text and "QSECRET" not in text and "alice" not in text


def test_no_secret_reaches_provenance_events_or_logs(servers, tmp_path):
    """Through the engine process: load a remote model with a password in the URL and an API key,
    run a job into a project; neither appears in the events, the engine's stderr or the file."""
    from engine.process.client import EngineClient

    srv = servers()
    secrets = ["pa@ss", "pa%40ss", "QSECRET", "sk-TOPSECRET", "alice"]
    project = tmp_path / "remote.logos"
    events = []
    with EngineClient(on_event=events.append) as client:
        client.load_model_wait(url=f"http://alice:pa%40ss@127.0.0.1:{srv.port}/v1?key=QSECRET",
                               api_key="sk-TOPSECRET")
        job = client.submit("molecule", n=2, seed=1, project=str(project), sampling={"max_new_tokens": 8})
        done = list(client.iter_job(job, timeout=120))
        assert done[-1]["status"] == "finished", done[-1]
        stderr = client.stderr_tail
    assert all(h[2].get("Authorization") == "Bearer sk-TOPSECRET" for h in srv.seen)
    written = json.dumps(events) + stderr
    data = project.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("remote.logos-*"))
    for secret in secrets:
        assert secret not in written, secret
        assert secret.encode() not in data, secret
    assert f"127.0.0.1:{srv.port}".encode() in data  # the (redacted) server is in the provenance
