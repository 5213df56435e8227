"""A remote backend: the same task layer over an OpenAI-compatible completions endpoint (a vLLM or
llama.cpp server cluster), for users who outgrow one machine.

Differences from the local runtime, by necessity of the HTTP API: stop tags are sent as text stops
(token ids are the server's business; the closing tag, which the API strips, is put back); each
sample is one request with its own seed (``min(n, concurrency)`` in flight); perplexity comes from
the returned log-probabilities of the generated tokens (``ppl`` and ``ppl_output`` are the same:
the API does not return prompt log-probabilities without echo support). Nothing is sent anywhere
except ``url``; the URL is whatever the user configured.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Iterable

from engine.runtime.llama import Cancelled, GenerationStats, Sample
from engine.runtime.sampling import SamplingParams, sample_seed


class RemoteError(RuntimeError):
    """The server could not be reached or refused the request; the message quotes it."""


class RemoteRuntime:
    def __init__(self, url: str, model: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, timeout: float = 600.0) -> None:
        self.url = url.rstrip("/")
        if not self.url.endswith("/v1"):
            self.url += "/v1"
        self.model = model
        self.api_key = api_key
        self.concurrency = max(1, int(concurrency))
        self.timeout = timeout
        self.path = None
        self._models = self._get("/models").get("data", [])
        if self.model is None and self._models:
            self.model = self._models[0].get("id")

    # ---------------------------------------------------------------- HTTP
    def _request(self, method: str, route: str, body: dict | None = None, timeout: float | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + route, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:500]
            raise RemoteError(f"{self.url}{route}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise RemoteError(f"{self.url}{route}: cannot reach the server ({getattr(exc, 'reason', exc)})") from None
        except json.JSONDecodeError as exc:
            raise RemoteError(f"{self.url}{route}: the answer is not JSON ({exc})") from None

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
                 stop_ids: Iterable[int] = (), stop_count: int = 1, stop_texts: Iterable[str] = (),
                 grammar: str | None = None, cancel: threading.Event | None = None,
                 score_prompt: bool = True, on_sample: Callable[[Sample], None] | None = None,
                 on_progress: Callable[[int, int, int, float], None] | None = None,
                 on_prompt: Callable[[int, int], None] | None = None):
        params = params or SamplingParams()
        params.check()
        if not isinstance(prompt, str):
            raise ValueError("the remote backend takes prompt text")
        cancel = cancel or threading.Event()
        stops = [s for s in stop_texts if s]
        stats = GenerationStats()
        samples: list[Sample] = []
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
                    samples.append(s)
                    stats.tokens_generated += s.n_tokens
                    done += 1
                    if on_sample is not None:
                        on_sample(s)
                    if on_progress is not None:
                        on_progress(done, n, stats.tokens_generated, time.perf_counter() - t0)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            stats.decode_s = time.perf_counter() - t0
        samples.sort(key=lambda s: s.index)
        return samples, stats

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
