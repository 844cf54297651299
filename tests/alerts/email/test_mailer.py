"""The e-mail channel against a real SMTP server (aiosmtpd) in the test process."""

from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy
from html.parser import HTMLParser
from itertools import count
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from rq.registry import ScheduledJobRegistry

from alerts.delivery import schedule
from alerts.email import smtp as email_smtp
from alerts.email.compose import alert_email
from alerts.email.delivery import deliver_email
from alerts.email.links import read_confirmation_token
from alerts.email.smtp import PermanentMailError, TransientMailError, send_email
from alerts.models import (
    AckChannel,
    Acknowledgement,
    Alert,
    AlertOrigin,
    AlertState,
    AlertTarget,
    Channel,
    Delivery,
    DeliveryStatus,
    Urgency,
    utcnow,
)
from core.app import create_app
from core.extensions import db
from core.queue import get_queue
from core.settings import SmtpSettings
from prompts import LANGUAGES, text
from tests.support import app_config

ZONE_NAME = "ZP Bruxelles-Capitale/Ixelles"
MAIL_FROM = "Zone de police <alertes@police.example.be>"
ALERT_TEXT = "Cambriolage en cours rue du Parc 12.\nVéhicule suspect : Golf grise 1-ABC-234."
LINK_AGE = 24 * 3600


# ---------------------------------------------------------------------------------------
# The SMTP server


class Relay:
    """An aiosmtpd handler: keeps what it accepts, answers scripted refusals first."""

    def __init__(self):
        self.raw: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.sessions: list[dict] = []
        self.rcpt_replies: list[str] = []  # answered, in order, instead of accepting RCPT
        self.data_replies: list[str] = []  # answered, in order, instead of accepting DATA

    @property
    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed."""
        # Stored with local line ends, as a mailbox would: SMTP's CRLF is the wire's.
        return [
            BytesParser(policy=default_policy).parsebytes(raw.replace(b"\r\n", b"\n"))
            for raw in self.raw
        ]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        """Refuse with the next scripted reply, else accept the recipient."""
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        """Refuse with the next scripted reply, else keep the message."""
        if self.data_replies:
            return self.data_replies.pop(0)
        self.raw.append(envelope.content)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.sessions.append(
            {
                "authenticated": bool(session.authenticated),
                "tls": server.transport.get_extra_info("ssl_object") is not None,
            }
        )
        return "250 2.0.0 Message accepted"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_relay():
    """Factory: start an SMTP server on 127.0.0.1 and a free port; all are stopped after."""
    controllers = []

    def start(**smtp_options) -> tuple[Relay, int]:
        relay, port = Relay(), free_port()
        controller = Controller(
            relay, hostname="127.0.0.1", port=port, server_hostname="relay.test", **smtp_options
        )
        controller.start()
        controllers.append(controller)
        return relay, port

    yield start
    for controller in controllers:
        controller.stop()


def use_smtp(app, port: int, **fields) -> None:
    """Point the app at the SMTP server on `port` (what SMTP_URL would say)."""
    smtp = SmtpSettings(
        host="127.0.0.1", port=port, username=None, password=None, ssl=False, starttls=None
    )
    app.extensions["settings"] = replace(
        app.extensions["settings"], smtp=replace(smtp, **fields), mail_from=MAIL_FROM
    )


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: TLS variants skipped")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    result = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {result.stderr.strip()}")
    return cert, key


def server_tls(certificate) -> ssl.SSLContext:
    """The server side of TLS with the test certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def trusting(certificate) -> ssl.SSLContext:
    """A client context that trusts the test certificate (and nothing else)."""
    return ssl.create_default_context(cafile=certificate[0])


# ---------------------------------------------------------------------------------------
# Alerts and deliveries


@pytest.fixture
def make_email_delivery(app, make_zone, make_plp, make_person):
    """Factory: an e-mail delivery of a delivering alert to a new person."""
    numbers = count(1)
    state = {"plps": None}

    def make(*, alert_fields=None, plp_names=None, **person_fields) -> Delivery:
        if state["plps"] is None:
            zone = make_zone(code="ZP5339", name=ZONE_NAME)
            state["plps"] = [make_plp("PLP-PARC", zone=zone)]
        plps = state["plps"]
        for plp, name in zip(plps, plp_names or (), strict=False):
            plp.name = name
        n = next(numbers)
        fields = {
            "text": ALERT_TEXT,
            "state": AlertState.DELIVERING,
            "expires_at": utcnow() + timedelta(hours=2),
            **(alert_fields or {}),
        }
        alert = Alert(reference=f"A{n:04d}", origin=AlertOrigin.SMS, **fields)
        alert.targets = [AlertTarget(partnership=plp) for plp in plps]
        person_fields.setdefault("name", f"Membre {n}")
        person_fields.setdefault("email", f"membre{n}@example.be")
        person = make_person(**person_fields)
        delivery = Delivery(
            alert=alert, person=person, channel=Channel.EMAIL, step=4, attempt=1, due_at=utcnow()
        )
        db.session.add_all([alert, delivery])
        db.session.commit()
        return delivery

    return make


def status_of(delivery_id: int) -> Delivery:
    """Reload a delivery from the database."""
    db.session.expire_all()
    return db.session.get(Delivery, delivery_id)


def scheduled(queue_name: str) -> ScheduledJobRegistry:
    """The RQ registry of jobs scheduled on `queue_name`."""
    return ScheduledJobRegistry(queue=get_queue(queue_name))


def text_lines(message: EmailMessage) -> list[str]:
    """The lines of the text/plain part."""
    return message.get_body(("plain",)).get_content().splitlines()


class Html(HTMLParser):
    """The elements, attributes and texts of an HTML part."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.texts: list[tuple[str, str]] = []  # (enclosing tag, text)
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._open: list[str] = []
        self._href: str | None = None
        self.feed(source)
        self.close()

    def handle_starttag(self, tag, attrs):
        """Record an element and its attributes."""
        self.tags.append((tag, dict(attrs)))
        if tag == "a":
            self._href = dict(attrs).get("href")
        if tag not in ("br", "meta"):
            self._open.append(tag)

    def handle_endtag(self, tag):
        """Close the innermost element."""
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data):
        """Record non-blank text with its enclosing element."""
        if data.strip():
            self.texts.append((self._open[-1] if self._open else "", data.strip()))
            if self._open and self._open[-1] == "a":
                self.links.append((self._href, data.strip()))

    def body_texts(self) -> list[str]:
        """Texts inside <body>, in order."""
        return [t for tag, t in self.texts if tag not in ("title", "html", "head")]


def html_of(message: EmailMessage) -> Html:
    """The parsed text/html part."""
    return Html(message.get_body(("html",)).get_content())


def send_one(app, start_relay, delivery: Delivery) -> EmailMessage:
    """Deliver `delivery` through a fresh SMTP server and return the message it received."""
    relay, port = start_relay()
    use_smtp(app, port)
    assert deliver_email(delivery.id) == "sent"
    assert len(relay.raw) == 1
    return relay.messages[0]


# ---------------------------------------------------------------------------------------
# Content


def test_email_has_text_and_html_with_alert_plp_source_reference_and_link(
    app, start_relay, make_email_delivery
):
    """The message is text + HTML with the alert, PLP, police source, reference and link."""
    delivery = make_email_delivery(language="fr")
    message = send_one(app, start_relay, delivery)

    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in message.iter_parts())
    assert message["Subject"] == "Message de la police pour PLP-PARC – réf. A0001"

    lines = text_lines(message)
    assert lines[0] == "La police a envoyé le message suivant aux membres de PLP-PARC :"
    assert "\n".join(lines[2:4]) == ALERT_TEXT
    assert f"Source : police ({ZONE_NAME})" in lines
    assert "Référence : A0001" in lines
    url = next(line for line in lines if line.startswith("http"))
    token = url.removeprefix("http://127.0.0.1:5000/confirm/")
    assert read_confirmation_token(token, LINK_AGE) == (delivery.alert_id, delivery.person_id)

    html = html_of(message)
    # The button, then the address to copy when the button does not work.
    assert html.links == [(url, "Je confirme la réception"), (url, url)]
    assert ALERT_TEXT in [t for tag, t in html.texts if tag == "blockquote"]
    assert not message["Subject"].startswith("[EXERCICE]")


@pytest.mark.parametrize("language", LANGUAGES)
def test_email_is_written_in_the_persons_language(app, start_relay, make_email_delivery, language):
    """Subject, body, Content-Language and <html lang> follow the person's language."""
    delivery = make_email_delivery(language=language, alert_fields={"language": "fr"})
    message = send_one(app, start_relay, delivery)

    plp = "PLP-PARC"  # the label: the factory names it "PLP PLP-PARC"
    assert message["Subject"] == text("email.subject", language, exercise="", plp=plp, ref="A0001")
    assert message["Content-Language"] == language
    lines = text_lines(message)
    assert lines[0] == text("email.intro", language, plp=plp)
    assert lines[-1] == text("email.footer", language, plp=plp)
    html = html_of(message)
    assert html.tags[0] == ("html", {"lang": language})
    assert text("email.confirm_button", language) in html.body_texts()


def test_language_falls_back_to_the_alerts(app, make_email_delivery):
    """A person without a known language gets the e-mail in the alert's language."""
    delivery = make_email_delivery(language="xx", alert_fields={"language": "nl"})
    message = alert_email(delivery.alert, delivery.person, "https://plp.example.be/confirm/t")
    assert message["Content-Language"] == "nl"
    assert message["Subject"].startswith("Bericht van de politie voor")
    assert html_of(message).tags[0] == ("html", {"lang": "nl"})


def test_exercise_is_announced_in_subject_and_first_line(app, start_relay, make_email_delivery):
    """An exercise alert says so at the start of the subject and as the first line."""
    delivery = make_email_delivery(language="nl", alert_fields={"exercise": True})
    message = send_one(app, start_relay, delivery)

    assert message["Subject"].startswith(text("email.exercise_prefix", "nl"))
    notice = text("email.exercise_notice", "nl")
    assert text_lines(message)[0] == notice
    assert html_of(message).body_texts()[0] == notice


def test_html_escapes_every_user_value(app, start_relay, make_email_delivery):
    """Markup in the alert text or a PLP name is shown as text, never run as HTML."""
    hostile = '<script>alert("x")</script> & <b>vite</b>'
    delivery = make_email_delivery(alert_fields={"text": hostile}, plp_names=["<i>Parc</i> & Co"])
    message = send_one(app, start_relay, delivery)

    html = html_of(message)
    tags = {tag for tag, _attrs in html.tags}
    assert tags == {"html", "head", "meta", "title", "body", "p", "blockquote", "br", "a"}
    assert hostile in html.body_texts()
    assert any("<i>Parc</i> & Co" in t for t in html.body_texts())
    assert "\n".join(text_lines(message)[2:3]) == hostile  # plain text needs no escaping


def test_html_loads_no_external_resources(app, start_relay, make_email_delivery):
    """The HTML has no images, stylesheets or scripts; its only links are the confirm link."""
    message = send_one(app, start_relay, make_email_delivery())
    html = html_of(message)
    assert not [attrs for _tag, attrs in html.tags if "src" in attrs]
    assert not [tag for tag, _attrs in html.tags if tag in ("img", "link", "script", "style")]
    hrefs = {attrs["href"] for tag, attrs in html.tags if tag == "a"}
    assert len(hrefs) == 1
    assert hrefs.pop().startswith("http://127.0.0.1:5000/confirm/")


def test_headers_from_to_message_id_date_auto_submitted(app, start_relay, make_email_delivery):
    """From, To (accented name, encoded), Message-ID, Date and Auto-Submitted are set."""
    name = "Éloïse Dupré-Van den Bossche"
    delivery = make_email_delivery(name=name, email="eloise@example.be")
    other = make_email_delivery()
    relay, port = start_relay()
    use_smtp(app, port)
    before = datetime.now(UTC).replace(microsecond=0)
    assert deliver_email(delivery.id) == "sent"
    assert deliver_email(other.id) == "sent"
    after = datetime.now(UTC)
    message, second = relay.messages

    assert message["From"] == MAIL_FROM
    assert message["From"].addresses[0].addr_spec == "alertes@police.example.be"
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, "eloise@example.be")
    raw_to = message_from_bytes(relay.raw[0], policy=compat32)["To"]
    assert raw_to.isascii()  # RFC 2047-encoded on the wire
    assert relay.envelopes[0] == ("alertes@police.example.be", ["eloise@example.be"])
    assert message["Message-ID"].endswith("@police.example.be>")
    assert message["Message-ID"] != second["Message-ID"]
    assert before <= message["Date"].datetime <= after
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "fr"


def test_line_breaks_in_names_stay_out_of_headers(app, start_relay, make_email_delivery):
    """A PLP or person name with a line break gives one-line headers, not a crash."""
    delivery = make_email_delivery(name="Jan\r\nPeeters", plp_names=["PLP Parc\nNord"])
    message = send_one(app, start_relay, delivery)
    assert message["To"].addresses[0].display_name == "Jan Peeters"
    assert message["Subject"] == "Message de la police pour Parc Nord – réf. A0001"


def test_invalid_address_fails_without_retry(app, start_relay, make_email_delivery):
    """An address that cannot be written in a header fails the delivery for good."""
    delivery = make_email_delivery(email="not an address")
    relay, port = start_relay()
    use_smtp(app, port)
    assert deliver_email(delivery.id) == "failed"
    assert status_of(delivery.id).error_code == "bad_address"
    assert relay.raw == []
    assert scheduled("urgent").count == 0


# ---------------------------------------------------------------------------------------
# Sending: authentication and TLS


def simple_message() -> EmailMessage:
    """A minimal message for transport tests."""
    message = EmailMessage()
    message["From"] = "plp-alert@localhost"
    message["To"] = "membre@example.be"
    message["Subject"] = "Test"
    message.set_content("Bonjour")
    return message


@pytest.fixture
def smtp_app(tmp_path, redis_url):
    """Factory: an app configured with `SMTP_URL`, inside its app context."""
    contexts = []

    def make(smtp_url: str):
        app = create_app(
            app_config(tmp_path, f"sqlite:///{tmp_path / 'mail.db'}", redis_url, SMTP_URL=smtp_url)
        )
        context = app.app_context()
        context.push()
        contexts.append(context)
        return app

    yield make
    for context in reversed(contexts):
        context.pop()


def recording_authenticator(logins: list):
    """An aiosmtpd authenticator accepting alerts@zone / p@ss:w/rd, recording each try."""

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data))
        # handled=False: aiosmtpd then answers 235 or 535 itself.
        return AuthResult(
            success=auth_data == LoginPassword(b"alerts@zone", b"p@ss:w/rd"), handled=False
        )

    return authenticate


def test_login_with_credentials_from_smtp_url(smtp_app, start_relay):
    """The username and password of SMTP_URL (percent-decoded) log in before sending."""
    logins = []
    relay, port = start_relay(authenticator=recording_authenticator(logins), auth_require_tls=False)
    smtp_app(f"smtp://alerts%40zone:p%40ss%3Aw%2Frd@127.0.0.1:{port}")
    assert send_email(simple_message()) is None
    assert [auth for _mechanism, auth in logins] == [LoginPassword(b"alerts@zone", b"p@ss:w/rd")]
    assert relay.sessions == [{"authenticated": True, "tls": False}]


def test_wrong_password_is_permanent(smtp_app, start_relay):
    """A refused login (535) is a permanent failure with its code; nothing is sent."""
    logins = []
    relay, port = start_relay(authenticator=recording_authenticator(logins), auth_require_tls=False)
    smtp_app(f"smtp://alerts%40zone:wrong@127.0.0.1:{port}")
    with pytest.raises(PermanentMailError) as caught:
        send_email(simple_message())
    assert caught.value.code == "535"
    assert logins  # the server was really asked
    assert relay.raw == []


def test_no_login_without_credentials(smtp_app, start_relay):
    """Without a username in SMTP_URL the message is sent without AUTH."""
    logins = []
    relay, port = start_relay(authenticator=recording_authenticator(logins), auth_require_tls=False)
    smtp_app(f"smtp://127.0.0.1:{port}")
    send_email(simple_message())
    assert logins == []
    assert relay.sessions == [{"authenticated": False, "tls": False}]


def test_starttls_is_used_when_offered(app, start_relay, certificate):
    """With STARTTLS offered, the message goes over TLS to a trusted certificate."""
    relay, port = start_relay(tls_context=server_tls(certificate), require_starttls=True)
    use_smtp(app, port, starttls=None)
    send_email(simple_message(), ssl_context=trusting(certificate))
    assert relay.sessions == [{"authenticated": False, "tls": True}]


def test_required_starttls_verifies_the_certificate(app, start_relay, certificate):
    """With ?starttls=true an untrusted certificate is a permanent failure; nothing is sent."""
    relay, port = start_relay(tls_context=server_tls(certificate), require_starttls=True)
    use_smtp(app, port, starttls=True)
    with pytest.raises(PermanentMailError) as caught:
        send_email(simple_message())  # the system's trust store does not know the test CA
    assert caught.value.code == "tls_certificate"
    assert relay.raw == []


def test_opportunistic_starttls_accepts_a_self_signed_relay(app, start_relay, certificate):
    """Without ?starttls, a relay's self-signed certificate still gets an encrypted message."""
    relay, port = start_relay(tls_context=server_tls(certificate))
    use_smtp(app, port, starttls=None)
    send_email(simple_message())
    assert relay.sessions == [{"authenticated": False, "tls": True}]


def test_required_starttls_not_offered_is_transient(app, start_relay):
    """With ?starttls=true a relay without STARTTLS gets nothing in clear text; retried."""
    relay, port = start_relay()
    use_smtp(app, port, starttls=True)
    with pytest.raises(TransientMailError) as caught:
        send_email(simple_message())
    assert caught.value.code == "no_starttls"
    assert relay.raw == []


def test_starttls_false_sends_in_clear_text(app, start_relay, certificate):
    """With ?starttls=false the offered STARTTLS is not used."""
    relay, port = start_relay(tls_context=server_tls(certificate))
    use_smtp(app, port, starttls=False)
    send_email(simple_message())
    assert relay.sessions == [{"authenticated": False, "tls": False}]


def test_smtps_with_login(app, start_relay, certificate):
    """smtps:// speaks TLS from the first byte and logs in over it."""
    logins = []
    # auth_require_tls=False: aiosmtpd only counts STARTTLS as TLS and would not offer
    # AUTH on an smtps:// connection otherwise.
    relay, port = start_relay(
        ssl_context=server_tls(certificate),
        authenticator=recording_authenticator(logins),
        auth_require_tls=False,
    )
    use_smtp(app, port, ssl=True, starttls=False, username="alerts@zone", password="p@ss:w/rd")
    send_email(simple_message(), ssl_context=trusting(certificate))
    assert relay.sessions == [{"authenticated": True, "tls": True}]


def test_connection_refused_is_transient(app):
    """A closed port is a transient failure named by its errno."""
    use_smtp(app, free_port())
    with pytest.raises(TransientMailError) as caught:
        send_email(simple_message())
    assert caught.value.code == "ECONNREFUSED"


def test_silent_relay_times_out_as_transient(app, monkeypatch):
    """A relay that accepts the connection but never greets is a transient timeout."""
    monkeypatch.setattr(email_smtp, "SMTP_TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever answers
        use_smtp(app, silent.getsockname()[1])
        with pytest.raises(TransientMailError) as caught:
            send_email(simple_message())
    assert caught.value.code == "timeout"


@pytest.mark.parametrize(
    ("phase", "reply", "error"),
    [
        ("rcpt", "451 4.3.0 Try again later", TransientMailError),
        ("rcpt", "550 5.1.1 No such user", PermanentMailError),
        ("data", "452 4.3.1 Insufficient system storage", TransientMailError),
        ("data", "554 5.7.1 Message refused", PermanentMailError),
    ],
)
def test_replies_are_classified_by_their_code(app, start_relay, phase, reply, error):
    """4xx replies are transient, 5xx permanent, at RCPT and at DATA, with code and words."""
    relay, port = start_relay()
    getattr(relay, f"{phase}_replies").append(reply)
    use_smtp(app, port)
    with pytest.raises(error) as caught:
        send_email(simple_message())
    assert caught.value.code == reply[:3]
    assert caught.value.detail == reply[4:]
    assert caught.value.message.startswith("the mail relay refused")


def test_classification_of_network_failures():
    """Timeouts, resets and unknown hosts are transient; smtplib protocol limits permanent."""
    cases = {
        TimeoutError("timed out"): (TransientMailError, "timeout"),
        ConnectionResetError(104, "Connection reset by peer"): (TransientMailError, "ECONNRESET"),
        socket.gaierror(-2, "Name or service not known"): (TransientMailError, "dns"),
        smtplib.SMTPServerDisconnected("gone"): (TransientMailError, "disconnected"),
        smtplib.SMTPNotSupportedError("no SMTPUTF8"): (PermanentMailError, "unsupported"),
        smtplib.SMTPConnectError(421, b"busy"): (TransientMailError, "421"),
    }
    for raised, (error, code) in cases.items():
        classified = email_smtp._classify(raised)
        assert (type(classified), classified.code) == (error, code), raised


# ---------------------------------------------------------------------------------------
# Outbox


def test_outbox_mode_writes_a_parseable_eml(app, make_email_delivery):
    """Without SMTP_URL the job writes the e-mail as an .eml file in instance/outbox/."""
    delivery = make_email_delivery(email="jan@example.be")
    assert app.extensions["settings"].smtp is None
    assert deliver_email(delivery.id) == "sent"

    files = list((Path(app.instance_path) / "outbox").iterdir())
    assert [f.suffix for f in files] == [".eml"]  # and no partial file left behind
    message = BytesParser(policy=default_policy).parsebytes(files[0].read_bytes())
    assert message["To"].addresses[0].addr_spec == "jan@example.be"
    assert message.get_body(("html",)) is not None
    assert status_of(delivery.id).to_address == "jan@example.be"


def test_outbox_file_names_sort_in_writing_order(app, tmp_path):
    """Successive outbox files get distinct names that sort in the order written."""
    written = [email_smtp.write_to_outbox(simple_message(), tmp_path / "outbox") for _ in range(5)]
    assert len({p.name for p in written}) == 5
    assert sorted(written) == written
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [p.name for p in written]


# ---------------------------------------------------------------------------------------
# The job


@pytest.mark.parametrize(
    ("urgency", "queue"),
    [
        (Urgency.URGENT, "urgent"),
        (Urgency.NON_URGENT, "default"),
    ],
)
def test_transient_failure_retries_later_then_sends(
    app, start_relay, make_email_delivery, urgency, queue
):
    """A 451 schedules the next try after the first delay; that try sends the e-mail."""
    delivery = make_email_delivery(alert_fields={"urgency": urgency})
    relay, port = start_relay()
    relay.rcpt_replies.append("451 4.3.0 Try again later")
    use_smtp(app, port)

    before = int(datetime.now(UTC).timestamp())
    assert deliver_email(delivery.id) == "planned"
    after = datetime.now(UTC).timestamp()
    row = status_of(delivery.id)
    assert (row.status, row.error_code) == (DeliveryStatus.PLANNED, "451")
    assert "Try again later" in row.error_message
    assert relay.raw == []

    registry = scheduled(queue)
    job_id = f"email-{delivery.id}-2"
    assert registry.get_job_ids() == [job_id]
    when = registry.get_scheduled_time(job_id).timestamp()
    assert before + 30 <= when <= after + 30
    job = get_queue(queue).fetch_job(job_id)
    assert (job.func, job.args) == (deliver_email, (delivery.id, 2))

    assert deliver_email(delivery.id, 2) == "sent"  # what the worker runs at that time
    row = status_of(delivery.id)
    assert (row.status, row.error_code, row.error_message) == (DeliveryStatus.SENT, None, None)
    assert row.sent_at is not None
    assert row.to_address == delivery.person.email
    assert len(relay.raw) == 1


def test_transient_failure_on_the_last_try_fails(
    app, start_relay, make_email_delivery, monkeypatch
):
    """When the retry schedule is used up, a transient failure marks the delivery FAILED."""
    monkeypatch.setitem(schedule.RETRY_DELAYS, "email", (timedelta(seconds=5),))
    delivery = make_email_delivery()
    relay, port = start_relay()
    relay.rcpt_replies += ["451 4.3.0 Try again later"] * 2
    use_smtp(app, port)

    assert deliver_email(delivery.id, 1) == "planned"
    assert deliver_email(delivery.id, 2) == "failed"
    row = status_of(delivery.id)
    assert (row.status, row.error_code) == (DeliveryStatus.FAILED, "451")
    assert row.finished_at is not None
    assert scheduled("urgent").get_job_ids() == [f"email-{delivery.id}-2"]  # no try 3


def test_the_same_try_twice_schedules_one_retry(app, start_relay, make_email_delivery, caplog):
    """A try run twice (redelivered job) leaves the next try scheduled once, unchanged."""
    delivery = make_email_delivery()
    relay, port = start_relay()
    relay.rcpt_replies += ["451 4.3.0 Try again later"] * 2
    use_smtp(app, port)
    deliver_email(delivery.id)
    job_id = f"email-{delivery.id}-2"
    first_time = scheduled("urgent").get_scheduled_time(job_id)
    with caplog.at_level("INFO", logger="alerts.email.delivery"):
        deliver_email(delivery.id)
    assert scheduled("urgent").get_job_ids() == [job_id]
    assert scheduled("urgent").get_scheduled_time(job_id) == first_time
    assert f"email retry already scheduled delivery_id={delivery.id} try=2" in caplog.messages


def test_non_ascii_password_is_a_permanent_configuration_error(app, start_relay):
    """A password smtplib cannot encode fails clearly instead of crashing the job."""
    relay, port = start_relay(authenticator=recording_authenticator([]), auth_require_tls=False)
    use_smtp(app, port, username="alerts@zone", password="sécurité")
    with pytest.raises(PermanentMailError) as caught:
        send_email(simple_message())
    assert caught.value.code == "auth_ascii"
    assert relay.raw == []


def test_permanent_failure_is_not_retried(app, start_relay, make_email_delivery):
    """A 550 marks the delivery FAILED with the code and schedules nothing."""
    delivery = make_email_delivery()
    relay, port = start_relay()
    relay.rcpt_replies.append("550 5.1.1 No such user")
    use_smtp(app, port)

    assert deliver_email(delivery.id) == "failed"
    row = status_of(delivery.id)
    assert (row.status, row.error_code) == (DeliveryStatus.FAILED, "550")
    assert "No such user" in row.error_message
    assert row.sent_at is None
    assert scheduled("urgent").count == 0
    assert relay.raw == []


def test_connection_refused_delivery_is_retried(app, make_email_delivery):
    """A relay that refuses connections leaves the delivery planned with a retry scheduled."""
    delivery = make_email_delivery()
    use_smtp(app, free_port())
    assert deliver_email(delivery.id) == "planned"
    assert status_of(delivery.id).error_code == "ECONNREFUSED"
    assert scheduled("urgent").get_job_ids() == [f"email-{delivery.id}-2"]


def _opt_out(delivery):
    delivery.person.email_opt_out_at = utcnow()


def _no_email(delivery):
    delivery.person.email = None


def _closed(delivery):
    delivery.alert.state = AlertState.CLOSED


def _expired(delivery):
    delivery.alert.expires_at = utcnow() - timedelta(minutes=1)


def _acknowledged(delivery):
    db.session.add(
        Acknowledgement(
            alert_id=delivery.alert_id, person_id=delivery.person_id, channel=AckChannel.SMS
        )
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_opt_out, (DeliveryStatus.SKIPPED, "opted out of e-mail")),
        (_no_email, (DeliveryStatus.SKIPPED, "no e-mail address")),
        (_closed, (DeliveryStatus.SKIPPED, "alert closed")),
        (_expired, (DeliveryStatus.SKIPPED, "alert expired")),
        (_acknowledged, (DeliveryStatus.CANCELED, "already confirmed")),
    ],
)
def test_moot_delivery_is_not_sent(app, start_relay, make_email_delivery, change, expected):
    """Opted out, no address, closed or expired alert, or already confirmed: nothing is sent."""
    status, reason = expected
    delivery = make_email_delivery()
    change(delivery)
    db.session.commit()
    relay, port = start_relay()
    use_smtp(app, port)

    assert deliver_email(delivery.id) == status.value
    row = status_of(delivery.id)
    assert (row.status, row.error_message) == (status, reason)
    assert row.finished_at is not None
    assert relay.raw == []
    assert scheduled("urgent").count == 0


def test_sent_delivery_is_not_sent_again(app, start_relay, make_email_delivery):
    """Running the job again after it sent changes nothing and sends nothing."""
    delivery = make_email_delivery()
    relay, port = start_relay()
    use_smtp(app, port)
    assert deliver_email(delivery.id) == "sent"
    sent_at = status_of(delivery.id).sent_at
    assert deliver_email(delivery.id) == "sent"
    assert len(relay.raw) == 1
    assert status_of(delivery.id).sent_at == sent_at


def test_missing_delivery_is_ignored(app):
    """A job for a delivery that no longer exists does nothing."""
    assert deliver_email(999_999) == "missing"


def test_delivery_of_another_channel_is_refused(app, make_email_delivery):
    """The e-mail job refuses a call delivery rather than e-mailing it."""
    delivery = make_email_delivery()
    delivery.channel = Channel.CALL
    db.session.commit()
    with pytest.raises(ValueError, match="not e-mail"):
        deliver_email(delivery.id)
    assert status_of(delivery.id).status == DeliveryStatus.PLANNED


def test_a_long_display_name_with_commas_keeps_one_recipient(app, start_relay, make_email_delivery):
    """A long name with commas stays one quoted display name: the mail reaches one person."""
    name = "Dupont, Jean-Pierre, Marie-Christine, Anne-Sophie et Jean-Baptiste de la Maison"
    delivery = make_email_delivery(name=name, email="famille@example.be")
    message = send_one(app, start_relay, delivery)
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, "famille@example.be")
