"""How the simulator reaches the app: signed requests, in process or over HTTP.

Every request is signed as Twilio signs it: `RequestValidator(token).compute_signature`
over the absolute public URL (with its query) and the POSTed parameters, in the
`X-Twilio-Signature` header; the token is the app's (`config.Wiring.signing_token`).
Neither transport follows HTTP redirects: the interpreter does, so that each hop is
signed for its own URL, as Twilio does.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from flask import Flask
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

from simulator import config

log = logging.getLogger(__name__)

USER_AGENT = "TwilioProxy/1.1 (plp-alert simulator)"


class TransportError(Exception):
    """The app could not be reached at all (refused, timed out, outside the app)."""


@dataclass(frozen=True)
class TransportResponse:
    """The app's answer to one request."""

    status: int
    content_type: str  # the Content-Type header as sent ("" when none)
    body: bytes
    location: str | None = None  # the Location header of a redirect

    @property
    def mimetype(self) -> str:
        """Return the media type without parameters, lowercased ("text/xml")."""
        return self.content_type.split(";", 1)[0].strip().lower()


class Transport(Protocol):
    """A way to send the app the requests Twilio would send."""

    def post(self, url: str, params: dict[str, str]) -> TransportResponse:
        """POST `params` as a form to the absolute `url`, signed."""
        ...

    def get(self, url: str) -> TransportResponse:
        """GET the absolute `url` (its query included), signed."""
        ...


def twilio_signature(token: str, url: str, params: dict[str, str] | None = None) -> str:
    """Return the `X-Twilio-Signature` Twilio would send for this request."""
    return RequestValidator(token).compute_signature(url, params or {})


class WsgiTransport:
    """Reach a Flask app in process through its test client (tests, the dev page).

    Absolute URLs are mapped onto the app by stripping `base_url` (default: the app's
    PUBLIC_BASE_URL); requests are signed with `token` (default: the app's signing
    token). A URL outside `base_url` cannot be reached and raises `TransportError`.
    An exception in the app is answered 500, as a real server would answer it.
    """

    def __init__(
        self, app: Flask, *, base_url: str | None = None, token: str | None = None
    ) -> None:
        wired = config.WIRING_KEY in app.extensions
        if not wired and (base_url is None or token is None):
            raise ValueError("an app the simulator is not wired to needs base_url and token")
        self.app = app
        self.base_url = (base_url or config.settings(app).public_base_url).rstrip("/")
        self.token = token if token is not None else config.wiring(app).signing_token()
        self._client = app.test_client()

    def post(self, url: str, params: dict[str, str]) -> TransportResponse:
        """POST `params` as a form to the absolute `url`, signed."""
        return self._request("POST", url, params)

    def get(self, url: str) -> TransportResponse:
        """GET the absolute `url` (its query included), signed."""
        return self._request("GET", url, None)

    def _request(self, method: str, url: str, params: dict[str, str] | None) -> TransportResponse:
        path = self._path_of(url)
        headers = {
            SIGNATURE_HEADER: twilio_signature(self.token, url, params),
            "User-Agent": USER_AGENT,
        }
        try:
            response = self._client.open(path, method=method, data=params, headers=headers)
        except Exception as err:  # the app's own bug: a real server would answer 500
            log.exception("app raised url=%s method=%s", url, method)
            return TransportResponse(500, "text/plain", f"{type(err).__name__}: {err}".encode())
        with response:
            return TransportResponse(
                status=response.status_code,
                content_type=response.headers.get("Content-Type", ""),
                body=response.get_data(),
                location=response.headers.get("Location"),
            )

    def _path_of(self, url: str) -> str:
        if url != self.base_url and not url.startswith(self.base_url + "/"):
            raise TransportError(f"{url} is outside the app at {self.base_url}")
        path = url[len(self.base_url) :]
        return path if path.startswith("/") else "/" + path


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0917 (urllib)
        return None  # answered as it is: the interpreter follows it, signing the new URL


class HttpTransport:
    """Reach the app over HTTP, as Twilio does (the carrier process, live demos).

    `token` defaults to the signing token of the current app: construct it inside an
    app context, or pass the token.
    """

    def __init__(self, timeout: float = 15.0, *, token: str | None = None) -> None:
        self.timeout = timeout
        self.token = token if token is not None else config.wiring().signing_token()
        self._opener = urllib.request.build_opener(_NoRedirects)

    def post(self, url: str, params: dict[str, str]) -> TransportResponse:
        """POST `params` as a form to the absolute `url`, signed."""
        return self._request("POST", url, params)

    def get(self, url: str) -> TransportResponse:
        """GET the absolute `url` (its query included), signed."""
        return self._request("GET", url, None)

    def _request(self, method: str, url: str, params: dict[str, str] | None) -> TransportResponse:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise TransportError(f"{url} is not an http(s) URL")
        data = urllib.parse.urlencode(params).encode() if params is not None else None
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            url,
            data=data,
            method=method,
            headers={
                SIGNATURE_HEADER: twilio_signature(self.token, url, params),
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return _response_of(response.status, response.headers, response.read())
        except urllib.error.HTTPError as err:  # a non-2xx answer is still an answer
            with err:
                return _response_of(err.code, err.headers, err.read())
        except (urllib.error.URLError, OSError) as err:
            raise TransportError(f"{url} could not be reached: {err}") from err


def _response_of(status: int, headers, body: bytes) -> TransportResponse:
    return TransportResponse(
        status=status,
        content_type=headers.get("Content-Type", ""),
        body=body,
        location=headers.get("Location"),
    )
