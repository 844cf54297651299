"""The Twilio provider, through the real twilio library.

Contract tests send every request the provider makes to Stoplight Prism serving Twilio's
own OpenAPI description, and assert Prism reports no violation. That description defines
no error answers, and no recording audio, so those paths run against a small local
server of the tests' own that answers the way Twilio documents (`{"code": ..., "message":
..., "more_info": ..., "status": ...}`), reached the same way: through `TWILIO_API_BASE`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from alerts.delivery import twilio_provider
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
    get_provider,
)
from alerts.delivery.twilio_provider import (
    HTTP_TIMEOUT_SECONDS,
    TWILIO_ERRORS,
    RedirectingHttpClient,
    TwilioProvider,
    error_for,
)
from core.app import PROJECT_ROOT, create_app
from core.settings import Settings, load_settings
from tests.contract.prism import Prism, free_port, unavailable_reason
from tests.support import TEST_SECRET, app_config

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "auth-token-current-0123456789"
FROM_NUMBER = "+3225112233"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2
PUBLIC_BASE_URL = "https://plp.example.be"
MEMBER = "+32470123456"
RECORDING_SID = "RE" + "00112233445566778899aabbccddeeff"
# Twilio's RecordingUrl, as a recording status callback gives it: no extension.
RECORDING_URL = (
    f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}"
)
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00" + bytes(range(256))
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)
CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")

# What the team expects of each Twilio code: every row of TWILIO_ERRORS, no more, no less.
EXPECTED_ERRORS = {
    21211: InvalidNumberError,
    21217: InvalidNumberError,
    21214: InvalidNumberError,
    21614: SmsNotSupportedError,
    21635: SmsNotSupportedError,
    21610: OptedOutError,
    21408: RegionNotEnabledError,
    21215: RegionNotEnabledError,
    21612: RegionNotEnabledError,
    20429: RateLimitedError,
    30003: UndeliverableError,
    30004: UndeliverableError,
    30005: UndeliverableError,
    30006: UndeliverableError,
    30007: UndeliverableError,
    30008: UndeliverableError,
    20003: ProviderConfigurationError,
    20404: ProviderConfigurationError,
    21212: ProviderConfigurationError,
    21606: ProviderConfigurationError,
}
HTTP_STATUS_OF = {20429: 429, 20003: 401, 20404: 404}


def twilio_values(api_base: str, **overrides: str) -> dict[str, str]:
    """Return the Twilio settings of a test app whose REST API lives at `api_base`."""
    return {
        "PHONE_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_API_BASE": api_base,
        # Outside tests the app talks to Twilio's own host only; these talk to mocks.
        "TWILIO_API_BASE_ALLOW_ANY": "1",
        **overrides,
    }


def twilio_settings(tmp_path, api_base: str, **overrides: str) -> Settings:
    """Return validated settings for the Twilio provider, without building an app."""
    values = {"SECRET_KEY": TEST_SECRET, **twilio_values(api_base, **overrides)}
    return load_settings(values, tmp_path / "instance", PROJECT_ROOT)


def call_request(**fields) -> CallRequest:
    """Return a realistic outbound call to a member."""
    return CallRequest(
        **{
            "to": MEMBER,
            "answer_url": f"{PUBLIC_BASE_URL}/ivr/alerts/41/answer?delivery=7",
            "status_callback_url": f"{PUBLIC_BASE_URL}/ivr/status",
            "machine_detection": True,
            "timeout_seconds": 25,
            **fields,
        }
    )


def sms_request() -> SmsRequest:
    """Return a realistic alert SMS to a member."""
    return SmsRequest(
        to=MEMBER,
        body="ALERTE PLP-PARC #41: cambriolage rue Haute. Repondez 1.",
        status_callback_url=f"{PUBLIC_BASE_URL}/sms/status",
    )


@pytest.fixture
def make_provider(tmp_path):
    """Factory: a TwilioProvider on `api_base`, its connections closed after the test."""
    providers = []

    def make(api_base: str, *, timeout: float = HTTP_TIMEOUT_SECONDS, **overrides: str):
        provider = TwilioProvider(twilio_settings(tmp_path, api_base, **overrides), timeout=timeout)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        provider.close()


# --- Prism: Twilio's published contract ----------------------------------------------


@pytest.fixture(scope="session")
def prism(tmp_path_factory):
    """Prism serving Twilio's OpenAPI description, for the whole session."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI") == "true":  # CI installs Prism: a skip there hides a gap
            pytest.fail(f"{reason} (the Twilio contract tests must run in CI)")
        pytest.skip(reason)
    server = Prism(tmp_path_factory.mktemp("prism") / "prism.log")
    server.start()
    yield server
    server.stop()


def through_prism(prism: Prism, provider: TwilioProvider, action):
    """Run `action` against Prism and return its result, failing on any violation."""
    offset = prism.log_offset()
    try:
        result = action()
    except ProviderError:
        response = provider.client.http_client._test_only_last_response
        prism.flush_log()
        pytest.fail(
            f"Prism refused the request: HTTP {response.status_code} {response.text}\n"
            f"{prism.log(offset)}"
        )
    response = provider.client.http_client._test_only_last_response
    prism.flush_log()
    assert prism.violations(response.status_code, response.headers, offset) == []
    return result


def last_request(provider: TwilioProvider):
    """Return the last request the library sent (its own test hook)."""
    return provider.client.http_client._test_only_last_request


def test_place_call_meets_twilio_contract(prism, make_provider):
    """A call with every option the provider uses is valid for Twilio's API description."""
    provider = make_provider(prism.url)
    sent = through_prism(prism, provider, lambda: provider.place_call(call_request()))
    request = last_request(provider)
    assert request.url == f"{prism.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.data == {
        "To": MEMBER,
        "From": FROM_NUMBER,
        "Url": f"{PUBLIC_BASE_URL}/ivr/alerts/41/answer?delivery=7",
        "Method": "POST",
        "StatusCallback": f"{PUBLIC_BASE_URL}/ivr/status",
        "StatusCallbackMethod": "POST",
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "MachineDetection": "DetectMessageEnd",
        "Timeout": 25,
    }
    assert isinstance(sent, Sent)
    assert CALL_SID.match(sent.sid)
    assert sent.status


def test_place_call_without_machine_detection_meets_twilio_contract(prism, make_provider):
    """A call without answering-machine detection sends no MachineDetection and stays valid."""
    provider = make_provider(prism.url)
    through_prism(
        prism, provider, lambda: provider.place_call(call_request(machine_detection=False))
    )
    assert "MachineDetection" not in last_request(provider).data


def test_sms_through_messaging_service_meets_twilio_contract(prism, make_provider):
    """With a messaging service the SMS goes through it, not From, and is valid."""
    provider = make_provider(prism.url, TWILIO_MESSAGING_SERVICE_SID=MESSAGING_SERVICE_SID)
    sent = through_prism(prism, provider, lambda: provider.send_sms(sms_request()))
    request = last_request(provider)
    assert request.url == f"{prism.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.data == {
        "To": MEMBER,
        "Body": sms_request().body,
        "StatusCallback": f"{PUBLIC_BASE_URL}/sms/status",
        "MessagingServiceSid": MESSAGING_SERVICE_SID,
    }
    assert MESSAGE_SID.match(sent.sid)
    assert sent.status


def test_sms_from_number_meets_twilio_contract(prism, make_provider):
    """Without a messaging service the SMS is sent From the PLP number, and is valid."""
    provider = make_provider(prism.url)
    sent = through_prism(prism, provider, lambda: provider.send_sms(sms_request()))
    request = last_request(provider)
    assert request.data == {
        "To": MEMBER,
        "Body": sms_request().body,
        "StatusCallback": f"{PUBLIC_BASE_URL}/sms/status",
        "From": FROM_NUMBER,
    }
    assert MESSAGE_SID.match(sent.sid)


def test_delete_recording_meets_twilio_contract(prism, make_provider):
    """Deleting Twilio's copy of a recording is a DELETE of the Recording resource."""
    provider = make_provider(prism.url)
    assert through_prism(prism, provider, lambda: provider.delete_recording(RECORDING_SID)) is None
    request = last_request(provider)
    assert request.method == "DELETE"
    assert request.url == (
        f"{prism.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.json"
    )
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)


def test_prism_reports_a_request_that_breaks_the_contract(prism, make_provider):
    """The violation check sees a call without From: 422, listed, and logged by Prism."""
    provider = make_provider(prism.url)
    offset = prism.log_offset()
    response = provider.client.request(
        "POST",
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        data={"To": MEMBER, "Url": f"{PUBLIC_BASE_URL}/ivr/answer"},
    )
    assert response.status_code == 422
    assert "'From'" in response.text
    prism.flush_log()
    violations = prism.violations(response.status_code, response.headers, offset)
    assert violations[0] == "HTTP 422: Prism found the request invalid"
    assert any("Request did not pass the validation rules" in v for v in violations[1:])


# --- A local server answering the way Twilio does --------------------------------------


def twilio_error(status: int, code: int) -> Response:
    """Return an error the way Twilio's REST API words it (the message names the number)."""
    body = {
        "code": code,
        "message": f"The 'To' number {MEMBER} is refused.",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response(json.dumps(body), status=status, content_type="application/json")


class FakeTwilio:
    """A local HTTP server playing Twilio; the first path segments pick the answer.

    `/ok`: 201 with a call or message; `/error/<status>/<code>`: a Twilio error;
    `/problem/<status>/<code>`: an RFC 9457 error; `/status/<status>`: a bare HTTP error;
    `/recording`: the recording's audio by extension, 404 for any other recording.
    """

    def __init__(self):
        self.requests: list[tuple[str, str, tuple[str, str] | None, dict]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def base(self, scenario: str) -> str:
        """Return the TWILIO_API_BASE that makes this server answer `scenario`."""
        return f"{self.url}/{scenario}"

    @Request.application
    def app(self, request: Request) -> Response:
        scenario, _, rest = request.path.strip("/").partition("/2010-04-01/")
        auth = request.authorization
        credentials = (auth.username, auth.password) if auth else None
        self.requests.append((scenario, rest, credentials, request.form.to_dict(flat=False)))
        if not rest.startswith(f"Accounts/{ACCOUNT_SID}/"):
            return Response(f"unexpected path {request.path}", status=418)
        if credentials != (ACCOUNT_SID, AUTH_TOKEN):
            return twilio_error(401, 20003)
        kind, *args = scenario.split("/")
        answer = getattr(self, f"answer_{kind}", None)
        if answer is None:
            return Response(f"unknown scenario {scenario}", status=418)
        return answer(rest, request, *args)

    @staticmethod
    def answer_ok(rest: str, request: Request) -> Response:
        kinds = {"/Calls.json": "CA" + "1" * 32, "/Messages.json": "SM" + "2" * 32}
        sid = next((sid for suffix, sid in kinds.items() if rest.endswith(suffix)), None)
        if sid is None:
            return Response("not a create", status=418)
        body = {"sid": sid, "status": "queued", "to": request.form["To"]}
        return Response(json.dumps(body), status=201, content_type="application/json")

    @staticmethod
    def answer_error(_rest: str, _request: Request, status: str, code: str) -> Response:
        return twilio_error(int(status), int(code))

    @staticmethod
    def answer_problem(_rest: str, _request: Request, status: str, code: str) -> Response:
        body = {
            "type": f"https://www.twilio.com/docs/api/errors/{code}",
            "title": "Invalid parameter",
            "status": int(status),
            "code": int(code),
            "detail": f"The number {MEMBER} is not valid.",
        }
        return Response(
            json.dumps(body), status=int(status), content_type="application/problem+json"
        )

    @staticmethod
    def answer_status(_rest: str, _request: Request, status: str) -> Response:
        return Response(
            "<html>upstream trouble</html>", status=int(status), content_type="text/html"
        )

    @staticmethod
    def answer_recording(rest: str, _request: Request) -> Response:
        recording = f"Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}"
        if rest == f"{recording}.mp3":
            return Response(MP3, content_type="audio/mpeg")
        if rest == f"{recording}.wav":
            return Response(WAV, content_type="audio/x-wav")
        return twilio_error(404, 20404)


@pytest.fixture(scope="module")
def fake_twilio():
    """The local Twilio stand-in, for this module."""
    server = FakeTwilio()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=10)


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def send(provider: TwilioProvider, operation: str) -> Sent:
    """Place a call or send an SMS, by name."""
    if operation == "call":
        return provider.place_call(call_request())
    return provider.send_sms(sms_request())


def test_every_error_code_has_its_expected_row():
    """The table maps exactly the expected codes, each to the expected domain error."""
    assert {code: rule.error for code, rule in TWILIO_ERRORS.items()} == EXPECTED_ERRORS


@pytest.mark.parametrize("operation", ["call", "sms"])
@pytest.mark.parametrize("code", sorted(EXPECTED_ERRORS))
def test_twilio_error_maps_to_domain_error(fake_twilio, make_provider, code, operation):
    """A Twilio error answer raises the table's domain error, message, code and doc link."""
    status = HTTP_STATUS_OF.get(code, 400)
    provider = make_provider(fake_twilio.base(f"error/{status}/{code}"))
    with pytest.raises(ProviderError) as caught:
        send(provider, operation)
    err = caught.value
    assert type(err) is EXPECTED_ERRORS[code]
    assert err.message == TWILIO_ERRORS[code].message
    assert err.code == str(code)
    assert err.doc_url == f"https://www.twilio.com/docs/api/errors/{code}"
    assert err.retryable is (code == 20429)
    assert MEMBER not in err.detail  # the carrier's words keep only the last digits
    assert "***3456" in err.detail


def test_unmapped_code_is_a_generic_error_keeping_the_code(fake_twilio, make_provider):
    """A code outside the table raises a plain ProviderError that keeps the code and link."""
    provider = make_provider(fake_twilio.base("error/400/21620"))
    with pytest.raises(ProviderError) as caught:
        provider.send_sms(sms_request())
    err = caught.value
    assert type(err) is ProviderError
    assert err.code == "21620"
    assert err.doc_url == "https://www.twilio.com/docs/api/errors/21620"
    assert err.message == "The phone carrier refused the request (Twilio error 21620)."


def test_rfc9457_error_maps_through_the_same_table(fake_twilio, make_provider):
    """An RFC 9457 problem answer (TwilioServiceException) maps by its code too."""
    provider = make_provider(fake_twilio.base("problem/400/21211"))
    with pytest.raises(InvalidNumberError) as caught:
        provider.place_call(call_request())
    assert caught.value.code == "21211"
    assert MEMBER not in caught.value.detail


@pytest.mark.parametrize(
    ("scenario", "error", "code"),
    [
        ("status/500", ProviderUnavailableError, "500"),
        ("status/503", ProviderUnavailableError, "503"),
        ("error/500/20500", ProviderUnavailableError, "20500"),
        ("status/429", RateLimitedError, "429"),
    ],
)
def test_http_status_without_mapped_code(fake_twilio, make_provider, scenario, error, code):
    """5xx answers mean the carrier is unavailable and 429 means slow down: both retryable."""
    provider = make_provider(fake_twilio.base(scenario))
    with pytest.raises(ProviderError) as caught:
        provider.place_call(call_request())
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retryable is True


def test_deleting_a_recording_twilio_no_longer_has_is_done(fake_twilio, make_provider):
    """A 404 (deleted already, by hand or by Twilio's own retention) is not an error."""
    provider = make_provider(fake_twilio.base("error/404/20404"))
    assert provider.delete_recording(RECORDING_SID) is None
    _scenario, rest, _credentials, _form = fake_twilio.requests[-1]
    assert rest == f"Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.json"


@pytest.mark.parametrize(
    ("scenario", "error"),
    [("status/503", ProviderUnavailableError), ("error/401/20003", ProviderError)],
)
def test_a_refused_recording_deletion_raises(fake_twilio, make_provider, scenario, error):
    """An outage or wrong credentials: the deletion is refused, to be tried again."""
    provider = make_provider(fake_twilio.base(scenario))
    with pytest.raises(error):
        provider.delete_recording(RECORDING_SID)


def test_timeout_is_provider_unavailable(make_provider, silent_port):
    """A carrier that never answers raises ProviderUnavailableError after the timeout."""
    provider = make_provider(f"http://127.0.0.1:{silent_port}", timeout=0.5)
    with pytest.raises(ProviderUnavailableError) as caught:
        provider.send_sms(sms_request())
    assert caught.value.detail == "ReadTimeout"
    assert caught.value.retryable is True


def test_refused_connection_is_provider_unavailable(make_provider):
    """A carrier that cannot be reached raises ProviderUnavailableError."""
    provider = make_provider(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderUnavailableError) as caught:
        provider.place_call(call_request())
    assert caught.value.detail == "ConnectionError"


def test_status_callback_error_code_maps_with_the_table():
    """A status callback's ErrorCode (a string, no HTTP status) maps with the same table."""
    err = error_for("30005", detail=f"Unknown destination {MEMBER}")
    assert type(err) is UndeliverableError
    assert (err.code, err.doc_url) == ("30005", "https://www.twilio.com/docs/api/errors/30005")
    assert err.detail == "Unknown destination ***3456"
    unknown = error_for("")
    assert type(unknown) is ProviderError
    assert unknown.code is None


def test_requests_are_logged_with_last_digits_only(fake_twilio, make_provider, caplog):
    """Logs carry to= (last 4 digits), sid= and code=, never a full number or a body."""
    caplog.set_level(logging.INFO)
    make_provider(fake_twilio.base("ok")).send_sms(sms_request())
    with pytest.raises(SmsNotSupportedError):
        make_provider(fake_twilio.base("error/400/21614")).send_sms(sms_request())
    sent, refused = (
        r.getMessage() for r in caplog.records if r.name == "alerts.delivery.twilio_provider"
    )
    assert sent == f"twilio sms sent to=***3456 sid=SM{'2' * 32} status=queued"
    assert "to=***3456" in refused
    assert "code=21614" in refused
    assert MEMBER not in caplog.text
    assert MEMBER[1:] not in caplog.text
    assert "cambriolage" not in caplog.text


def test_fetch_recording_downloads_mp3_with_account_credentials(fake_twilio, make_provider):
    """The recording's mp3 is fetched from RecordingUrl + .mp3 with the account's credentials."""
    provider = make_provider(fake_twilio.base("recording"))
    audio = provider.fetch_recording(RECORDING_URL)
    assert audio == RecordingAudio(content=MP3, content_type="audio/mpeg")
    scenario, path, credentials, _form = fake_twilio.requests[-1]
    assert scenario == "recording"
    assert path == f"Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.mp3"
    assert credentials == (ACCOUNT_SID, AUTH_TOKEN)


def test_fetch_recording_as_wav(fake_twilio, make_provider):
    """The wav format asks for RecordingUrl + .wav and reports audio/x-wav."""
    provider = make_provider(fake_twilio.base("recording"))
    audio = provider.fetch_recording(RECORDING_URL, audio_format="wav")
    assert audio == RecordingAudio(content=WAV, content_type="audio/x-wav")


def test_fetch_missing_recording(fake_twilio, make_provider):
    """A recording the carrier does not have raises a plain ProviderError, not a config one."""
    provider = make_provider(fake_twilio.base("recording"))
    with pytest.raises(ProviderError) as caught:
        provider.fetch_recording(RECORDING_URL.replace(RECORDING_SID, "RE" + "f" * 32))
    assert type(caught.value) is ProviderError
    assert caught.value.message == "The recording is not available at the carrier."


def test_fetch_recording_with_rejected_credentials(fake_twilio, make_provider):
    """Credentials Twilio refuses (20003) are a configuration error."""
    provider = make_provider(fake_twilio.base("recording"), TWILIO_AUTH_TOKEN="wrong-token")
    with pytest.raises(ProviderConfigurationError) as caught:
        provider.fetch_recording(RECORDING_URL)
    assert caught.value.code == "20003"


def test_fetch_recording_when_carrier_is_down(fake_twilio, make_provider):
    """A 5xx while downloading a recording is ProviderUnavailableError."""
    provider = make_provider(fake_twilio.base("status/502"))
    with pytest.raises(ProviderUnavailableError):
        provider.fetch_recording(RECORDING_URL)


def test_fetch_recording_refuses_foreign_hosts(fake_twilio, make_provider):
    """The account's credentials are never sent to a URL outside Twilio's API."""
    provider = make_provider(fake_twilio.base("recording"))
    before = len(fake_twilio.requests)
    with pytest.raises(ProviderError, match="not a Twilio address"):
        provider.fetch_recording(f"{fake_twilio.url}/elsewhere/Recordings/{RECORDING_SID}")
    with pytest.raises(ProviderError, match="not a Twilio address"):
        provider.fetch_recording(f"https://api.twilio.com.example.net/{RECORDING_SID}")
    assert len(fake_twilio.requests) == before


# --- Building the provider ------------------------------------------------------------


def test_first_auth_token_is_used_while_rotating(fake_twilio, make_provider):
    """With several tokens (rotation) requests authenticate with the first one."""
    provider = make_provider(fake_twilio.base("ok"), TWILIO_AUTH_TOKEN=f"{AUTH_TOKEN},old-token")
    assert provider.place_call(call_request()) == Sent(sid="CA" + "1" * 32, status="queued")
    assert fake_twilio.requests[-1][2] == (ACCOUNT_SID, AUTH_TOKEN)


def test_client_is_built_on_first_use_only(tmp_path, redis_url, fake_twilio, monkeypatch):
    """Neither app creation nor get_provider builds the Twilio client; the first request does."""
    built = []
    real_client = twilio_provider.Client

    def spy(*args, **kwargs):
        client = real_client(*args, **kwargs)
        built.append(client)
        return client

    monkeypatch.setattr(twilio_provider, "Client", spy)
    app = create_app(
        app_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'test.db'}",
            redis_url,
            **twilio_values(fake_twilio.base("ok")),
        )
    )
    provider = get_provider(app)
    assert isinstance(provider, TwilioProvider)
    assert get_provider(app) is provider
    assert built == []
    try:
        provider.send_sms(sms_request())
        provider.place_call(call_request())
    finally:
        provider.close()
    assert len(built) == 1
    http_client = built[0].http_client
    assert isinstance(http_client, RedirectingHttpClient)
    assert http_client.timeout == HTTP_TIMEOUT_SECONDS
    assert (built[0].username, built[0].password) == (ACCOUNT_SID, AUTH_TOKEN)


def test_import_builds_no_client():
    """Importing the module creates no Twilio client and registers nothing (create_app does)."""
    code = (
        "import gc\n"
        "from alerts.delivery import provider, twilio_provider\n"
        "from twilio.rest import Client\n"
        "assert 'twilio' not in provider._FACTORIES\n"
        "print(sum(isinstance(o, Client) for o in gc.get_objects()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


# --- Status fetches (carrier status polling) ---------------------------------------------

FETCHED_CALL_SID = "CA" + "0123456789abcdef" * 2
FETCHED_MESSAGE_SID = "SM" + "fedcba9876543210" * 2


def test_fetch_call_status_meets_twilio_contract(prism, make_provider):
    """A call's status is a GET of its Call resource; the answer's fields are kept as given."""
    provider = make_provider(prism.url)
    status = through_prism(prism, provider, lambda: provider.fetch_call_status(FETCHED_CALL_SID))
    request = last_request(provider)
    assert request.method == "GET"
    assert request.url == (
        f"{prism.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{FETCHED_CALL_SID}.json"
    )
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    # Twilio's own example answer, as Prism serves it.
    assert status == CarrierStatus(
        "completed",
        answered_by="machine_start",
        duration_seconds=4,
        price="-0.200",
        price_unit="USD",
    )


def test_fetch_message_status_meets_twilio_contract(prism, make_provider):
    """A message's status is a GET of its Message resource, with its error code as text."""
    provider = make_provider(prism.url)
    status = through_prism(
        prism, provider, lambda: provider.fetch_message_status(FETCHED_MESSAGE_SID)
    )
    request = last_request(provider)
    assert request.method == "GET"
    assert request.url == (
        f"{prism.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{FETCHED_MESSAGE_SID}.json"
    )
    assert status == CarrierStatus(
        "sent",
        price="-0.00750",
        price_unit="USD",
        error_code="30007",
        error_message="Carrier violation",
    )


def fetch_status(provider: TwilioProvider, kind: str) -> CarrierStatus:
    """Fetch a call's or a message's status, by kind."""
    if kind == "call":
        return provider.fetch_call_status(FETCHED_CALL_SID)
    return provider.fetch_message_status(FETCHED_MESSAGE_SID)


@pytest.mark.parametrize("kind", ["call", "message"])
def test_a_sid_twilio_does_not_know_is_unknown_sid_error(fake_twilio, make_provider, kind):
    """A 404 on a fetch means no such call or message, not a wrong account (20404's row)."""
    provider = make_provider(fake_twilio.base("error/404/20404"))
    with pytest.raises(UnknownSidError) as caught:
        fetch_status(provider, kind)
    assert caught.value.code == "20404"
    _scenario, rest, _credentials, _form = fake_twilio.requests[-1]
    resource = "Calls" if kind == "call" else "Messages"
    sid = FETCHED_CALL_SID if kind == "call" else FETCHED_MESSAGE_SID
    assert rest == f"Accounts/{ACCOUNT_SID}/{resource}/{sid}.json"


@pytest.mark.parametrize("kind", ["call", "message"])
@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("status/503", ProviderUnavailableError),
        ("error/429/20429", RateLimitedError),
        ("error/401/20003", ProviderConfigurationError),
    ],
)
def test_a_refused_status_fetch_maps_through_the_error_table(
    fake_twilio, make_provider, kind, scenario, error
):
    """An outage, a rate limit or wrong credentials raise the table's domain error."""
    provider = make_provider(fake_twilio.base(scenario))
    with pytest.raises(error) as caught:
        fetch_status(provider, kind)
    assert type(caught.value) is error


# --- Recent calls and SMS to a number (claims in doubt) ----------------------------------

# Twilio's example answers, as Prism serves them: created in 2019, by the API.
EXAMPLE_CALL_SIDS = ["CA" + "a" * 32]
EXAMPLE_DAY = datetime(2019, 1, 1, tzinfo=UTC)


def listed_through_prism(prism: Prism, provider: TwilioProvider, action):
    """Run a list `action` against Prism, failing on any violation by the request.

    Twilio's own example list answers break its description (relative `uri`s where the
    schema says format "uri"): Prism reports those against the response, not our request.
    """
    offset = prism.log_offset()
    result = action()
    response = provider.client.http_client._test_only_last_response
    prism.flush_log()
    found = prism.violations(response.status_code, response.headers, offset)
    header = json.loads(response.headers.get("sl-violations") or "[]")
    assert [v for v in header if v["location"][0] != "response"] == []
    assert [v for v in found if not v.startswith("sl-violations:") and "response" not in v] == []
    return result


@pytest.mark.parametrize(("channel", "resource"), [("call", "Calls"), ("sms", "Messages")])
def test_find_recent_meets_twilio_contract(prism, make_provider, channel, resource):
    """The recent calls or SMS to a number are one page of its list, filtered by To."""
    provider = make_provider(prism.url)
    sids = listed_through_prism(
        prism, provider, lambda: provider.find_recent(MEMBER, channel, EXAMPLE_DAY)
    )
    request = last_request(provider)
    assert request.method == "GET"
    assert request.url == f"{prism.url}/2010-04-01/Accounts/{ACCOUNT_SID}/{resource}.json"
    assert request.params == {"To": MEMBER, "PageSize": twilio_provider.RECENT_PAGE_SIZE}
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    sid = CALL_SID if channel == "call" else MESSAGE_SID
    assert sids and all(sid.match(s) for s in sids)
    if channel == "call":
        assert sids == EXAMPLE_CALL_SIDS


@pytest.mark.parametrize("channel", ["call", "sms"])
def test_find_recent_keeps_only_what_was_created_since(prism, make_provider, channel):
    """Calls and SMS created before `since` (the example's, from 2019) are not the step's."""
    provider = make_provider(prism.url)
    since = datetime(2020, 1, 1, tzinfo=UTC)
    assert (
        listed_through_prism(prism, provider, lambda: provider.find_recent(MEMBER, channel, since))
        == []
    )


@pytest.mark.parametrize("channel", ["call", "sms"])
@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("status/503", ProviderUnavailableError),
        ("error/429/20429", RateLimitedError),
        ("error/401/20003", ProviderConfigurationError),
    ],
)
def test_a_refused_list_maps_through_the_error_table(
    fake_twilio, make_provider, channel, scenario, error
):
    """An outage, a rate limit or wrong credentials on a list raise the table's domain error."""
    provider = make_provider(fake_twilio.base(scenario))
    with pytest.raises(error) as caught:
        provider.find_recent(MEMBER, channel, EXAMPLE_DAY)
    assert type(caught.value) is error
    _scenario, rest, _credentials, _form = fake_twilio.requests[-1]
    assert rest == f"Accounts/{ACCOUNT_SID}/{'Calls' if channel == 'call' else 'Messages'}.json"


def test_find_recent_when_the_carrier_is_unreachable(make_provider):
    """A refused connection while listing is ProviderUnavailableError (the step stays in doubt)."""
    provider = make_provider(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ProviderUnavailableError):
        provider.find_recent(MEMBER, "call", EXAMPLE_DAY)
