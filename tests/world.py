"""The tests' one world: two zones, three PLPs, their officers, deciders and members.

Built by the `world` fixture (tests/conftest.py); a test file that needs more (alerts,
behaviours on the simulated network) adds it in a fixture of its own on top of `world`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from datetime import datetime

from alerts.models import Membership, Officer, Partnership, Person, PhoneType, Role, Zone, utcnow
from alerts.people.pins import hash_pin
from core.extensions import db

OFFICER_PIN = "4829"  # officer1's
DECIDER_PIN = "7351"  # coord_a's, steering_a's and coord_b's
# PLP A's people: coord_a, steering_a, member_a, landline_a, both_ab, nothing_a.
PEOPLE_OF_A = 6


@dataclass
class World:
    """Zone Z1 (PLPs A and B) and zone Z2 (PLP C), with officers, deciders and members.

    - officer1 of Z1 (PIN 4829), officer2 of Z2 (no PIN);
    - coord_a coordinates A and steering_a sits on A's steering committee, coord_b
      coordinates B (all three PIN 7351); coord_c coordinates C (no PIN);
    - members of A: member_a (mobile, e-mail), landline_a (fixed, no e-mail), both_ab
      (a member of A and of B, Dutch), nothing_a (opted out of everything: unreachable);
    - member_b in B (Dutch), member_c in C.

    Mobiles are +32470000001, +32470000002, ... in the order above, the landline +3222....
    """

    z1: Zone
    z2: Zone
    a: Partnership
    b: Partnership
    c: Partnership
    officer1: Person
    officer2: Person
    coord_a: Person
    steering_a: Person
    coord_b: Person
    coord_c: Person
    member_a: Person
    landline_a: Person
    both_ab: Person
    nothing_a: Person
    member_b: Person
    member_c: Person

    @property
    def people(self) -> dict[str, Person]:
        """Return the people by name (officer1, coord_a, member_a, ...)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if isinstance(value, Person)}


@functools.cache
def pin_hash(pin: str) -> str:
    """Return a hash of `pin` (argon2 is slow on purpose: one hash per PIN per run)."""
    return hash_pin(pin)


def build_world(now: datetime | None = None) -> World:
    """Create the world in the database and commit it (`now`: when nothing_a opted out)."""
    now = now or utcnow()
    z1, z2 = Zone(code="Z1", name="Zone Un"), Zone(code="Z2", name="Zone Deux")
    a = Partnership(code="PLP-A", name="Quartier A", zone=z1, language="fr", charter_json={})
    b = Partnership(code="PLP-B", name="Wijk B", zone=z1, language="nl", charter_json={})
    c = Partnership(code="PLP-C", name="Quartier C", zone=z2, language="fr", charter_json={})
    db.session.add_all([z1, z2, a, b, c])
    people: dict[str, Person] = {}
    numbers = iter(range(1, 100))

    def person(key, *, plps=(), role=Role.MEMBER, phone_type=PhoneType.MOBILE, pin=None, **data):
        n = next(numbers)
        prefix = "+32470" if phone_type == PhoneType.MOBILE else "+3222"
        p = Person(
            name=key.replace("_", " ").title(),
            phone=f"{prefix}{n:06d}",
            phone_type=phone_type,
            pin_hash=pin_hash(pin) if pin else None,
            **data,
        )
        db.session.add(p)
        for plp in plps:
            db.session.add(Membership(person=p, partnership=plp, role=role))
        people[key] = p
        return p

    db.session.add(Officer(person=person("officer1", language="fr", pin=OFFICER_PIN), zone=z1))
    db.session.add(Officer(person=person("officer2", language="fr"), zone=z2))
    person("coord_a", plps=[a], role=Role.COORDINATOR, language="fr", pin=DECIDER_PIN)
    person("steering_a", plps=[a], role=Role.STEERING, language="fr", pin=DECIDER_PIN)
    person("coord_b", plps=[b], role=Role.COORDINATOR, language="nl", pin=DECIDER_PIN)
    person("coord_c", plps=[c], role=Role.COORDINATOR, language="fr")
    person("member_a", plps=[a], email="member.a@example.be", language="fr")
    person("landline_a", plps=[a], phone_type=PhoneType.FIXED, language="fr")
    person("both_ab", plps=[a, b], email="both@example.be", language="nl")
    person(
        "nothing_a",
        plps=[a],
        sms_opt_out_at=now,
        call_opt_out_at=now,
        email_opt_out_at=now,
        language="fr",
    )
    person("member_b", plps=[b], language="nl")
    person("member_c", plps=[c], language="fr")
    db.session.commit()
    return World(z1, z2, a, b, c, **people)
