"""The demo: a zone, a PLP `DEMO`, an officer, a coordinator and 25 simulated members.

Every number is fictitious and meant for the simulator carrier: loading the demo is
refused when the app would place real calls through Twilio. The members go through
the real roster import, so the demo exercises the path a coordinator uses. What the
demo sets on the simulated phones is the simulator's (`simulator.adapters.demo`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import select

from alerts.models import Partnership, Person, record_audit
from alerts.people.directory import (
    DirectoryError,
    add_partnership,
    add_zone,
    register_officer,
    set_pin,
)
from alerts.people.enrolment import import_roster
from alerts.people.phones import format_international
from alerts.people.pins import verify_pin
from alerts.people.roster import read_roster
from core.extensions import db

ZONE_CODE, ZONE_NAME = "ZPDEMO", "Zone de police Démo"
PLP_CODE, PLP_NAME = "DEMO", "Démo – Quartier du Parc"  # prompts say "PLP {name}"
OFFICER = ("Inspecteur Marc Dubois", "+32470990001", "4829")
COORDINATOR = ("Claire Janssens", "+32470990002", "7351")

# name, phone, phone2, email, language, role, address: a realistic mix of languages,
# mobiles and landlines, second numbers, e-mail only as a fallback, foreign numbers.
MEMBERS = [
    (
        "Claire Janssens",
        "0470 99 00 02",
        "",
        "claire@demo.plp.example",
        "fr",
        "coordinator",
        "Rue du Parc 1",
    ),
    (
        "Jean Lambert",
        "0471 99 01 01",
        "",
        "jean.lambert@demo.plp.example",
        "fr",
        "steering",
        "Rue du Parc 3",
    ),
    ("Marie Peeters", "02 511 01 02", "0472 99 01 02", "", "fr", "member", "Rue du Parc 5"),
    ("Luc Maes", "0473 99 01 03", "", "luc.maes@demo.plp.example", "nl", "member", "Parkstraat 7"),
    ("An De Smet", "09 233 01 04", "", "", "nl", "member", "Parkstraat 9"),
    (
        "Hans Schmitz",
        "087 55 01 05",
        "0474 99 01 05",
        "hans@demo.plp.example",
        "de",
        "member",
        "Parkstraße 11",
    ),
    (
        "Emma Wilson",
        "0475 99 01 06",
        "",
        "emma.wilson@demo.plp.example",
        "en",
        "member",
        "Rue du Parc 13",
    ),
    ("Pierre Dupont", "02 511 01 07", "", "", "fr", "member", "Rue du Parc 15"),
    (
        "Sofie Claes",
        "0476 99 01 08",
        "0477 99 01 08",
        "sofie@demo.plp.example",
        "nl",
        "steering",
        "Parkstraat 17",
    ),
    (
        "Nathalie Leroy",
        "0477 99 01 09",
        "",
        "nathalie@demo.plp.example",
        "fr",
        "member",
        "Rue du Parc 19",
    ),
    ("Jozef Wouters", "03 233 01 10", "", "", "nl", "member", "Parkstraat 21"),
    (
        "Isabelle Renard",
        "+33 6 12 99 01 11",
        "",
        "isabelle@demo.plp.example",
        "fr",
        "member",
        "Rue du Parc 23",
    ),
    (
        "Pieter de Vries",
        "+31 6 12990112",
        "",
        "pieter@demo.plp.example",
        "nl",
        "member",
        "Parkstraat 25",
    ),
    ("Klaus Becker", "+49 151 29901130", "", "", "de", "member", "Parkstraße 27"),
    ("Georges Martin", "04 223 01 14", "0478 99 01 14", "", "fr", "member", "Rue du Parc 29"),
    (
        "Lotte Jacobs",
        "0479 99 01 15",
        "",
        "lotte@demo.plp.example",
        "nl",
        "member",
        "Parkstraat 31",
    ),
    ("Chantal Simon", "0483 99 01 16", "", "", "fr", "member", "Rue du Parc 33"),
    (
        "Olivia Brown",
        "0484 99 01 17",
        "",
        "olivia@demo.plp.example",
        "en",
        "member",
        "Rue du Parc 35",
    ),
    (
        "Michel Dubois",
        "010 45 01 18",
        "",
        "michel@demo.plp.example",
        "fr",
        "member",
        "Rue du Parc 37",
    ),
    ("Greet Hermans", "0485 99 01 19", "", "", "nl", "member", "Parkstraat 39"),
    ("Monique Lefèvre", "081 22 01 20", "", "", "fr", "member", "Rue du Parc 41"),
    (
        "Thomas Müller",
        "0486 99 01 21",
        "",
        "thomas@demo.plp.example",
        "de",
        "member",
        "Parkstraße 43",
    ),
    (
        "Sarah Goossens",
        "0487 99 01 22",
        "",
        "sarah@demo.plp.example",
        "nl",
        "member",
        "Parkstraat 45",
    ),
    (
        "François Dumont",
        "0488 99 01 23",
        "02 511 01 23",
        "francois@demo.plp.example",
        "fr",
        "member",
        "Rue du Parc 47",
    ),
    (
        "Yasmine El Amrani",
        "0489 99 01 24",
        "",
        "yasmine@demo.plp.example",
        "fr",
        "member",
        "Rue du Parc 49",
    ),
]


class DemoError(ValueError):
    """The demo cannot be loaded; the message says why."""


@dataclass(frozen=True)
class DemoInfo:
    """What a person trying the demo needs: who is who, with the PINs."""

    loaded_now: bool
    members: int
    lines: list[str]


def roster_csv() -> bytes:
    """Return the demo members as a roster file, `;`-separated as Belgian Excel writes it."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["name", "phone", "phone2", "email", "language", "role", "address"])
    writer.writerows(MEMBERS)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def load_demo(phone_provider: str, *, if_empty: bool = False) -> DemoInfo:
    """Load the demo unless it is there (or, with `if_empty`, unless any PLP exists)."""
    if phone_provider != "simulator":
        raise DemoError(
            "the demo's numbers are fictitious and may belong to real people: "
            "load it only with PHONE_PROVIDER=simulator"
        )
    existing = db.session.scalar(select(Partnership).where(Partnership.code == PLP_CODE))
    if existing is None and if_empty and db.session.scalar(select(Partnership.id).limit(1)):
        return DemoInfo(False, 0, ["the database already has partnerships: demo not loaded"])
    loaded_now = existing is None
    if loaded_now:
        try:
            add_zone(ZONE_CODE, ZONE_NAME, actor="demo")
            plp = add_partnership(PLP_CODE, PLP_NAME, ZONE_CODE, language="fr", actor="demo")
            import_roster(plp, read_roster(roster_csv()), actor="demo")
            register_officer(ZONE_CODE, OFFICER[0], OFFICER[1], OFFICER[2], actor="demo")
            set_pin(COORDINATOR[1], COORDINATOR[2], actor="demo")
            record_audit("demo.load", actor="demo", subject=plp)
        except DirectoryError as err:
            raise DemoError(f"cannot load the demo: {err}") from None
        db.session.commit()
    return DemoInfo(loaded_now, len(MEMBERS), _describe())


def _describe() -> list[str]:
    lines = [f"Demo PLP {PLP_CODE} ({PLP_NAME}), zone {ZONE_CODE}: {len(MEMBERS)} members"]
    for role, (name, phone, pin) in (("officer", OFFICER), ("coordinator", COORDINATOR)):
        person = db.session.scalar(select(Person).where(Person.phone == phone))
        shown = pin if person is not None and verify_pin(person.pin_hash, pin) else "(changed)"
        lines.append(f"  {role:<12} {name:<24} {format_international(phone):<18} PIN {shown}")
    lines.append(
        f"  officer SMS: ALERTE {OFFICER[2]} {PLP_CODE} <message>   coordinator reply: OUI <ref>"
    )
    return lines
