"""Per-key rate limits: requests per minute (RPM) and tokens per minute (TPM), via the `limits` library.

Storage comes from ``server.rate_limit_storage``: ``memory://`` keeps counters in this process (one
server process), ``redis://host:port/db`` shares them between every process and machine that points
at the same Redis.

- RPM is a *moving* window: a request is admitted only if fewer than RPM requests were admitted in the
  last 60 seconds. The check-and-count is one atomic step (a lock in memory, a Lua script in Redis),
  so parallel requests can never overshoot it.
- TPM is a fixed one-minute window of tokens. Tokens are known only when a request ends, so a request
  is admitted while its key has tokens left in the current window, and its tokens are counted when it
  finishes (a request in flight can take a key past its TPM; the next one then waits).

A refused request gets 429 with ``Retry-After`` (seconds until the window frees up) and the
``x-ratelimit-*`` headers OpenAI clients know.
"""

from __future__ import annotations

import math
import time
from contextlib import suppress

from limits import RateLimitItemPerMinute
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string

from groundglass.errors import GroundglassError
from groundglass.server.auth import Principal
from groundglass.server.errors import APIError


class RateLimits:
    def __init__(self, storage_uri: str) -> None:
        uri = storage_uri if storage_uri.startswith("async+") else "async+" + storage_uri
        options: dict[str, str | bool] = {"wrap_exceptions": True}
        if "redis" in uri.split("://", 1)[0]:
            options["implementation"] = "redispy"  # the `redis` package; limits defaults to coredis
        try:
            self.storage = storage_from_string(uri, **options)
        except ConfigurationError as exc:
            raise GroundglassError(
                f"bad server.rate_limit_storage {storage_uri!r}: {exc}",
                "use memory:// or redis://HOST:PORT/DB",
            ) from exc
        self.uri = storage_uri
        self.requests = MovingWindowRateLimiter(self.storage)
        self.tokens = FixedWindowRateLimiter(self.storage)

    async def admit(self, who: Principal) -> None:
        """Count one request against ``who``'s RPM, or raise a 429 APIError (nothing counted)."""
        rpm, tpm = RateLimitItemPerMinute(who.rpm), RateLimitItemPerMinute(who.tpm)
        try:
            if not await self.tokens.test(tpm, "tpm", who.key_id):
                stats = await self.tokens.get_window_stats(tpm, "tpm", who.key_id)
                raise _too_many(
                    f"token rate limit reached: {who.tpm} tokens per minute for key {who.key_id}",
                    stats.reset_time,
                    who,
                    tokens_left=0,
                )
            if not await self.requests.hit(rpm, "rpm", who.key_id):
                stats = await self.requests.get_window_stats(rpm, "rpm", who.key_id)
                raise _too_many(
                    f"rate limit reached: {who.rpm} requests per minute for key {who.key_id}",
                    stats.reset_time,
                    who,
                    requests_left=0,
                )
        except StorageError as exc:
            raise APIError(
                503,
                f"the rate-limit storage {self.uri} is unavailable: {exc}",
                code="rate_limit_storage_unavailable",
            ) from exc

    async def charge_tokens(self, who: Principal, tokens: int) -> None:
        """Count a finished request's tokens against ``who``'s TPM."""
        if tokens <= 0:
            return
        # The request is done; a storage outage shows up on the next admit.
        with suppress(StorageError):
            await self.tokens.hit(RateLimitItemPerMinute(who.tpm), "tpm", who.key_id, cost=tokens)

    async def check(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:
            return False

    async def reset(self) -> None:
        await self.storage.reset()


def _too_many(
    message: str,
    reset_time: float,
    who: Principal,
    *,
    requests_left: int | None = None,
    tokens_left: int | None = None,
) -> APIError:
    retry_after = max(1, math.ceil(reset_time - time.time()))
    headers = {
        "Retry-After": str(retry_after),
        "x-ratelimit-limit-requests": str(who.rpm),
        "x-ratelimit-limit-tokens": str(who.tpm),
        "x-ratelimit-reset-requests": f"{retry_after}s",
    }
    if requests_left is not None:
        headers["x-ratelimit-remaining-requests"] = str(requests_left)
    if tokens_left is not None:
        headers["x-ratelimit-remaining-tokens"] = str(tokens_left)
    return APIError(429, f"{message}; retry in {retry_after} s", code="rate_limit_exceeded", headers=headers)
