"""Callback URLs checked as URLs: parsed into scheme, host, port and path, then compared.

A string prefix test lets `http://127.0.0.1:8206@127.0.0.1:8207/hook` (userinfo),
`http://127.0.0.1:8206.evil.com/` and `http://127.0.0.1:82067/` through a prefix
`http://127.0.0.1:8206`, so the signed webhook would go to another host or port. Here a
URL is taken apart first, anything another HTTP client could read differently is refused
(userinfo, control characters, an invalid port, a fragment, a backslash, dot segments),
and only then is it matched against the configured prefixes part by part.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# C0 controls, DEL and C1 controls: Python's urlsplit silently drops tab, CR and LF, which
# would make the checked URL differ from the one a client later sends.
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


@dataclass(frozen=True)
class HttpUrl:
    """An absolute http(s) URL's parts as they are compared; `path` is never empty."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def covers(self, other: HttpUrl) -> bool:
        """Whether `other` lies under this prefix: same scheme, host and port, and a path
        that starts with this path on a segment boundary (`/hook` covers `/hook` and
        `/hook/x`, not `/hooks`)."""
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        if self.path.endswith("/"):
            return other.path.startswith(self.path)
        return other.path == self.path or other.path.startswith(self.path + "/")


def parse_http_url(value: str) -> HttpUrl:
    """Parse an absolute http(s) URL strictly.

    Raises:
        ValueError: saying what is wrong (scheme, host, userinfo, port, control
            characters, fragment, backslash, dot segments).
    """
    if _CONTROL.search(value):
        raise ValueError(f"{value!r} contains a space or control character")
    if "\\" in value:
        raise ValueError(f"{value!r} contains a backslash")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError(f"{value!r} carries userinfo (user@host); give the host alone")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} has an invalid port") from exc
    if port == 0:
        raise ValueError(f"{value!r} has an invalid port")
    if "#" in value:
        raise ValueError(f"{value!r} has a fragment (#...), which is never sent")
    path = parts.path or "/"
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        raise ValueError(f"{value!r} has . or .. path segments")
    return HttpUrl(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], path)


def default_prefix(callback_url: str) -> str:
    """The prefix an agent gets when it configures none: its callback URL's origin."""
    return parse_http_url(callback_url).origin + "/"


def check_callback_url(url: str, prefixes: Iterable[str]) -> None:
    """Raise ValueError unless `url` is a well-formed http(s) URL under one of `prefixes`
    (themselves validated with `parse_http_url` when the configuration was loaded)."""
    parsed = parse_http_url(url)
    allowed = list(prefixes)
    if not any(parse_http_url(prefix).covers(parsed) for prefix in allowed):
        listed = ", ".join(allowed) if allowed else "none configured"
        raise ValueError(f"{url!r} is outside this agent's callback_prefixes ({listed})")
