"""People's command groups: `flask --app wsgi zone|plp|roster|person|police|demo`.

Commands are thin: parse options, call one domain function, commit, print. Domain
errors become a one-line `Error: ...` and exit status 1; nothing is half-written.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from types import SimpleNamespace

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from alerts.people import directory
from alerts.people.demo import DemoError, load_demo
from alerts.people.directory import DirectoryError
from alerts.people.enrolment import import_roster
from alerts.people.phones import format_international
from alerts.people.pins import generate_pin
from alerts.people.roster import RosterError, check_roster, seekable
from core.cli import cli_transaction
from core.extensions import db

zone_cli = AppGroup("zone", help="Police zones.")
plp_cli = AppGroup("plp", help="Partnerships (PLP / BIN).")
roster_cli = AppGroup("roster", help="Members of a partnership.")
person_cli = AppGroup("person", help="People: PINs.")
police_cli = AppGroup("police", help="Police officers.")


def _transaction():
    return cli_transaction(DirectoryError, DemoError)


@zone_cli.command("add")
@click.argument("code")
@click.argument("name")
def zone_add(code: str, name: str) -> None:
    """Add a police zone CODE with its NAME."""
    with _transaction():
        zone = directory.add_zone(code, name)
    click.echo(f"zone {zone.code} added: {zone.name}")


@plp_cli.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--zone", "zone_code", required=True, help="The police zone's code.")
@click.option("--language", default="fr", show_default=True, help="fr, nl, de or en.")
def plp_add(code: str, name: str, zone_code: str, language: str) -> None:
    """Add a partnership CODE with its NAME to a zone."""
    with _transaction():
        plp = directory.add_partnership(code, name, zone_code, language=language)
    click.echo(f"PLP {plp.code} added to zone {plp.zone.code}: {plp.name} ({plp.language})")


@roster_cli.command("import")
@click.argument("plp_code", metavar="PLP")
@click.argument("csv_file", metavar="FILE.csv", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option(
    "--remove-missing",
    is_flag=True,
    help="Remove from the PLP the members who are not in the file.",
)
@click.option("--verbose", "-v", is_flag=True, help="List every person changed.")
def roster_import(plp_code, csv_file, dry_run, remove_missing, verbose) -> None:
    """Import members of PLP from a sign-up sheet (CSV); all rows or none."""
    with _transaction():
        plp = directory.get_partnership(plp_code)
    # The check reads the file twice (its encoding, then its rows): stdin is copied first.
    with seekable(csv_file) as stream:
        try:
            with _progress(_size(stream), "Checking rows") as bar:
                roster = check_roster(stream, tick=bar.update)
        except RosterError as err:
            for problem in err.problems:
                click.echo(str(problem), err=True)
            if err.not_listed:
                click.echo(f"... and {err.not_listed} more", err=True)
            raise click.ClickException(
                f"{csv_file.name}: {err.total} problem(s); nothing was imported"
            ) from None
    with roster, _transaction(), _progress(roster.rows, "Importing") as bar:
        report = import_roster(
            plp,
            roster.entries(),
            remove_missing=remove_missing,
            dry_run=dry_run,
            tick=bar.update,
        )
        if dry_run:
            db.session.rollback()
    for line in report.lines(detail=verbose or dry_run):
        click.echo(line)


def _size(stream) -> int:
    """Return the bytes from the stream's position to its end (the check's progress)."""
    here = stream.tell()
    end = stream.seek(0, 2)
    stream.seek(here)
    return end - here


def _progress(length: int, label: str):
    """A progress bar on a terminal (a large file takes seconds); silent in scripts and CI."""
    if sys.stderr.isatty():
        return click.progressbar(length=length, label=label, file=sys.stderr)
    return nullcontext(SimpleNamespace(update=lambda _n: None))


@person_cli.command("pin")
@click.argument("phone")
@click.option("--pin", help="4 to 8 digits; generated and printed if not given.")
def person_pin(phone: str, pin: str | None) -> None:
    """Set the phone PIN of an officer, coordinator or steering member."""
    chosen = pin or generate_pin()
    with _transaction():
        person = directory.set_pin(phone, chosen)
    shown = "" if pin else f": {chosen} (tell them; it is not shown again)"
    click.echo(f"PIN set for {person.name} ({format_international(person.phone)}){shown}")


@police_cli.command("add")
@click.argument("zone_code", metavar="ZONE")
@click.argument("name")
@click.argument("phone")
@click.option("--pin", help="4 to 8 digits; generated and printed if not given.")
@click.option("--language", default="fr", show_default=True, help="fr, nl, de or en.")
def police_add(zone_code, name, phone, pin, language) -> None:
    """Register officer NAME of ZONE, who texts alerts from PHONE."""
    chosen = pin or generate_pin()
    with _transaction():
        officer = directory.register_officer(zone_code, name, phone, chosen, language=language)
    shown = "" if pin else f"; PIN {chosen} (tell them; it is not shown again)"
    click.echo(
        f"officer {officer.person.name} ({format_international(officer.person.phone)}) "
        f"added to zone {officer.zone.code}{shown}"
    )


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Load only if the database has no partnership.")
@with_appcontext
def demo_command(if_empty: bool) -> None:
    """Load a demo zone, PLP, officer, coordinator and 25 simulated members."""
    with _transaction():
        info = load_demo(current_app.extensions["settings"].phone_provider, if_empty=if_empty)
    if info.loaded_now:
        click.echo(f"demo loaded: {info.members} members")
    # What the carrier sets up for the demo (the simulator's phones), from create_app.
    setups = current_app.extensions.get("demo_setup", ())
    for line in [*info.lines, *(line for setup in setups for line in setup())]:
        click.echo(line)


# What create_app adds to the app's CLI.
COMMANDS = (zone_cli, plp_cli, roster_cli, person_cli, police_cli, demo_command)
