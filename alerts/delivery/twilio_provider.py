"""The Twilio phone provider: calls and SMS through the official `twilio` library.

The REST client is built on first use, never at import or app creation. Every request
goes to `TWILIO_API_BASE` (tests point it at a validating mock of Twilio's published
API). Twilio's refusals become the domain errors of `alerts.delivery.provider` through one
table, `TWILIO_ERRORS`, which `error_for` also applies to the `ErrorCode` of a status
callback.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from alerts.delivery.provider import (
    CallRequest,
    CarrierStatus,
    InvalidNumberError,
    OptedOutError,
    ProviderConfigurationError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    RecordingAudio,
    RegionNotEnabledError,
    Sent,
    SmsNotSupportedError,
    SmsRequest,
    UndeliverableError,
    UnknownSidError,
)
from core.settings import Settings

log = logging.getLogger(__name__)

# The library builds every URL from this prefix; `TWILIO_API_BASE` replaces it.
TWILIO_API_BASE = "https://api.twilio.com"
# One bound for connecting and for each read: a stuck carrier must not hold a worker.
HTTP_TIMEOUT_SECONDS = 10.0
CALL_STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
# Waits for the end of a voicemail greeting, so the message is left after the beep.
MACHINE_DETECTION = "DetectMessageEnd"
RECORDING_TYPES = {"mp3": "audio/mpeg", "wav": "audio/x-wav"}
DOC_URL = "https://www.twilio.com/docs/api/errors/{code}"

GENERIC_MESSAGE = "The phone carrier refused the request (Twilio error {code})."
UNAVAILABLE_MESSAGE = "The phone carrier cannot be reached right now; it will be tried again."
RATE_LIMITED_MESSAGE = "The phone carrier asks us to slow down; it will be tried again."
RECORDING_MISSING_MESSAGE = "The recording is not available at the carrier."
UNKNOWN_SID_MESSAGE = "The phone carrier does not know this call or message."
# One page of a number's latest calls or SMS (newest first): those since a claim fit in it.
RECENT_PAGE_SIZE = 20
# What a request to Twilio can raise besides a bug: its refusals and network failures.
CARRIER_ERRORS = (TwilioRestException, TwilioServiceException, requests.RequestException)


@dataclass(frozen=True)
class ErrorRule:
    """How one Twilio error code reads to the people using the system."""

    error: type[ProviderError]
    message: str


# Twilio error codes -> domain errors. Each code's page: DOC_URL (e.g. .../errors/21211).
TWILIO_ERRORS: dict[int, ErrorRule] = {
    # Invalid 'To' phone number / number not valid / 'To' cannot be reached.
    21211: ErrorRule(InvalidNumberError, "The phone number is not valid."),
    21217: ErrorRule(InvalidNumberError, "The phone number does not appear to be valid."),
    21214: ErrorRule(InvalidNumberError, "The phone number cannot be reached."),
    # 'To' is not a mobile number / cannot be a landline.
    21614: ErrorRule(
        SmsNotSupportedError,
        "This number cannot receive text messages (it is not a mobile number).",
    ),
    21635: ErrorRule(
        SmsNotSupportedError, "This number cannot receive text messages (it is a landline)."
    ),
    # The recipient replied STOP to this sender.
    21610: ErrorRule(
        OptedOutError,
        "This person replied STOP: text messages to them are blocked until they reply START.",
    ),
    # Geographic permissions of the account (Twilio console, Voice/Messaging Geo permissions).
    21408: ErrorRule(
        RegionNotEnabledError,
        "The Twilio account may not text this country: enable it in the SMS "
        "geographic permissions.",
    ),
    21215: ErrorRule(
        RegionNotEnabledError,
        "The Twilio account may not call this country: enable it in the Voice "
        "geographic permissions.",
    ),
    21612: ErrorRule(
        RegionNotEnabledError,
        "The Twilio account cannot text this number from this sender: check the "
        "geographic permissions and the sender.",
    ),
    20429: ErrorRule(RateLimitedError, RATE_LIMITED_MESSAGE),
    # Delivery failures, mostly reported by status callbacks (ErrorCode).
    30003: ErrorRule(UndeliverableError, "The phone is switched off or out of reach."),
    30004: ErrorRule(
        UndeliverableError, "The message was blocked by the recipient or the network."
    ),
    30005: ErrorRule(
        UndeliverableError, "The number is unknown to the network (it may be out of service)."
    ),
    30006: ErrorRule(
        UndeliverableError, "The number is a landline or its network cannot receive text messages."
    ),
    30007: ErrorRule(UndeliverableError, "The network filtered the message as unwanted."),
    30008: ErrorRule(UndeliverableError, "The network could not deliver the message."),
    # Credentials and sender: nothing works until an operator fixes the settings.
    20003: ErrorRule(
        ProviderConfigurationError,
        "Twilio refused the credentials: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
    ),
    20404: ErrorRule(
        ProviderConfigurationError, "Twilio does not know this account: check TWILIO_ACCOUNT_SID."
    ),
    21212: ErrorRule(
        ProviderConfigurationError, "The caller ID is not a valid number: check TWILIO_FROM_NUMBER."
    ),
    21606: ErrorRule(
        ProviderConfigurationError,
        "The sender cannot send text messages: check TWILIO_FROM_NUMBER or "
        "TWILIO_MESSAGING_SERVICE_SID.",
    ),
}

_DIGITS = re.compile(r"\+?\d[\d ().-]{4,}\d")


def error_for(
    code: int | str | None, status: int | None = None, detail: str | None = None
) -> ProviderError:
    """Return the domain error for a Twilio error code and/or HTTP status.

    `code` may come from a REST error or from a status callback's `ErrorCode` (a string);
    `status` is the HTTP status when there is one; `detail` is Twilio's own message, kept
    (with phone numbers masked) for the logs only.
    """
    number = _code_number(code)
    detail = mask_numbers(detail) if detail else None
    # The library reports the HTTP status as the code when the body has none.
    twilio_code = number if number is not None and number != status else None
    doc_url = DOC_URL.format(code=twilio_code) if twilio_code is not None else None
    code_text = str(number) if number is not None else None
    rule = TWILIO_ERRORS.get(twilio_code) if twilio_code is not None else None
    if rule is not None:
        return rule.error(rule.message, code=code_text, doc_url=doc_url, detail=detail)
    if status is not None and status >= 500:
        return ProviderUnavailableError(
            UNAVAILABLE_MESSAGE, code=code_text, doc_url=doc_url, detail=detail
        )
    if status == 429:
        return RateLimitedError(
            RATE_LIMITED_MESSAGE, code=code_text, doc_url=doc_url, detail=detail
        )
    return ProviderError(
        GENERIC_MESSAGE.format(code=code_text or status or "unknown"),
        code=code_text,
        doc_url=doc_url,
        detail=detail,
    )


def mask_numbers(text: str) -> str:
    """Return `text` with every phone-number-like run of digits cut to its last 4 digits."""
    return _DIGITS.sub(lambda match: last_digits(match.group()), text)


def last_digits(number: str | None) -> str:
    """Return what the logs may show of a phone number: its last 4 digits."""
    digits = re.sub(r"\D", "", number or "")
    return f"***{digits[-4:]}" if digits else "-"


def _code_number(code: int | str | None) -> int | None:
    if code is None or code == "":
        return None
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


class RedirectingHttpClient(TwilioHttpClient):
    """The library's HTTP client, sending requests for Twilio's API to `api_base`."""

    def __init__(self, api_base: str, timeout: float):
        # No retries (the requests default): a repeated POST could ring a member twice.
        super().__init__(timeout=timeout)
        self.api_base = api_base.rstrip("/")

    def redirect(self, url: str) -> str:
        """Return `url` with Twilio's API prefix replaced by `api_base`."""
        if url == TWILIO_API_BASE or url.startswith(TWILIO_API_BASE + "/"):
            return self.api_base + url[len(TWILIO_API_BASE) :]
        return url

    def request(self, method: str, url: str, *args, **kwargs) -> Response:
        """Send one request to the API base (see `TwilioHttpClient.request`)."""
        return super().request(method, self.redirect(url), *args, **kwargs)

    def download(self, url: str, auth: tuple[str, str]) -> requests.Response:
        """GET `url` (redirected) as raw bytes, which the library's responses cannot carry."""
        session = self.session or requests.Session()
        return session.get(
            self.redirect(url), auth=auth, timeout=self.timeout, allow_redirects=False
        )


class TwilioProvider:
    """Places calls, sends SMS and fetches recordings through Twilio's REST API."""

    name = "twilio"

    def __init__(self, settings: Settings, *, timeout: float = HTTP_TIMEOUT_SECONDS):
        if not settings.twilio_account_sid or not settings.twilio_auth_tokens:
            raise ProviderConfigurationError(
                "Twilio is selected but TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN is not set."
            )
        self.settings = settings
        self.timeout = timeout
        self._client: Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """Return the REST client, building it on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = Client(
                        self.settings.twilio_account_sid,
                        self.settings.twilio_auth_tokens[0],
                        http_client=RedirectingHttpClient(
                            self.settings.twilio_api_base, self.timeout
                        ),
                    )
        return self._client

    def close(self) -> None:
        """Close the client's pooled HTTP connections, if it was built."""
        if self._client is not None and self._client.http_client.session is not None:
            self._client.http_client.session.close()

    def place_call(self, request: CallRequest) -> Sent:
        """Start an outbound call; raise a `ProviderError` when Twilio refuses it."""
        options = {
            "to": request.to,
            "from_": self.settings.twilio_from_number,
            "url": request.answer_url,
            "method": "POST",
            "status_callback": request.status_callback_url,
            "status_callback_method": "POST",
            "status_callback_event": list(CALL_STATUS_EVENTS),
            "timeout": request.timeout_seconds,
        }
        if request.machine_detection:
            options["machine_detection"] = MACHINE_DETECTION
        try:
            call = self.client.calls.create(**options)
        except CARRIER_ERRORS as err:
            raise self._refused("call", request.to, err) from err
        log.info(
            "twilio call placed to=%s sid=%s status=%s",
            last_digits(request.to),
            call.sid,
            call.status,
        )
        return Sent(sid=call.sid, status=call.status)

    def send_sms(self, request: SmsRequest) -> Sent:
        """Send an SMS (through the messaging service when set); raise on refusal."""
        options = {
            "to": request.to,
            "body": request.body,
            "status_callback": request.status_callback_url,
        }
        if self.settings.twilio_messaging_service_sid:
            options["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
        else:
            options["from_"] = self.settings.twilio_from_number
        try:
            message = self.client.messages.create(**options)
        except CARRIER_ERRORS as err:
            raise self._refused("sms", request.to, err) from err
        log.info(
            "twilio sms sent to=%s sid=%s status=%s",
            last_digits(request.to),
            message.sid,
            message.status,
        )
        return Sent(sid=message.sid, status=message.status)

    def fetch_recording(self, recording_url: str, *, audio_format: str = "mp3") -> RecordingAudio:
        """Download a recording's audio (`mp3` or `wav`) with the account's credentials."""
        if audio_format not in RECORDING_TYPES:
            raise ValueError(f"audio_format must be one of {', '.join(RECORDING_TYPES)}")
        url = self._recording_media_url(recording_url, audio_format)
        sid = url.rsplit("/", 1)[-1].split(".", 1)[0]
        http = self.client.http_client
        auth = (self.settings.twilio_account_sid, self.settings.twilio_auth_tokens[0])
        try:
            response = http.download(url, auth)
        except requests.RequestException as err:
            raise self._refused("recording", None, err, sid=sid) from err
        if response.status_code != 200:
            if response.status_code == 404:
                error = ProviderError(
                    RECORDING_MISSING_MESSAGE,
                    code=_body_code(response),
                    detail=f"HTTP 404 for recording {sid}",
                )
            else:
                error = error_for(
                    _body_code(response) or response.status_code,
                    response.status_code,
                    _body_message(response),
                )
            log.warning(
                "twilio recording refused sid=%s http_status=%s code=%s",
                sid,
                response.status_code,
                error.code,
            )
            raise error
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        log.info("twilio recording fetched sid=%s bytes=%d", sid, len(response.content))
        return RecordingAudio(
            content=response.content, content_type=content_type or RECORDING_TYPES[audio_format]
        )

    def delete_recording(self, recording_sid: str) -> None:
        """Delete Twilio's copy of a recording; one Twilio no longer has (404) is done."""
        try:
            self.client.recordings(recording_sid).delete()
        except TwilioRestException as err:
            if err.status == 404:
                log.info("twilio recording already gone sid=%s", recording_sid)
                return
            raise self._refused("recording deletion", None, err, sid=recording_sid) from err
        except CARRIER_ERRORS as err:
            raise self._refused("recording deletion", None, err, sid=recording_sid) from err
        log.info("twilio recording deleted sid=%s", recording_sid)

    def fetch_call_status(self, sid: str) -> CarrierStatus:
        """Fetch a call (GET .../Calls/{Sid}.json); `UnknownSidError` when Twilio has none."""
        call = self._fetch("call", sid, lambda: self.client.calls(sid).fetch())
        return CarrierStatus(
            status=call.status,
            answered_by=call.answered_by,
            duration_seconds=_seconds(call.duration),
            price=call.price,
            price_unit=call.price_unit,
        )

    def fetch_message_status(self, sid: str) -> CarrierStatus:
        """Fetch a message (GET .../Messages/{Sid}.json); `UnknownSidError` when Twilio has none."""
        message = self._fetch("message", sid, lambda: self.client.messages(sid).fetch())
        return CarrierStatus(
            status=message.status,
            price=message.price,
            price_unit=message.price_unit,
            error_code=str(message.error_code) if message.error_code is not None else None,
            error_message=message.error_message,
        )

    def find_recent(self, to: str, channel: str, since: datetime) -> list[str]:
        """Return the SIDs of the calls or SMS (`channel`) the API sent `to` since `since`.

        One page of `GET .../Calls.json?To=` (or Messages), kept by `date_created`, oldest
        first. Not filtered by `StartTime>`/`DateSent>`: a call still in Twilio's queue has
        no start time, an SMS not yet sent no date sent, and those are the very steps a
        killed worker leaves in doubt (a fan-out queues at Twilio); missed, they go twice.
        """
        kind = "call" if channel == "call" else "sms"
        collection = self.client.calls if kind == "call" else self.client.messages
        try:
            page = list(collection.page(to=to, page_size=RECENT_PAGE_SIZE))
        except CARRIER_ERRORS as err:
            raise self._refused(f"{kind} list", to, err) from err
        except TwilioException as err:  # a refused page: the library keeps only the answer
            raise self._refused(f"{kind} list", to, _page_refusal(err)) from err
        since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
        found = sorted(
            (record.date_created or since, record.sid)  # undated: kept, never sent twice
            for record in page  # the API's own: not a <Dial> leg, a reply, an inbound SMS
            if record.direction == "outbound-api" and (record.date_created or since) >= since
        )
        log.info("twilio %s listed to=%s found=%d", kind, last_digits(to), len(found))
        return [sid for _created, sid in found]

    def _fetch(self, what: str, sid: str, fetch):
        try:
            resource = fetch()
        except TwilioRestException as err:
            if err.status == 404:
                raise UnknownSidError(
                    UNKNOWN_SID_MESSAGE, code=_code_text(err.code), detail=f"HTTP 404 for {sid}"
                ) from err
            raise self._refused(f"{what} fetch", None, err, sid=sid) from err
        except CARRIER_ERRORS as err:
            raise self._refused(f"{what} fetch", None, err, sid=sid) from err
        log.info("twilio %s fetched sid=%s status=%s", what, sid, resource.status)
        return resource

    def _recording_media_url(self, recording_url: str, audio_format: str) -> str:
        # The account's credentials go only to Twilio (or to the configured API base).
        allowed = (TWILIO_API_BASE + "/", self.settings.twilio_api_base + "/")
        if not recording_url.startswith(allowed):
            raise ProviderError(
                "The recording address is not a Twilio address.",
                detail=f"refused recording host={urlsplit(recording_url).netloc}",
            )
        path = urlsplit(recording_url).path
        if path.endswith(tuple(f".{ext}" for ext in RECORDING_TYPES)):
            return recording_url
        return f"{recording_url}.{audio_format}"

    def _refused(
        self, what: str, to: str | None, err: Exception, *, sid: str | None = None
    ) -> ProviderError:
        """Translate a library or network error, logging it with safe context."""
        if isinstance(err, TwilioRestException):
            error = error_for(err.code, err.status, err.msg)
            status = err.status
        elif isinstance(err, TwilioServiceException):
            error = error_for(err.code, err.status, err.detail or err.title)
            status = err.status
        else:  # requests.RequestException: timeout, refused connection, broken response
            error = ProviderUnavailableError(UNAVAILABLE_MESSAGE, detail=type(err).__name__)
            status = None
        log.warning(
            "twilio %s refused to=%s sid=%s http_status=%s code=%s error=%s detail=%s",
            what,
            last_digits(to),
            sid or "-",
            status,
            error.code,
            type(error).__name__,
            error.detail,
        )
        return error


def _page_refusal(err: TwilioException) -> TwilioRestException:
    """Return a refused list page's answer as the REST error the library raises elsewhere."""
    response = err.args[1] if len(err.args) > 1 else None
    body = _body_json(response) if isinstance(response, Response) else {}
    status = response.status_code if isinstance(response, Response) else 500
    code = body.get("code") if isinstance(body.get("code"), int) else status
    return TwilioRestException(status, "", msg=body.get("message") or str(err), code=code)


def _seconds(value: str | None) -> int | None:
    """Return a duration Twilio gives as text ("4"), None when absent or not a number."""
    return int(value) if value and value.isascii() and value.isdigit() else None


def _code_text(code: int | str | None) -> str | None:
    number = _code_number(code)
    return str(number) if number is not None else None


def _body_json(response: requests.Response) -> dict:
    try:
        body = json.loads(response.text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _body_code(response: requests.Response) -> str | None:
    code = _body_json(response).get("code")
    return str(code) if code is not None else None


def _body_message(response: requests.Response) -> str | None:
    return _body_json(response).get("message")
