"""Absolute URLs as the carrier and e-mail readers reach the app: under `PUBLIC_BASE_URL`."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def public_url(endpoint: str, /, **values: object) -> str:
    """Build the absolute public URL of `endpoint`, with or without a request context.

    Jobs run outside any request, and behind a proxy the request's own host is not the
    one Twilio used, so URLs are built from the setting, never from `request.host_url`.
    """
    app = current_app
    base = urlsplit(app.extensions["settings"].public_base_url)
    adapter = app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)
