"""Expiry is enforced when a confirmation arrives, not only when a job closes the alert."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from alerts.confirmation import confirm, is_confirmable
from alerts.errors import AlertError
from alerts.models import (
    AckChannel,
    Acknowledgement,
    AlertState,
    Channel,
    Membership,
    Role,
    utcnow,
)
from core.extensions import db
from prompts import text
from tests.twilio_payloads import signed_post, sms_form


@pytest.fixture
def expired(make_plp, make_person, make_alert, make_delivery):
    """A delivering alert whose time ran out a minute ago, and no worker closed it."""
    plp = make_plp()
    member = make_person(name="Late Member", phone="+32470555001")
    db.session.add(Membership(person=member, partnership=plp, role=Role.MEMBER))
    alert = make_alert(
        plp=plp, state=AlertState.DELIVERING, expires_at=utcnow() - timedelta(minutes=1)
    )
    make_delivery(channel=Channel.SMS, alert=alert, person=member)
    db.session.commit()
    return alert, member


def test_an_expired_alert_still_delivering_takes_no_confirmation(app, expired):
    """The workers may be down: the expiry time alone makes a confirmation too late."""
    alert, member = expired
    assert alert.state == AlertState.DELIVERING
    assert not is_confirmable(alert)
    with pytest.raises(AlertError, match="has expired"):
        confirm(alert, member, AckChannel.SMS)
    assert db.session.scalars(select(Acknowledgement)).all() == []


def test_the_same_alert_before_its_expiry_is_confirmed(app, expired):
    """The check is the expiry: a moment before it, the same confirmation is taken."""
    alert, member = expired
    before = alert.expires_at - timedelta(seconds=1)
    assert is_confirmable(alert, before)
    assert confirm(alert, member, AckChannel.SMS, now=before).created


def test_a_late_sms_reply_is_told_the_alert_is_over_and_counts_nothing(client, expired):
    """Replying 1 after the expiry: a clear answer, no acknowledgement, no 500."""
    alert, member = expired
    response = signed_post(client, "/sms/incoming", sms_form(member.phone, f"1 {alert.reference}"))
    assert response.status_code == 200
    [reply] = ElementTree.fromstring(response.data).iter("Message")
    assert reply.text == text("sms.cmd.alert_over", "fr", ref=alert.reference)
    assert db.session.scalars(select(Acknowledgement)).all() == []
