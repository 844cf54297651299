"""The `alert` command group: raise, decide, cancel, follow and clear alerts from a shell.

`flask --app wsgi alert raise --by PHONE --to CODE[,CODE] TEXT`, `alert release REF --by
PHONE`, `alert reject`, `alert cancel`, `alert status`, `alert all-clear`, `alert list`.
Each command is one transaction: a refusal (not allowed, already decided, unknown code)
is a one-line `Error: ...`, exit status 1, and nothing is written.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from alerts.lifecycle import (
    AlertError,
    cancel_alert,
    reject_alert,
    release_alert,
    send_all_clear,
)
from alerts.models import Alert, AlertOrigin, AlertState, Person, Urgency
from alerts.people import directory
from alerts.people.directory import DirectoryError
from alerts.raising import raise_alert, resolve_targets
from alerts.tracking import alert_counts
from core.cli import cli_transaction
from core.extensions import db

alert_cli = AppGroup("alert", help="Alerts: raise, release or reject, cancel, follow, clear.")

LOCAL_TIME = ZoneInfo("Europe/Brussels")  # what the operators read on their clocks


def _transaction():
    return cli_transaction(AlertError, DirectoryError)


def _person(phone: str) -> Person:
    person = directory.find_person(phone)
    if person is None:
        raise DirectoryError(f"nobody has the number {phone.strip()}")
    return person


def _alert(reference: str) -> Alert:
    canonical = (reference or "").strip().lstrip("#").upper()
    alert = db.session.scalar(select(Alert).where(Alert.reference == canonical))
    if alert is None:
        raise AlertError(f"no alert with reference {reference.strip()}")
    return alert


def _local(moment: datetime | None) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _counts_line(alert: Alert) -> str:
    counts = alert_counts(alert.id)
    return (
        f"{counts.members} members: {counts.confirmed} confirmed, {counts.reached} reached, "
        f"{counts.pending} pending, {counts.unreachable} unreachable"
    )


def _targets(alert: Alert) -> str:
    return ",".join(target.partnership.code for target in alert.targets)


@alert_cli.command("raise")
@click.option("--by", "phone", required=True, help="The phone of the officer or coordinator.")
@click.option("--to", "codes", required=True, help="PLP or zone codes, comma-separated.")
@click.option("--exercise", is_flag=True, help="An exercise: announced as such everywhere.")
@click.option("--non-urgent", is_flag=True, help="Green news: e-mail (or the next bulletin).")
@click.argument("words", metavar="TEXT", nargs=-1, required=True)
def alert_raise(phone, codes, exercise, non_urgent, words) -> None:
    """Raise an alert with TEXT for PLPs or zones; a coordinator's is released at once."""
    with _transaction():
        author = _person(phone)
        # No zone filter here: raise_alert decides who may alert what, with its reasons.
        targets = resolve_targets([c for c in codes.split(",") if c.strip()], officer=None)
        alert = raise_alert(
            author=author,
            targets=targets,
            text=" ".join(words),
            origin=AlertOrigin.CLI,
            urgency=Urgency.NON_URGENT if non_urgent else Urgency.URGENT,
            exercise=exercise,
        )
    kind = "exercise alert" if alert.exercise else "alert"
    if alert.state == AlertState.AWAITING_RELEASE:
        click.echo(
            f"{kind} {alert.reference} raised for {_targets(alert)}: awaiting release "
            f"by a coordinator (expires {_local(alert.expires_at)})"
        )
    else:
        click.echo(
            f"{kind} {alert.reference} released to {_targets(alert)} "
            f"({alert.state.value}): {_counts_line(alert)}"
        )


@alert_cli.command("release")
@click.argument("reference", metavar="REF")
@click.option("--by", "phone", required=True, help="The phone of a coordinator or steering member.")
def alert_release(reference: str, phone: str) -> None:
    """Release alert REF to the members (as a coordinator or steering member)."""
    with _transaction():
        alert = _alert(reference)
        summary = release_alert(alert, by=_person(phone))
    click.echo(
        f"alert {alert.reference} released: {summary.members} members, "
        f"{summary.deliveries} deliveries planned, {summary.unreachable} unreachable"
    )


@alert_cli.command("reject")
@click.argument("reference", metavar="REF")
@click.option("--by", "phone", required=True, help="The phone of a coordinator or steering member.")
def alert_reject(reference: str, phone: str) -> None:
    """Reject alert REF: it is not sent."""
    with _transaction():
        alert = _alert(reference)
        reject_alert(alert, by=_person(phone))
    click.echo(f"alert {alert.reference} rejected")


@alert_cli.command("cancel")
@click.argument("reference", metavar="REF")
@click.option("--by", "phone", help="Who cancels (default: the operator at this shell).")
def alert_cancel(reference: str, phone: str | None) -> None:
    """Cancel alert REF: steps not yet sent are skipped."""
    with _transaction():
        alert = _alert(reference)
        cancel_alert(alert, by=_person(phone) if phone else None)
    click.echo(f"alert {alert.reference} cancelled: {_counts_line(alert)}")


@alert_cli.command("status")
@click.argument("reference", metavar="REF")
def alert_status(reference: str) -> None:
    """Show where alert REF stands: state and counts."""
    with _transaction():
        alert = _alert(reference)
        counts = alert_counts(alert.id)
    state = alert.state.value + (f" ({alert.close_reason.value})" if alert.close_reason else "")
    click.echo(
        f"alert {alert.reference} for {_targets(alert)}: {state}"
        f"{' [exercise]' if alert.exercise else ''}"
    )
    click.echo(
        f"  raised {_local(alert.created_at)}, released {_local(alert.released_at)}, "
        f"closed {_local(alert.closed_at)}, expires {_local(alert.expires_at)}"
    )
    for name in (
        "members",
        "confirmed",
        "reached",
        "pending",
        "unreachable",
        "planned",
        "attempted",
    ):
        click.echo(f"  {name:<12}{getattr(counts, name):>7}")


@alert_cli.command("all-clear")
@click.argument("reference", metavar="REF")
@click.option("--by", "phone", required=True, help="The phone of the officer or coordinator.")
@click.argument("words", metavar="TEXT", nargs=-1, required=True)
def alert_all_clear(reference: str, phone: str, words: tuple[str, ...]) -> None:
    """Text the all-clear TEXT of alert REF to everyone it reached."""
    with _transaction():
        alert = _alert(reference)
        texted = send_all_clear(alert, by=_person(phone), text=" ".join(words))
    click.echo(f"all-clear of alert {alert.reference} sent to {texted} people")


@alert_cli.command("list")
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="How many of the latest alerts to show.",
)
def alert_list(limit: int) -> None:
    """List the latest alerts, newest first."""
    with _transaction():
        alerts = list(
            db.session.scalars(
                select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
            )
        )
        total = db.session.scalar(select(func.count()).select_from(Alert))
        lines = [
            f"{a.reference:<6} {_local(a.created_at)}  {a.state.value:<16} "
            f"{_targets(a):<20} {'[exercise] ' if a.exercise else ''}{_excerpt(a.text)}"
            for a in alerts
        ]
    if not lines:
        click.echo("no alerts")
    for line in lines:
        click.echo(line)
    if total > len(lines):
        click.echo(f"({len(lines)} of {total} alerts)")


def _excerpt(message: str, width: int = 50) -> str:
    return message if len(message) <= width else message[: width - 1] + "…"
