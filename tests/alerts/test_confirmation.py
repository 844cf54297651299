"""Confirmation: one entry point for every channel, and the e-mail link's pages."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from alerts.confirmation import confirm
from alerts.email.links import CONFIRM_SALT, confirmation_token
from alerts.lifecycle import (
    AlertError,
    cancel_alert,
    close_alert,
    reject_alert,
    release_alert,
)
from alerts.models import (
    AckChannel,
    Acknowledgement,
    Alert,
    AlertOrigin,
    AlertState,
    AuditEvent,
    CloseReason,
    DeliveryStatus,
    Person,
)
from alerts.raising import raise_alert
from core.extensions import db
from prompts import text
from tests.lifecycle_support import deliveries_of
from tests.support import TEST_SECRET, snapshot

MESSAGE = "Vol à la tire signalé près de la gare."


@pytest.fixture
def alert(world) -> Alert:
    """An alert to PLP A, released by its coordinator: every member has planned steps."""
    alert = raise_alert(
        author=world.officer1, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS
    )
    release_alert(alert, by=world.coord_a)
    db.session.commit()
    return alert


def acknowledgements(alert: Alert) -> list[tuple[int, str]]:
    """Return the alert's acknowledgements as (person id, channel)."""
    rows = db.session.scalars(
        select(Acknowledgement)
        .where(Acknowledgement.alert_id == alert.id)
        .order_by(Acknowledgement.id)
    )
    return [(a.person_id, a.channel.value) for a in rows]


def test_confirm_records_the_channel_and_cancels_planned_steps(world, alert):
    """A confirmation is recorded once with its channel; the person's planned steps stop."""
    first = deliveries_of(alert, world.member_a)[0]
    first.status = DeliveryStatus.IN_PROGRESS
    db.session.commit()
    result = confirm(alert, world.member_a, AckChannel.CALL, delivery=first)
    db.session.commit()
    assert result.created
    assert result.acknowledgement.delivery_id == first.id
    assert acknowledgements(alert) == [(world.member_a.id, "call")]
    statuses = [d.status for d in deliveries_of(alert, world.member_a)]
    assert statuses[0] == DeliveryStatus.IN_PROGRESS  # the call itself goes on
    assert set(statuses[1:]) == {DeliveryStatus.CANCELED}
    # Nobody else's cascade is touched.
    assert {d.status for d in deliveries_of(alert, world.both_ab)} == {DeliveryStatus.PLANNED}
    assert (
        db.session.scalar(
            select(AuditEvent.action).where(
                AuditEvent.action == "alert.confirm", AuditEvent.actor_id == world.member_a.id
            )
        )
        == "alert.confirm"
    )


def test_repeat_confirmation_changes_nothing(world, alert):
    """A second confirmation, on any channel, returns the first and writes nothing."""
    first = confirm(alert, world.member_a, AckChannel.SMS)
    db.session.commit()
    before = snapshot(first.acknowledgement)
    again = confirm(alert, world.member_a, AckChannel.EMAIL)
    db.session.commit()
    assert not again.created
    assert again.acknowledgement.id == first.acknowledgement.id
    assert snapshot(again.acknowledgement) == before
    assert acknowledgements(alert) == [(world.member_a.id, "sms")]


def test_last_confirmation_closes_the_alert(world, alert):
    """When every addressed person has confirmed, the alert closes as all confirmed."""
    people = db.session.scalars(
        select(Person).where(Person.id.in_({d.person_id for d in deliveries_of(alert)}))
    ).all()
    for person in people[:-1]:
        confirm(alert, person, AckChannel.WEB)
        db.session.commit()
        assert alert.state == AlertState.DELIVERING
    confirm(alert, people[-1], AckChannel.SMS)
    db.session.commit()
    assert (alert.state, alert.close_reason) == (AlertState.CLOSED, CloseReason.ALL_CONFIRMED)
    assert {d.status for d in deliveries_of(alert)} <= {
        DeliveryStatus.CANCELED,
        DeliveryStatus.SKIPPED,
    }


def test_repeat_after_the_alert_closed_is_not_an_error(world, alert):
    """Pressing 1 again after one's own confirmation closed the alert just says 'already'."""
    for person_id in {d.person_id for d in deliveries_of(alert)}:
        confirm(alert, db.session.get(Person, person_id), AckChannel.WEB)
    db.session.commit()
    assert alert.state == AlertState.CLOSED
    assert not confirm(alert, world.member_a, AckChannel.CALL).created


@pytest.mark.parametrize("end", ["cancelled", "rejected", "awaiting"])
def test_alert_not_being_delivered_cannot_be_confirmed(world, end):
    """A closed, rejected or unreleased alert refuses confirmations with a clear reason."""
    alert = raise_alert(
        author=world.officer1, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS
    )
    if end == "cancelled":
        release_alert(alert, by=world.coord_a)
        cancel_alert(alert, by=world.coord_a)
    elif end == "rejected":
        reject_alert(alert, by=world.coord_a)
    db.session.commit()
    expected = {"cancelled": "is over", "rejected": "was rejected", "awaiting": "not been sent"}
    with pytest.raises(AlertError, match=expected[end]):
        confirm(alert, world.member_a, AckChannel.SMS)
    db.session.rollback()
    assert acknowledgements(alert) == []


def test_person_not_addressed_cannot_confirm(world, alert):
    """Someone the alert was not sent to (member of another PLP) is refused."""
    with pytest.raises(AlertError, match="not sent to this person"):
        confirm(alert, world.member_c, AckChannel.SMS)
    assert acknowledgements(alert) == []


def test_delivery_of_someone_else_is_refused(world, alert):
    """A confirmation citing another person's delivery is refused."""
    theirs = deliveries_of(alert, world.both_ab)[0]
    with pytest.raises(AlertError, match="not one of alert"):
        confirm(alert, world.member_a, AckChannel.CALL, delivery=theirs)
    assert acknowledgements(alert) == []


@pytest.mark.postgres
def test_simultaneous_confirmations_record_one(app, world, alert):
    """The same person confirming on two channels at once is recorded exactly once."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL's row locks (SQLite serialises them)")
    alert_id, person_id = alert.id, world.member_a.id
    barrier = threading.Barrier(2)
    created: list[bool] = []

    def press(channel: AckChannel) -> None:
        with app.app_context():
            mine = db.session.get(Alert, alert_id)
            person = db.session.get(Person, person_id)
            barrier.wait()
            created.append(confirm(mine, person, channel).created)
            db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=press, args=(c,)) for c in (AckChannel.CALL, AckChannel.SMS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created) == [False, True]
    db.session.expire_all()
    assert len(acknowledgements(alert)) == 1


# ---------------------------------------------------------------------------------------
# The e-mail link's pages


class PageParser(HTMLParser):
    """Collect a page's forms, its html lang, and the text of elements by id."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.lang: str | None = None
        self.by_id: dict[str, str] = {}
        self._open_id: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
        if tag == "form":
            self.forms.append(attributes)
        if "id" in attributes:
            self._open_id = attributes["id"]
            self.by_id[self._open_id] = ""

    def handle_endtag(self, tag):
        self._open_id = None

    def handle_data(self, data):
        if self._open_id:
            self.by_id[self._open_id] += data


def parse(response) -> PageParser:
    """Parse a response's HTML."""
    parser = PageParser()
    parser.feed(response.get_data(as_text=True))
    return parser


def link_path(alert: Alert, person: Person) -> str:
    """The path of the person's confirmation link."""
    return f"/confirm/{confirmation_token(alert.id, person.id)}"


def test_get_shows_one_button_and_confirms_nothing(client, world, alert):
    """Opening the link (as a mail scanner would) shows a POST form and records nothing."""
    path = link_path(alert, world.member_a)
    response = client.get(path)
    assert response.status_code == 200
    page = parse(response)
    assert page.forms == [{"method": "post", "action": path}]
    assert page.lang == "fr"
    assert page.by_id["outcome"] == text("email.confirm_intro", "fr")
    assert response.headers["Cache-Control"] == "no-store"
    assert acknowledgements(alert) == []


def test_post_confirms_by_email_once(client, world, alert):
    """The button confirms on the e-mail channel; pressing it again says it was done."""
    path = link_path(alert, world.member_a)
    first = client.post(path)
    assert first.status_code == 200
    assert parse(first).by_id["outcome"] == text("web.confirmed", "fr")
    assert parse(first).forms == []
    second = client.post(path)
    assert second.status_code == 200
    assert parse(second).by_id["outcome"] == text("web.already_confirmed", "fr")
    assert acknowledgements(alert) == [(world.member_a.id, "email")]
    again = client.get(path)
    assert parse(again).by_id["outcome"] == text("web.already_confirmed", "fr")
    assert parse(again).forms == []


def test_page_speaks_the_members_language(client, world, alert):
    """A Dutch-speaking member gets the page in Dutch."""
    response = client.post(link_path(alert, world.both_ab))
    page = parse(response)
    assert page.lang == "nl"
    assert page.by_id["outcome"] == text("web.confirmed", "nl")


def test_exercise_is_announced_on_the_page(client, world):
    """An exercise alert's page says so."""
    alert = raise_alert(
        author=world.coord_a, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS, exercise=True
    )
    db.session.commit()
    page = parse(client.get(link_path(alert, world.member_a)))
    assert page.by_id["exercise"] == text("email.exercise_notice", "fr")


@pytest.mark.parametrize("method", ["get", "post"])
def test_altered_link_is_a_400_page(client, world, alert, method):
    """A tampered token gets a 400 page saying the link is not valid; nothing recorded."""
    token = confirmation_token(alert.id, world.member_a.id)
    response = getattr(client, method)(
        f"/confirm/{token[:-3]}xyz", headers={"Accept-Language": "de-BE,de;q=0.9"}
    )
    assert response.status_code == 400
    page = parse(response)
    assert page.lang == "de"
    assert page.by_id["outcome"] == text("web.link_invalid", "de")
    assert acknowledgements(alert) == []


class OldSigner(TimestampSigner):
    """A signer whose tokens were made two days ago."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 24 * 3600


@pytest.mark.parametrize("method", ["get", "post"])
def test_expired_link_is_a_410_page(client, world, alert, method):
    """A genuine link older than its maximum age gets a 410 page; nothing recorded."""
    token = URLSafeTimedSerializer(TEST_SECRET, salt=CONFIRM_SALT, signer=OldSigner).dumps(
        [alert.id, world.member_a.id]
    )
    response = getattr(client, method)(f"/confirm/{token}")
    assert response.status_code == 410
    assert parse(response).by_id["outcome"] == text("web.link_expired", "fr")
    assert acknowledgements(alert) == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_link_of_a_closed_alert_is_a_410_page(client, world, alert, method):
    """After the alert ended, the link says it is over and records nothing."""
    cancel_alert(alert, by=world.coord_a)
    db.session.commit()
    response = getattr(client, method)(link_path(alert, world.member_a))
    assert response.status_code == 410
    page = parse(response)
    assert page.by_id["outcome"] == text("web.alert_over", "fr")
    assert page.forms == []
    assert acknowledgements(alert) == []


def test_link_still_confirms_after_the_cascade_ran_out(client, world, alert):
    """The e-mail is the last step: after the alert closed as exhausted its link still confirms."""
    close_alert(alert, CloseReason.EXHAUSTED)
    db.session.commit()
    path = link_path(alert, world.member_a)
    shown = parse(client.get(path))
    assert shown.forms == [{"method": "post", "action": path}]
    response = client.post(path)
    assert response.status_code == 200
    assert parse(response).by_id["outcome"] == text("web.confirmed", "fr")
    assert acknowledgements(alert) == [(world.member_a.id, "email")]
    db.session.refresh(alert)
    assert (alert.state, alert.close_reason) == (AlertState.CLOSED, CloseReason.EXHAUSTED)


def test_exhausted_alert_is_not_confirmable_once_expired(world, alert):
    """After its expiry even an exhausted alert takes no more confirmations."""
    close_alert(alert, CloseReason.EXHAUSTED)
    db.session.commit()
    with pytest.raises(AlertError, match="is over"):
        confirm(alert, world.member_a, AckChannel.SMS, now=alert.expires_at + timedelta(seconds=1))
    assert acknowledgements(alert) == []


def test_link_to_a_removed_alert_is_a_410_page(client, world, alert):
    """A link whose alert no longer exists (retention) is a 410 page, not a server error."""
    path = f"/confirm/{confirmation_token(alert.id + 1000, world.member_a.id)}"
    assert client.get(path).status_code == 410
    assert client.post(path).status_code == 410


def test_link_of_someone_not_addressed_is_refused(client, world, alert):
    """A genuine link for a person the alert does not address confirms nothing."""
    response = client.post(link_path(alert, world.member_c))
    assert response.status_code == 410
    assert acknowledgements(alert) == []


def test_confirming_by_link_stops_later_steps(client, world, alert):
    """The e-mail confirmation cancels the member's remaining planned steps."""
    client.post(link_path(alert, world.member_a))
    db.session.expire_all()
    statuses = {d.status for d in deliveries_of(alert, world.member_a)}
    assert statuses == {DeliveryStatus.CANCELED}
