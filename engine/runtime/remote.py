"""A remote backend: the same task layer over an OpenAI-compatible completions endpoint (a vLLM or
llama.cpp server cluster), for users who outgrow one machine.

Differences from the local runtime, by necessity of the HTTP API: stop tags are sent as text stops
(token ids are the server's business; the closing tag, which the API strips, is put back); each
sample is one request with its own seed (``min(n, concurrency)`` in flight); perplexity comes from
the returned log-probabilities of the generated tokens (``ppl`` and ``ppl_output`` are the same:
the API does not return prompt log-probabilities without echo support). Nothing is sent anywhere
except ``url``; the URL is whatever the user configured.

What is accepted from the URL and the server: ``http://`` and ``https://`` only (a ``file://`` or
``ftp://`` URL is refused before anything is opened); redirects are not followed (a 3xx answer is
an error naming where it pointed, so the ``Authorization`` header never goes to another host);
an answer larger than ``max_response_bytes`` (32 MiB, ``LOGOS_REMOTE_MAX_BYTES``) is refused
after reading that much. Credentials are kept out of everything written: a ``user:password@`` in
the URL becomes a Basic ``Authorization`` header and is removed from ``url``, the query string's
values are shown as ``***``; ``url`` (the redacted form) is what the run's provenance, events,
messages and logs carry, and the API key is only ever sent in the header.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Iterable

from engine.runtime.job import collect
from engine.runtime.llama import Cancelled, GenerationStats, Sample
from engine.runtime.sampling import SamplingParams, sample_seed


class RemoteError(RuntimeError):
    """The server could not be reached or refused the request; the message quotes it."""


DEFAULT_MAX_RESPONSE = 32 * 1024 * 1024
SCHEMES = ("http", "https")


def max_response_from(env) -> int:
    """The answer size limit an environment asks for (LOGOS_REMOTE_MAX_BYTES; ``os.environ`` passed
    in by the engine process); missing, not a whole number or not positive: the default."""
    try:
        value = int(env.get("LOGOS_REMOTE_MAX_BYTES", DEFAULT_MAX_RESPONSE))
    except (TypeError, ValueError):
        return DEFAULT_MAX_RESPONSE
    return value if value > 0 else DEFAULT_MAX_RESPONSE


def split_url(url: str) -> tuple[str, str, str | None, str]:
    """(URL to send requests to, URL safe to show and store, Basic credentials or None, query).

    Refuses anything but an http(s) URL with a host. The shown form has no ``user:password@``
    and no query values."""
    if not isinstance(url, str) or not url.strip():
        raise RemoteError("the server URL is empty: give one like http://127.0.0.1:8000/v1")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise RemoteError(f"not a usable server URL ({exc})") from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in SCHEMES:
        raise RemoteError(f"the server URL must start with http:// or https://, not "
                          f"{(scheme + '://') if scheme else repr(url[:20])} (nothing was opened)")
    if not host:
        raise RemoteError("the server URL has no host: give one like http://127.0.0.1:8000/v1")
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    query = parts.query
    send = urllib.parse.urlunsplit((scheme, netloc, path, "", ""))
    shown_query = "&".join(f"{k}=***" for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True))
    shown = send + (f"?{shown_query}" if shown_query else "")
    credentials = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return send, shown, credentials, query


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would send the same headers, Authorization included,
    to wherever the server points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _where(location: str | None) -> str:
    if not location:
        return "no location"
    try:
        parts = urllib.parse.urlsplit(location)
        return f"{parts.scheme}://{parts.hostname}" if parts.hostname else "a path on the same server"
    except ValueError:
        return "an unreadable location"


class RemoteRuntime:
    def __init__(self, url: str, model: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, timeout: float = 600.0, max_response_bytes: int | None = None) -> None:
        self._send_url, self.url, self._basic, self._query = split_url(url)
        self.model = model
        self.api_key = api_key
        self.concurrency = max(1, int(concurrency))
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes or DEFAULT_MAX_RESPONSE
        self.path = None
        self._models = self._get("/models").get("data", [])
        if self.model is None and self._models:
            self.model = self._models[0].get("id")

    # ---------------------------------------------------------------- HTTP
    def _request(self, method: str, route: str, body: dict | None = None, timeout: float | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        target = self._send_url + route + (f"?{self._query}" if self._query else "")
        req = urllib.request.Request(target, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        elif self._basic:
            req.add_header("Authorization", f"Basic {self._basic}")
        cap = self.max_response_bytes
        try:
            with _OPENER.open(req, timeout=timeout or self.timeout) as resp:
                raw = resp.read(cap + 1)
                if len(raw) > cap:
                    raise RemoteError(f"{self.url}{route}: the answer is larger than {cap} bytes "
                                      "(LOGOS_REMOTE_MAX_BYTES); not read")
                return json.loads(raw.decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                raise RemoteError(f"{self.url}{route}: the server redirects (HTTP {exc.code} to "
                                  f"{_where(exc.headers.get('Location'))}); redirects are not followed: "
                                  "give the final URL") from None
            detail = exc.read(500).decode("utf-8", errors="replace")
            raise RemoteError(f"{self.url}{route}: HTTP {exc.code}: {detail}") from None
        except UnicodeDecodeError:
            raise RemoteError(f"{self.url}{route}: the answer is not UTF-8 text") from None
        except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
            if isinstance(exc, json.JSONDecodeError):
                raise RemoteError(f"{self.url}{route}: the answer is not JSON ({exc})") from None
            raise RemoteError(f"{self.url}{route}: cannot reach the server ({getattr(exc, 'reason', exc)})") from None

    def _get(self, route: str) -> dict:
        return self._request("GET", route, timeout=30)

    # ---------------------------------------------------------------- runtime interface
    def describe(self) -> dict:
        return {"path": None, "url": self.url, "model": self.model, "architecture": None, "n_vocab": None,
                "n_ctx": None, "backend": "remote", "n_gpu_layers": None,
                "plan": {"device": f"remote server {self.url}", "reasons": [
                    f"generation runs on {self.url} (model {self.model}); nothing runs locally"]}}

    def token_id(self, text: str) -> int | None:
        return None  # the server's vocabulary is not known here: tags are text stops

    def close(self) -> None:
        pass

    def _one(self, prompt: str, params: SamplingParams, seed: int, stops: list[str],
             stop_count: int, grammar: str | None) -> dict:
        body = {"prompt": prompt, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                "top_p": params.top_p, "top_k": params.top_k, "min_p": params.min_p,
                "repeat_penalty": params.repetition_penalty, "seed": seed, "logprobs": 1, "n": 1}
        if self.model:
            body["model"] = self.model
        if stops and stop_count == 1:
            body["stop"] = stops
        if grammar:
            body["grammar"] = grammar
        return self._request("POST", "/completions", body)

    def generate(self, prompt: str, n: int = 1, params: SamplingParams | None = None, seed: int = 0, *,
                 on_sample: Callable[[Sample], None] | None = None, **kwargs):
        """:meth:`stream`, with the samples also collected (in index order) and returned."""
        return collect(self.stream, prompt, n, params, seed, on_sample, **kwargs)

    def stream(self, prompt: str, n: int = 1, params: SamplingParams | None = None, seed: int = 0, *,
               stop_ids: Iterable[int] = (), stop_count: int = 1, stop_texts: Iterable[str] = (),
               grammar: str | None = None, cancel: threading.Event | None = None,
               score_prompt: bool = True, on_sample: Callable[[Sample], None] | None = None,
               on_progress: Callable[[int, int, int, float], None] | None = None,
               on_prompt: Callable[[int, int], None] | None = None) -> GenerationStats:
        """Generate ``n`` samples, each handed to ``on_sample`` as it arrives and not kept."""
        params = params or SamplingParams()
        params.check()
        if not isinstance(prompt, str):
            raise ValueError("the remote backend takes prompt text")
        cancel = cancel or threading.Event()
        stops = [s for s in stop_texts if s]
        stats = GenerationStats()
        t0 = time.perf_counter()
        done = 0
        pool = ThreadPoolExecutor(max_workers=min(n, self.concurrency))
        try:
            futures = {}
            next_i = 0
            while next_i < n or futures:
                while next_i < n and len(futures) < self.concurrency:
                    sd = sample_seed(seed, next_i)
                    futures[pool.submit(self._one, prompt, params, sd, stops, stop_count, grammar)] = (next_i, sd)
                    next_i += 1
                finished, _ = wait(list(futures), timeout=0.2, return_when=FIRST_COMPLETED)
                if cancel.is_set():
                    raise Cancelled("cancelled")
                for fut in finished:
                    i, sd = futures.pop(fut)
                    s = self._sample(fut.result(), i, sd, stops, stop_count)
                    stats.tokens_generated += s.n_tokens
                    done += 1
                    if on_sample is not None:
                        on_sample(s)
                    if on_progress is not None:
                        on_progress(done, n, stats.tokens_generated, time.perf_counter() - t0)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            stats.decode_s = time.perf_counter() - t0
        return stats

    def _sample(self, resp: dict, index: int, seed: int, stops: list[str], stop_count: int) -> Sample:
        choices = resp.get("choices") or []
        if not choices:
            raise RemoteError(f"{self.url}/completions: no choices in the answer")
        ch = choices[0]
        text = ch.get("text") or ""
        reason = ch.get("finish_reason")
        if stops and stop_count > 1:  # count closing tags ourselves
            pos, seen = 0, 0
            for _ in range(stop_count):
                hits = [(text.find(s, pos), s) for s in stops if text.find(s, pos) >= 0]
                if not hits:
                    break
                at, s = min(hits)
                pos = at + len(s)
                seen += 1
            if seen == stop_count:
                text, reason = text[:pos], "stop"
        elif reason == "stop" and stops and not any(text.endswith(s) for s in stops):
            text += stops[0]  # the API strips the stop string; the record needs its closing tag
        lp = (ch.get("logprobs") or {}).get("token_logprobs") or []
        lp = [float(x) for x in lp if x is not None]
        ppl = math.exp(-sum(lp) / len(lp)) if lp else float("nan")
        usage = resp.get("usage") or {}
        n_tok = int(usage.get("completion_tokens") or len(lp))
        stop = {"stop": "stop_token", "length": "length"}.get(reason, reason or "eog")
        if reason == "stop" and not stops:
            stop = "eog"
        return Sample(index=index, seed=seed, tokens=[], text=text, logprobs=lp, stop=stop,
                      ppl=ppl, ppl_output=ppl, n_tokens=n_tok)
