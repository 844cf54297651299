"""The `alert` commands: raise, release, reject, cancel, status, all-clear, list."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from alerts.models import Alert, AlertState, CloseReason, Delivery, Urgency
from core.extensions import db
from tests.lifecycle_support import transitions_of

MESSAGE = ["Incendie", "rue", "du", "Moulin:", "restez", "chez", "vous."]


def invoke(runner, *args: str):
    """Run `flask alert ...` and return the result."""
    return runner.invoke(args=["alert", *args])


def only_alert() -> Alert:
    """Return the one alert in the database."""
    db.session.expire_all()
    return db.session.scalars(select(Alert)).one()


def test_officer_raises_an_alert_awaiting_release(runner, world):
    """`alert raise` by an officer prints the reference and leaves it awaiting release."""
    result = invoke(runner, "raise", "--by", world.officer1.phone, "--to", "plp-a,PLP-B", *MESSAGE)
    assert result.exit_code == 0, result.output
    alert = only_alert()
    assert re.match(
        rf"alert {alert.reference} raised for PLP-A,PLP-B: awaiting release", result.output
    )
    assert alert.state == AlertState.AWAITING_RELEASE
    assert alert.text == " ".join(MESSAGE)
    assert (alert.urgency, alert.exercise) == (Urgency.URGENT, False)


def test_coordinator_raises_and_it_goes_out(runner, world):
    """`alert raise` by a coordinator of the PLP releases at once and prints the counts."""
    result = invoke(
        runner,
        "raise",
        "--by",
        world.coord_a.phone,
        "--to",
        "PLP-A",
        "--exercise",
        "--non-urgent",
        *MESSAGE,
    )
    assert result.exit_code == 0, result.output
    alert = only_alert()
    assert (
        f"exercise alert {alert.reference} released to PLP-A (delivering): 6 members"
        in result.output
    )
    assert (alert.urgency, alert.exercise) == (Urgency.NON_URGENT, True)


@pytest.mark.parametrize(
    ("by", "to", "error"),
    [
        ("+32499000000", "PLP-A", "Error: nobody has the number +32499000000"),
        ("officer1", "PLP-C", "Error: an officer of zone Z1 may only alert its PLPs, not PLP-C"),
        ("member_a", "PLP-A", "Error: only a police officer, or a coordinator"),
        ("officer1", "NOWHERE", "Error: target NOWHERE: no PLP or zone has this code"),
    ],
)
def test_raise_refusals_write_nothing(runner, world, by, to, error):
    """A refused `alert raise` exits 1 with the reason and creates no alert."""
    phone = getattr(world, by).phone if not by.startswith("+") else by
    result = invoke(runner, "raise", "--by", phone, "--to", to, *MESSAGE)
    assert result.exit_code == 1
    assert error in result.output
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 0


def raise_by_officer(runner, world) -> Alert:
    """Raise an alert to PLP A by officer1 through the command."""
    result = invoke(runner, "raise", "--by", world.officer1.phone, "--to", "PLP-A", *MESSAGE)
    assert result.exit_code == 0, result.output
    return only_alert()


def test_release_by_coordinator(runner, world):
    """`alert release REF --by` releases, plans, and prints the plan."""
    alert = raise_by_officer(runner, world)
    result = invoke(runner, "release", alert.reference.lower(), "--by", world.coord_a.phone)
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"alert {alert.reference} released: 6 members, 21 deliveries planned, 1 unreachable\n"
    )
    alert = only_alert()
    assert alert.state == AlertState.DELIVERING
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 22


def test_release_by_member_is_refused(runner, world):
    """A member cannot release from the command line either; nothing changes."""
    alert = raise_by_officer(runner, world)
    result = invoke(runner, "release", alert.reference, "--by", world.member_a.phone)
    assert result.exit_code == 1
    assert "Error: only a coordinator or steering member of PLP-A may release" in result.output
    assert only_alert().state == AlertState.AWAITING_RELEASE
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_reject_then_release_is_refused(runner, world):
    """After `alert reject`, a release says the alert was rejected."""
    alert = raise_by_officer(runner, world)
    assert invoke(runner, "reject", alert.reference, "--by", world.steering_a.phone).exit_code == 0
    result = invoke(runner, "release", alert.reference, "--by", world.coord_a.phone)
    assert result.exit_code == 1
    assert f"Error: alert {alert.reference} is rejected: it cannot be released" in result.output
    assert only_alert().state == AlertState.REJECTED


def test_cancel_by_operator(runner, world):
    """`alert cancel REF` without --by closes the alert as cancelled, by the system."""
    alert = raise_by_officer(runner, world)
    result = invoke(runner, "cancel", alert.reference)
    assert result.exit_code == 0, result.output
    alert = only_alert()
    assert (alert.state, alert.close_reason) == (AlertState.CLOSED, CloseReason.CANCELLED)
    assert transitions_of(alert)[-1] == ("awaiting_release", "closed", None)


def test_unknown_reference_is_refused(runner, world):
    """A reference that matches no alert is a one-line error."""
    result = invoke(runner, "status", "ZZZZ")
    assert result.exit_code == 1
    assert "Error: no alert with reference ZZZZ" in result.output


def test_status_prints_state_and_counts(runner, world):
    """`alert status REF` shows the state and every count."""
    alert = raise_by_officer(runner, world)
    invoke(runner, "release", alert.reference, "--by", world.coord_a.phone)
    result = invoke(runner, "status", f"#{alert.reference}")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"alert {alert.reference} for PLP-A: delivering"
    counts = dict(line.split() for line in lines[2:])
    assert counts == {
        "members": "6",
        "confirmed": "0",
        "reached": "0",
        "pending": "5",
        "unreachable": "1",
        "planned": "22",
        "attempted": "0",
    }


def test_all_clear_command(runner, world):
    """`alert all-clear` reports how many people are texted; a member is refused."""
    alert = raise_by_officer(runner, world)
    invoke(runner, "release", alert.reference, "--by", world.coord_a.phone)
    refused = invoke(runner, "all-clear", alert.reference, "--by", world.member_a.phone, "Fin.")
    assert refused.exit_code == 1
    result = invoke(
        runner, "all-clear", alert.reference, "--by", world.officer1.phone, "Fin", "d'alerte."
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"all-clear of alert {alert.reference} sent to 0 people\n"
    assert only_alert().all_clear_text == "Fin d'alerte."


def test_list_shows_latest_first(runner, world):
    """`alert list` shows the newest alert first, with its state and targets."""
    first = raise_by_officer(runner, world)
    invoke(runner, "reject", first.reference, "--by", world.coord_a.phone)
    invoke(runner, "raise", "--by", world.officer1.phone, "--to", "Z1", "--exercise", *MESSAGE)
    result = invoke(runner, "list", "--limit", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.match(
        r"^\w{4} +\S+ \S+  awaiting_release +PLP-A,PLP-B +\[exercise\] Incendie", lines[0]
    )
    assert lines[1] == "(1 of 2 alerts)"
    everything = invoke(runner, "list").output.splitlines()
    assert len(everything) == 2
    assert everything[1].startswith(f"{first.reference} ")
    assert "rejected" in everything[1]


def test_list_without_alerts(runner, world):
    """`alert list` on an empty database says so."""
    assert invoke(runner, "list").output == "no alerts\n"
