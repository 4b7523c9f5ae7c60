"""The one HTTP call that alerts (Slack) and delivery (the push provider) make: a JSON POST without redirects,
and the Retry-After header that tells how long to back off. Standard library only: no client to configure."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import urllib.error
import urllib.request
from collections.abc import Mapping


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answered as errors: urllib would turn a redirected POST into a GET without body, and
    would forward the request and its secrets (a webhook URL, an Authorization header) to whatever host the
    redirect names."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float
         ) -> tuple[int, Mapping[str, str], str]:
    """POST `body`; returns (status, headers, text) for any HTTP answer, raises OSError when there is none."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(65536).decode("utf-8", "replace") if exc.fp is not None else ""
        except OSError:
            text = ""
        finally:
            exc.close()
        return exc.code, exc.headers, text


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
