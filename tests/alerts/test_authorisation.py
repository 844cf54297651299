"""Who may do what to an alert: officers within their zone, deciders for their PLPs."""

from __future__ import annotations

import pytest

from alerts.lifecycle import (
    NotAllowed,
    can_decide,
    cancel_alert,
    reject_alert,
    release_alert,
    send_all_clear,
)
from alerts.models import Alert, AlertOrigin, AlertState
from alerts.raising import raise_alert, resolve_targets
from core.extensions import db
from tests.lifecycle_support import deliveries_of, transitions_of

MESSAGE = "Tentative de vol de véhicule, rue des Tilleuls."


def police_alert(world, *targets, author=None):
    """An alert by officer1 (or `author`), awaiting release, committed."""
    alert = raise_alert(
        author=author or world.officer1,
        targets=list(targets) or [world.a],
        text=MESSAGE,
        origin=AlertOrigin.SMS,
    )
    db.session.commit()
    return alert


def test_officer_cannot_target_another_zones_plp(world):
    """An officer of zone Z1 naming PLP-C (zone Z2) is refused, with the PLP named."""
    with pytest.raises(NotAllowed, match="officer of zone Z1 may only alert its PLPs, not PLP-C"):
        resolve_targets(["PLP-A", "PLP-C"], officer=world.officer1.officer)


def test_officer_cannot_target_another_zone(world):
    """A zone code of another zone is refused too."""
    with pytest.raises(NotAllowed, match="PLP-C"):
        resolve_targets(["Z2"], officer=world.officer1.officer)


def test_raise_alert_rechecks_the_officers_zone(world):
    """raise_alert itself refuses another zone's PLP, whoever resolved the targets."""
    with pytest.raises(NotAllowed, match="PLP-C"):
        raise_alert(
            author=world.officer1, targets=[world.a, world.c], text=MESSAGE, origin=AlertOrigin.SMS
        )
    db.session.rollback()

    assert db.session.query(Alert).count() == 0


def test_inactive_officer_cannot_raise(world):
    """An officer marked inactive is no longer allowed to raise alerts."""
    world.officer1.officer.active = False
    db.session.commit()
    with pytest.raises(NotAllowed, match="only a police officer"):
        raise_alert(author=world.officer1, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS)


def test_member_cannot_raise(world):
    """A plain member may not raise an alert."""
    with pytest.raises(NotAllowed, match="only a police officer"):
        raise_alert(author=world.member_a, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS)


def test_coordinator_cannot_raise_for_another_plp(world):
    """A coordinator of A raising for A and B is refused: they decide for A only."""
    with pytest.raises(NotAllowed, match="only a police officer"):
        raise_alert(
            author=world.coord_a, targets=[world.a, world.b], text=MESSAGE, origin=AlertOrigin.SMS
        )


def test_member_cannot_release(world):
    """A member of the targeted PLP may not release; nothing is planned."""
    alert = police_alert(world)
    with pytest.raises(NotAllowed, match="only a coordinator or steering member of PLP-A"):
        release_alert(alert, by=world.member_a)
    db.session.rollback()
    assert alert.state == AlertState.AWAITING_RELEASE
    assert deliveries_of(alert) == []
    assert transitions_of(alert) == [(None, "awaiting_release", world.officer1.id)]


def test_member_cannot_reject(world):
    """A member may not reject either."""
    alert = police_alert(world)
    with pytest.raises(NotAllowed):
        reject_alert(alert, by=world.member_a)
    assert alert.state == AlertState.AWAITING_RELEASE


def test_officer_cannot_release_their_own_alert(world):
    """The police propose; only a coordinator of the PLP releases."""
    alert = police_alert(world)
    with pytest.raises(NotAllowed):
        release_alert(alert, by=world.officer1)


def test_coordinator_of_a_cannot_release_an_alert_for_b_only(world):
    """A coordinator of PLP A may not decide about an alert addressed to PLP B alone."""
    alert = police_alert(world, world.b)
    assert not can_decide(world.coord_a, alert)
    with pytest.raises(NotAllowed, match="PLP-B"):
        release_alert(alert, by=world.coord_a)
    with pytest.raises(NotAllowed, match="PLP-B"):
        reject_alert(alert, by=world.coord_a)
    assert alert.state == AlertState.AWAITING_RELEASE


def test_coordinator_of_one_target_may_decide_for_the_alert(world):
    """For an alert to A and B, a coordinator of B is one of its deciders."""
    alert = police_alert(world, world.a, world.b)
    assert can_decide(world.coord_b, alert)
    release_alert(alert, by=world.coord_b)
    db.session.commit()
    assert alert.state == AlertState.DELIVERING


def test_nobody_decides_anonymously(world):
    """can_decide(None, ...) is False."""
    alert = police_alert(world)
    assert not can_decide(None, alert)


def test_member_cannot_cancel_and_other_zone_officer_cannot_either(world):
    """Only the author, the zone's police or a decider may cancel."""
    alert = police_alert(world)
    for outsider in (world.member_a, world.officer2, world.coord_c):
        with pytest.raises(NotAllowed, match="may cancel"):
            cancel_alert(alert, by=outsider)
    assert alert.state == AlertState.AWAITING_RELEASE


@pytest.mark.parametrize("who", ["officer1", "coord_a", "steering_a"])
def test_zone_police_and_deciders_may_cancel(world, who):
    """The zone's officer (the author here) and the PLP's deciders may cancel."""
    alert = police_alert(world)
    cancel_alert(alert, by=getattr(world, who))
    db.session.commit()
    assert alert.state == AlertState.CLOSED


def test_member_cannot_send_the_all_clear(world):
    """A member may not send the all-clear."""
    alert = police_alert(world)
    release_alert(alert, by=world.coord_a)
    db.session.commit()
    with pytest.raises(NotAllowed, match="all-clear"):
        send_all_clear(alert, by=world.member_a, text="Fin d'alerte.")
    assert alert.all_clear_text is None
