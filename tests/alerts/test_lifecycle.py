"""The alert lifecycle: states, transitions, release and rejection, cancel, close, all-clear."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from alerts import raising
from alerts.confirmation import confirm
from alerts.delivery import schedule
from alerts.delivery.provider import InvalidNumberError, ProviderUnavailableError
from alerts.lifecycle import (
    TRANSITIONS,
    AlertError,
    IllegalTransition,
    cancel_alert,
    close_alert,
    reject_alert,
    release_alert,
    send_all_clear,
    transition,
)
from alerts.models import (
    AckChannel,
    Alert,
    AlertOrigin,
    AlertState,
    Channel,
    CloseReason,
    Delivery,
    DeliveryStatus,
    Membership,
    Partnership,
    Zone,
    utcnow,
)
from alerts.notices import send_notice
from alerts.raising import REFERENCE_ALPHABET, raise_alert, resolve_targets
from core.extensions import db
from core.queue import get_queue
from prompts import text
from tests.lifecycle_support import (
    audit_actions,
    deliveries_of,
    queued_job_ids,
    transitions_of,
)

MESSAGE = "Cambriolage en cours rue du Parc 12. Golf grise 1-ABC-234."


def police_alert(world, *targets: Partnership, **fields) -> Alert:
    """Raise and commit an alert by officer1 (zone Z1), awaiting release."""
    alert = raise_alert(
        author=world.officer1,
        targets=list(targets) or [world.a],
        text=MESSAGE,
        origin=AlertOrigin.SMS,
        **fields,
    )
    db.session.commit()
    return alert


# ---------------------------------------------------------------------------------------
# Transitions


ALL_STATES = list(AlertState)
ILLEGAL = [(a, b) for a in ALL_STATES for b in ALL_STATES if b not in TRANSITIONS[a]]


def test_transition_table_is_the_documented_one():
    """Awaiting -> released|rejected|closed, released -> delivering|closed, delivering -> closed."""
    assert {s: set(t) for s, t in TRANSITIONS.items()} == {
        AlertState.AWAITING_RELEASE: {AlertState.RELEASED, AlertState.REJECTED, AlertState.CLOSED},
        AlertState.RELEASED: {AlertState.DELIVERING, AlertState.CLOSED},
        AlertState.DELIVERING: {AlertState.CLOSED},
        AlertState.REJECTED: set(),
        AlertState.CLOSED: set(),
    }


@pytest.mark.parametrize(("start", "to"), ILLEGAL, ids=[f"{a}-{b}" for a, b in ILLEGAL])
def test_illegal_transition_is_refused_and_changes_nothing(world, start, to):
    """Every move outside the table raises IllegalTransition; state and history stay."""
    alert = police_alert(world)
    db.session.execute(update(Alert).where(Alert.id == alert.id).values(state=start))
    db.session.commit()
    db.session.expire_all()
    history = transitions_of(alert)
    reason = CloseReason.CANCELLED if to == AlertState.CLOSED else None
    with pytest.raises(IllegalTransition, match=f"alert {alert.reference} is"):
        transition(alert, to, actor=world.coord_a, reason=reason)
    db.session.commit()
    db.session.expire_all()
    assert alert.state == start
    assert transitions_of(alert) == history


def test_transition_records_who_when_and_an_audit_event(world):
    """A legal move sets the state, writes an AlertTransition and an audit event."""
    alert = police_alert(world)
    at = utcnow() + timedelta(seconds=5)
    transition(alert, AlertState.REJECTED, actor=world.coord_a, now=at)
    db.session.commit()
    db.session.expire_all()
    assert alert.state == AlertState.REJECTED
    assert transitions_of(alert)[-1] == ("awaiting_release", "rejected", world.coord_a.id)
    assert alert.transitions[-1].at == at
    assert audit_actions(alert)[-1] == "alert.rejected"


def test_close_needs_a_reason_and_only_close_takes_one(world):
    """Closing without a reason, or giving a reason to another move, is a programming error."""
    alert = police_alert(world)
    with pytest.raises(ValueError, match="reason"):
        transition(alert, AlertState.CLOSED, actor=None)
    with pytest.raises(ValueError, match="reason"):
        transition(alert, AlertState.REJECTED, actor=None, reason=CloseReason.CANCELLED)
    assert alert.state == AlertState.AWAITING_RELEASE


def test_stale_state_loses_the_compare_and_set(world):
    """A move based on a state another transaction changed since is refused, not applied."""
    alert = police_alert(world)
    assert alert.state == AlertState.AWAITING_RELEASE  # loaded: now stale
    db.session.execute(
        update(Alert)
        .where(Alert.id == alert.id)
        .values(state=AlertState.REJECTED)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(IllegalTransition, match="is rejected: it cannot be released"):
        transition(alert, AlertState.RELEASED, actor=world.coord_a)
    db.session.commit()
    db.session.expire_all()
    assert alert.state == AlertState.REJECTED
    assert alert.released_at is None


# ---------------------------------------------------------------------------------------
# Raising


def test_officer_alert_awaits_release_and_notifies_coordinators_after_commit(world):
    """An officer's alert waits for release; the coordinators' job is queued at commit."""
    now = utcnow()
    alert = raise_alert(
        author=world.officer1, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS, now=now
    )
    assert f"notify-coordinators-{alert.id}" not in queued_job_ids()
    db.session.commit()
    assert alert.state == AlertState.AWAITING_RELEASE
    assert alert.author_id == world.officer1.id
    assert alert.expires_at == now + timedelta(minutes=120)
    assert alert.language == "fr"
    assert deliveries_of(alert) == []
    assert transitions_of(alert) == [(None, "awaiting_release", world.officer1.id)]
    assert audit_actions(alert) == ["alert.raise"]
    assert f"notify-coordinators-{alert.id}" in queued_job_ids()


def test_rolled_back_alert_queues_nothing(world):
    """An alert whose transaction rolls back leaves no job behind."""
    alert_id = raise_alert(
        author=world.officer1, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS
    ).id
    db.session.rollback()
    assert db.session.get(Alert, alert_id) is None
    assert f"notify-coordinators-{alert_id}" not in queued_job_ids()


def test_reference_is_short_unambiguous_and_unique(world):
    """References are 4 characters of the SMS-safe alphabet, never reused."""
    references = {police_alert(world).reference for _ in range(40)}
    assert len(references) == 40
    assert all(re.fullmatch(f"[{REFERENCE_ALPHABET}]{{4}}", ref) for ref in references)


def test_reference_collision_draws_another(world, monkeypatch):
    """A drawn reference already in use is not reused: the next draw is taken."""
    first = police_alert(world)
    draws = iter(first.reference + "WXY3")
    monkeypatch.setattr(raising.secrets, "choice", lambda _alphabet: next(draws))
    second = police_alert(world)
    assert second.reference == "WXY3"


def test_coordinator_alert_for_own_plp_is_released_at_once(world):
    """A coordinator's alert for their PLP is released and planned in the same transaction."""
    alert = raise_alert(
        author=world.coord_a, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS
    )
    db.session.commit()
    assert alert.state == AlertState.DELIVERING
    assert alert.released_by_id == world.coord_a.id
    assert [t[1] for t in transitions_of(alert)] == ["awaiting_release", "released", "delivering"]
    planned_people = {d.person_id for d in deliveries_of(alert)}
    members_of_a = {
        world.coord_a.id,
        world.steering_a.id,
        world.member_a.id,
        world.landline_a.id,
        world.both_ab.id,
        world.nothing_a.id,
    }
    assert planned_people == members_of_a
    assert f"notify-coordinators-{alert.id}" not in queued_job_ids()


def test_steering_member_alert_is_released_at_once(world):
    """A steering committee member also decides for their PLP."""
    alert = raise_alert(
        author=world.steering_a, targets=[world.a], text=MESSAGE, origin=AlertOrigin.WEB
    )
    db.session.commit()
    assert alert.state == AlertState.DELIVERING


def test_expiry_is_the_shortest_of_the_targets_charters(world):
    """An alert to several PLPs expires by the strictest charter."""
    world.b.charter_json = {"alert_expiry_minutes": 45}
    db.session.commit()
    now = utcnow()
    alert = raise_alert(
        author=world.officer1,
        targets=[world.a, world.b],
        text=MESSAGE,
        origin=AlertOrigin.SMS,
        now=now,
    )
    assert alert.expires_at == now + timedelta(minutes=45)


def test_officer_alert_without_required_release_goes_out_at_once(world):
    """When no target's charter requires a release, an officer's alert is released by itself."""
    world.a.charter_json = {"requires_release": False}
    db.session.commit()
    alert = police_alert(world, world.a)
    assert alert.state == AlertState.DELIVERING
    assert alert.released_by_id is None
    assert transitions_of(alert)[1] == ("awaiting_release", "released", None)


@pytest.mark.parametrize("bad_text", ["", "   \n ", "x" * 1001])
def test_alert_text_must_be_one_to_a_thousand_characters(world, bad_text):
    """An empty or over-long text is refused and nothing is written."""
    with pytest.raises(AlertError, match="text"):
        raise_alert(author=world.officer1, targets=[world.a], text=bad_text, origin=AlertOrigin.SMS)
    db.session.commit()
    assert db.session.scalars(select(Alert)).all() == []


def test_alert_text_is_one_paragraph(world):
    """Line breaks and runs of spaces (pasted text) become single spaces."""
    alert = raise_alert(
        author=world.officer1,
        targets=[world.a],
        text="  Vol\nà l'arraché   rue Haute ",
        origin=AlertOrigin.SMS,
    )
    assert alert.text == "Vol à l'arraché rue Haute"


def test_alert_without_targets_is_refused(world):
    """An alert must have at least one PLP."""
    with pytest.raises(AlertError, match="no target"):
        raise_alert(author=world.officer1, targets=[], text=MESSAGE, origin=AlertOrigin.SMS)


def test_unknown_language_is_refused(world):
    """The alert's language is one the prompts speak."""
    with pytest.raises(AlertError, match="language 'xx'"):
        raise_alert(
            author=world.officer1,
            targets=[world.a],
            text=MESSAGE,
            origin=AlertOrigin.SMS,
            language="xx",
        )


# ---------------------------------------------------------------------------------------
# Targets


def test_zone_code_means_all_its_plps(world):
    """A zone code targets every PLP of the zone."""
    assert [p.code for p in resolve_targets(["z1"], officer=None)] == ["PLP-A", "PLP-B"]


def test_targets_are_deduplicated_in_order(world):
    """A PLP named twice, or by itself and through its zone, is targeted once."""
    targets = resolve_targets(["PLP-B", "Z1", "plp-b"], officer=world.officer1.officer)
    assert [p.code for p in targets] == ["PLP-B", "PLP-A"]


@pytest.mark.parametrize("code", ["NOPE", "a b", ""])
def test_unknown_target_is_refused(world, code):
    """A code that is no PLP or zone is refused with its name."""
    with pytest.raises(AlertError, match="target"):
        resolve_targets([code], officer=None)


def test_zone_without_plp_is_refused(world):
    """A zone with no PLP designates nobody: refused rather than an empty alert."""

    db.session.add(Zone(code="Z3", name="Zone Trois"))
    db.session.commit()
    with pytest.raises(AlertError, match="Z3: the zone has no PLP"):
        resolve_targets(["Z3"], officer=None)


def test_no_codes_is_refused(world):
    """An empty target list is refused."""
    with pytest.raises(AlertError, match="no target"):
        resolve_targets([], officer=None)


# ---------------------------------------------------------------------------------------
# Release and rejection


def test_release_plans_deliveries_and_starts_delivering(world):
    """A coordinator's release records who and when, plans the members, then delivers."""
    alert = police_alert(world)
    now = utcnow()
    summary = release_alert(alert, by=world.coord_a, now=now)
    db.session.commit()
    db.session.expire_all()
    assert alert.state == AlertState.DELIVERING
    assert alert.released_at == now
    assert alert.released_by_id == world.coord_a.id
    assert summary.members == 6
    assert summary.unreachable == 1
    assert [t[1] for t in transitions_of(alert)] == ["awaiting_release", "released", "delivering"]
    assert audit_actions(alert) == ["alert.raise", "alert.released", "alert.delivering"]
    skipped = [d for d in deliveries_of(alert, world.nothing_a)]
    assert [d.status for d in skipped] == [DeliveryStatus.SKIPPED]


def test_release_tells_the_other_deciders_and_the_author(world):
    """The author and the other coordinators get sms.released_by; the releaser does not."""
    alert = police_alert(world)
    release_alert(alert, by=world.steering_a)
    db.session.commit()
    jobs = queued_job_ids("urgent")
    told = {
        pid
        for pid in (world.coord_a.id, world.steering_a.id, world.officer1.id)
        if f"notice-{alert.id}-released-{pid}" in jobs
    }
    assert told == {world.coord_a.id, world.officer1.id}

    job = get_queue("urgent").fetch_job(f"notice-{alert.id}-released-{world.coord_a.id}")
    assert job.args == (
        world.coord_a.id,
        text("sms.released_by", "fr", ref=alert.reference, name=world.steering_a.name, members=6),
    )


def test_second_decision_is_refused(world):
    """After a release, another release or a rejection is refused with the reason."""
    alert = police_alert(world)
    release_alert(alert, by=world.coord_a)
    db.session.commit()
    with pytest.raises(IllegalTransition, match="already released"):
        release_alert(alert, by=world.steering_a)
    with pytest.raises(IllegalTransition, match="already released"):
        reject_alert(alert, by=world.steering_a)
    db.session.rollback()
    assert alert.released_by_id == world.coord_a.id


def test_release_of_an_expired_alert_is_refused(world):
    """An alert past its expiry is not released: nobody is called about an event that is over."""
    alert = police_alert(world)
    with pytest.raises(AlertError, match="expired"):
        release_alert(alert, by=world.coord_a, now=alert.expires_at + timedelta(seconds=1))
    db.session.rollback()
    assert alert.state == AlertState.AWAITING_RELEASE
    assert deliveries_of(alert) == []


def test_reject_tells_the_others_and_sends_nothing(world):
    """A rejection plans no delivery and notifies the author and other deciders."""
    alert = police_alert(world)
    reject_alert(alert, by=world.coord_a)
    db.session.commit()
    assert alert.state == AlertState.REJECTED
    assert deliveries_of(alert) == []
    jobs = queued_job_ids("urgent")
    assert f"notice-{alert.id}-rejected-{world.officer1.id}" in jobs
    assert f"notice-{alert.id}-rejected-{world.steering_a.id}" in jobs
    assert f"notice-{alert.id}-rejected-{world.coord_a.id}" not in jobs


def test_automatic_release_tells_everyone(world):
    """A release by the charter's timer (by None) tells every decider and the author."""
    alert = police_alert(world)
    release_alert(alert, by=None)
    db.session.commit()
    assert alert.state == AlertState.DELIVERING
    assert alert.released_by_id is None
    jobs = queued_job_ids("urgent")
    for person in (world.coord_a, world.steering_a, world.officer1):
        assert f"notice-{alert.id}-released-{person.id}" in jobs


def test_release_with_nobody_to_reach_closes_exhausted(world):
    """An alert whose members all lack a usable channel ends at once as exhausted."""

    lonely = Partnership(code="PLP-L", name="Lonely", zone=world.z1, charter_json={})
    db.session.add(lonely)
    db.session.add(Membership(person=world.nothing_a, partnership=lonely))
    db.session.commit()
    alert = police_alert(world, lonely)
    release_alert(alert, by=None)
    db.session.commit()
    assert alert.state == AlertState.CLOSED
    assert alert.close_reason == CloseReason.EXHAUSTED


@pytest.mark.postgres
def test_two_coordinators_at_once_first_decision_wins(app, world):
    """Two deciders answering at the same moment: exactly one wins, the other is refused."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL's row locks (SQLite serialises them)")
    alert_id = police_alert(world).id
    deciders = {"release": world.coord_a.id, "reject": world.steering_a.id}
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(kind: str) -> None:
        with app.app_context():
            alert = db.session.get(Alert, alert_id)
            person = db.session.get(type(world.coord_a), deciders[kind])
            barrier.wait()
            try:
                if kind == "release":
                    release_alert(alert, by=person)
                else:
                    reject_alert(alert, by=person)
                db.session.commit()
                outcomes[kind] = "won"
            except IllegalTransition:
                db.session.rollback()
                outcomes[kind] = "refused"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=decide, args=(kind,)) for kind in deciders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["refused", "won"]
    db.session.expire_all()
    alert = db.session.get(Alert, alert_id)
    winner = next(kind for kind, outcome in outcomes.items() if outcome == "won")
    assert alert.state == (AlertState.DELIVERING if winner == "release" else AlertState.REJECTED)
    assert len([t for t in transitions_of(alert) if t[0] == "awaiting_release"]) == 1


# ---------------------------------------------------------------------------------------
# Cancel and close


def test_cancel_skips_planned_steps_and_keeps_sent_ones(world):
    """Cancelling closes the alert; steps not yet sent are skipped, sent ones are kept."""
    alert = police_alert(world)
    release_alert(alert, by=world.coord_a)
    db.session.commit()
    sent = deliveries_of(alert, world.member_a)[0]
    sent.status = DeliveryStatus.QUEUED
    db.session.commit()
    cancel_alert(alert, by=world.officer1)
    db.session.commit()
    db.session.expire_all()
    assert alert.state == AlertState.CLOSED
    assert alert.close_reason == CloseReason.CANCELLED
    statuses = {d.status for d in deliveries_of(alert) if d.id != sent.id}
    assert statuses == {DeliveryStatus.SKIPPED}
    assert db.session.get(Delivery, sent.id).status == DeliveryStatus.QUEUED


def test_cancel_an_alert_awaiting_release(world):
    """The author may withdraw an alert before anyone released it."""
    alert = police_alert(world)
    cancel_alert(alert, by=world.officer1)
    db.session.commit()
    assert (alert.state, alert.close_reason) == (AlertState.CLOSED, CloseReason.CANCELLED)
    assert transitions_of(alert)[-1] == ("awaiting_release", "closed", world.officer1.id)


def test_cancel_twice_is_refused(world):
    """A closed alert cannot be cancelled again."""
    alert = police_alert(world)
    cancel_alert(alert, by=None)
    db.session.commit()
    with pytest.raises(IllegalTransition, match="is closed"):
        cancel_alert(alert, by=None)


def test_close_records_reason_and_time(world):
    """close_alert sets the reason and the closing time."""
    alert = police_alert(world)
    release_alert(alert, by=world.coord_a)
    at = utcnow() + timedelta(minutes=1)
    close_alert(alert, CloseReason.EXPIRED, now=at)
    db.session.commit()
    db.session.expire_all()
    assert (alert.state, alert.close_reason, alert.closed_at) == (
        AlertState.CLOSED,
        CloseReason.EXPIRED,
        at,
    )
    assert audit_actions(alert)[-1] == "alert.closed"


# ---------------------------------------------------------------------------------------
# All-clear


def released_alert(world, **fields) -> Alert:
    """An alert to PLP A released by its coordinator (committed)."""
    alert = police_alert(world, world.a, **fields)
    release_alert(alert, by=world.coord_a)
    db.session.commit()
    return alert


def reach(alert: Alert, person, channel: Channel, status: DeliveryStatus, **fields) -> None:
    """Mark the person's first delivery on `channel` with `status`."""
    delivery = next(d for d in deliveries_of(alert, person) if d.channel == channel)
    delivery.status = status
    for key, value in fields.items():
        setattr(delivery, key, value)
    db.session.commit()


def test_all_clear_goes_to_the_reached_mobiles_only(world):
    """The all-clear is texted to who was reached or confirmed, on a mobile, once each."""
    alert = released_alert(world, exercise=True)
    reach(alert, world.member_a, Channel.SMS, DeliveryStatus.DELIVERED)
    reach(alert, world.landline_a, Channel.CALL, DeliveryStatus.COMPLETED, answered_by="human")
    confirm(alert, world.both_ab, AckChannel.SMS)
    db.session.commit()
    count = send_all_clear(alert, by=world.officer1, text="Suspect interpellé. Merci.")
    db.session.commit()
    assert count == 2  # member_a and both_ab; the landline is not texted
    assert alert.all_clear_text == "Suspect interpellé. Merci."
    jobs = queued_job_ids("default")
    expected = {f"all-clear-{alert.id}-{p.id}" for p in (world.member_a, world.both_ab)}
    assert {j for j in jobs if j.startswith("all-clear-")} == expected

    job = get_queue("default").fetch_job(f"all-clear-{alert.id}-{world.both_ab.id}")
    assert job.args[1] == text(
        "sms.all_clear",
        "nl",
        exercise=text("sms.exercise_prefix", "nl"),
        plp="Quartier A",
        ref=alert.reference,
        message="Suspect interpellé. Merci.",
    )
    assert audit_actions(alert)[-1] == "alert.all_clear"


def test_all_clear_is_sent_once(world):
    """A second all-clear is refused: members are not texted twice."""
    alert = released_alert(world)
    send_all_clear(alert, by=world.coord_a, text="Fin d'alerte.")
    db.session.commit()
    with pytest.raises(AlertError, match="already sent"):
        send_all_clear(alert, by=world.coord_a, text="Fin d'alerte.")


def test_all_clear_of_an_unreleased_alert_is_refused(world):
    """An alert nobody received has nothing to clear."""
    alert = police_alert(world)
    with pytest.raises(AlertError, match="never released"):
        send_all_clear(alert, by=world.officer1, text="Fin.")
    assert alert.all_clear_text is None


def test_all_clear_needs_text(world):
    """An empty all-clear is refused."""
    alert = released_alert(world)
    with pytest.raises(AlertError, match="no text"):
        send_all_clear(alert, by=world.officer1, text="  ")


# ---------------------------------------------------------------------------------------
# The notice job


def test_notice_is_texted_through_the_provider(world, provider):
    """send_notice texts the body to the person's mobile, with a status callback."""
    assert send_notice(world.coord_a.id, "Alerte réf ABCD diffusée.") == "sent"
    assert [(m.to, m.body) for m in provider.messages] == [
        (world.coord_a.phone, "Alerte réf ABCD diffusée.")
    ]
    assert provider.messages[0].status_callback_url.endswith("/sms/status?notice=1")


def test_notice_skips_landlines_and_opted_out(world, provider):
    """A landline or an opted-out person gets no notice."""
    assert send_notice(world.landline_a.id, "x") == "skipped"
    assert send_notice(world.nothing_a.id, "x") == "skipped"
    assert send_notice(999_999, "x") == "skipped"
    assert provider.messages == []


def test_notice_retries_a_carrier_outage_later(world, provider):
    """A retryable carrier error schedules the next try; a permanent one gives up."""

    provider.fail_next(ProviderUnavailableError("carrier down"))
    assert send_notice(world.coord_a.id, "x") == "retrying"
    scheduled = ScheduledJobRegistry(queue=get_queue("urgent")).get_job_ids()
    assert len(scheduled) == 1
    assert get_queue("urgent").fetch_job(scheduled[0]).args == (world.coord_a.id, "x", 2)
    provider.fail_next(InvalidNumberError("no such number"))
    assert send_notice(world.coord_a.id, "x", 2) == "failed"
    assert len(ScheduledJobRegistry(queue=get_queue("urgent")).get_job_ids()) == 1


def test_notice_gives_up_after_the_last_retry(world, provider):
    """After the last retry delay, a carrier outage is not retried again."""
    provider.fail_next(ProviderUnavailableError("carrier down"))
    last = len(schedule.RETRY_DELAYS["notice"]) + 1
    assert send_notice(world.coord_a.id, "x", last) == "failed"
