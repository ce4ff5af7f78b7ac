"""Serving the office's page with waitress: on loopback unless `web.listen` says otherwise, and
off loopback never without `web.users`.

waitress speaks plain HTTP only. For HTTPS a proxy on the same machine (Caddy, nginx) holds
the certificate and forwards to the loopback address; `web.trusted_proxy` names it, so that
its X-Forwarded-Proto marks the requests that came over TLS (and the cookie Secure).
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from invoice_mailer.config.model import Config
from invoice_mailer.office.webapp import create_app

log = logging.getLogger(__name__)

THREADS = 4  # an office's few people; each request reads the ledger for milliseconds


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (a name that cannot be looked up
    is not: better refuse than expose)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(a[4][0]).is_loopback for a in found)


def exposure_problem(config: Config) -> str | None:
    """Why the page must not start as configured; None when it may."""
    web = config.web
    if web.users or is_loopback(web.host):
        return None
    return (
        f"the page would listen on {web.listen}, beyond this machine, with no user: add "
        "users under web.users (each hash from `invoice-mailer hash-password`), or listen on "
        "127.0.0.1"
    )


def serve(config: Config) -> None:
    """Serve until the process is stopped (SIGTERM, Ctrl-C); nothing to finish: read-only."""
    import waitress

    web = config.web
    proxy = {}
    if web.trusted_proxy:
        proxy = {
            "trusted_proxy": web.trusted_proxy,
            "trusted_proxy_headers": {"x-forwarded-proto", "x-forwarded-for"},
            "clear_untrusted_proxy_headers": True,
        }
    log.info(
        "office page on http://%s/ (%s)",
        web.listen,
        f"{len(web.users)} user(s)" if web.users else "no login: this machine only",
    )
    waitress.serve(
        create_app(config),
        host=web.host,
        port=web.port,
        threads=THREADS,
        ident="invoice-mailer",
        expose_tracebacks=False,
        max_request_body_size=64 * 1024,
        **proxy,
    )
