"""Security headers on every response (pages, API, errors, static files), and HSTS over https.

One policy for everything the service serves itself: scripts, styles, images and requests only from its
own origin, no inline script or style (the workbench keeps its JavaScript in static files and htmx is told
not to inject a style or evaluate code), no framing, no plugins. A response that already carries a
Content-Security-Policy keeps it: the API docs pages set their own (``service.ops.docs``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
    "connect-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'",
))
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """Adds the headers at ``http.response.start``; HSTS when the request came over https (after the trusted
    proxy's headers are applied) or when the deployment says it is served over https only."""

    def __init__(self, app: ASGIApp, https_only: bool = False, hsts_seconds: int = 31_536_000) -> None:
        self.app = app
        self.https_only = https_only
        self.hsts = f"max-age={hsts_seconds}; includeSubDomains".encode() if hsts_seconds > 0 else b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = self.https_only or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in HEADERS if h[0] not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                if https and self.hsts:
                    headers.append((b"strict-transport-security", self.hsts))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def proxy_layer(app: ASGIApp, trusted: str) -> ASGIApp:
    """Believe X-Forwarded-For/-Proto only from the proxies named (comma-separated addresses or CIDR ranges,
    ``*`` for any): the client's address (the throttle's key) and the scheme (Secure cookies, HSTS) are then
    the proxy's word. Empty: no proxy is trusted and the headers are ignored."""
    if not trusted.strip():
        return app
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    hosts = [part.strip() for part in trusted.split(",") if part.strip()]
    return ProxyHeadersMiddleware(app, trusted_hosts=hosts)
