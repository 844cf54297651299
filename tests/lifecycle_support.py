"""A small world for the alert lifecycle tests: two zones, three PLPs, their people."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from alerts.models import (
    Alert,
    AlertTransition,
    AuditEvent,
    Delivery,
    Membership,
    Officer,
    Partnership,
    Person,
    PhoneType,
    Role,
    Zone,
)
from core.extensions import db
from core.queue import get_queue


@dataclass
class World:
    """Zone Z1 (PLPs A and B) and zone Z2 (PLP C), with officers, deciders and members.

    - officer1 of Z1, officer2 of Z2;
    - coord_a coordinates A, steering_a sits on A's steering committee, coord_b
      coordinates B, coord_c coordinates C;
    - members of A: member_a (mobile, e-mail), landline_a (fixed, no e-mail), both_ab
      (a member of A and of B), nothing_a (opted out of everything: unreachable);
    - member_b in B, member_c in C.
    """

    z1: Zone
    z2: Zone
    a: Partnership
    b: Partnership
    c: Partnership
    people: dict[str, Person] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Person:
        try:
            return self.__dict__["people"][name]
        except KeyError:
            raise AttributeError(name) from None


def build_world(now) -> World:
    """Create the world in the database and commit it."""
    z1, z2 = Zone(code="Z1", name="Zone Un"), Zone(code="Z2", name="Zone Deux")
    a = Partnership(code="PLP-A", name="Quartier A", zone=z1, language="fr", charter_json={})
    b = Partnership(code="PLP-B", name="Wijk B", zone=z1, language="nl", charter_json={})
    c = Partnership(code="PLP-C", name="Quartier C", zone=z2, language="fr", charter_json={})
    db.session.add_all([z1, z2, a, b, c])
    world = World(z1, z2, a, b, c)
    numbers = iter(range(1, 100))

    def person(key, *, plps=(), role=Role.MEMBER, phone_type=PhoneType.MOBILE, **fields):
        n = next(numbers)
        prefix = "+32470" if phone_type == PhoneType.MOBILE else "+3222"
        p = Person(
            name=key.replace("_", " ").title(),
            phone=f"{prefix}{n:06d}",
            phone_type=phone_type,
            **fields,
        )
        db.session.add(p)
        for plp in plps:
            db.session.add(Membership(person=p, partnership=plp, role=role))
        world.people[key] = p
        return p

    for key, zone in (("officer1", z1), ("officer2", z2)):
        db.session.add(Officer(person=person(key, language="fr"), zone=zone))
    person("coord_a", plps=[a], role=Role.COORDINATOR, language="fr")
    person("steering_a", plps=[a], role=Role.STEERING, language="fr")
    person("coord_b", plps=[b], role=Role.COORDINATOR, language="nl")
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
    return world


def deliveries_of(alert: Alert, person: Person | None = None) -> list[Delivery]:
    """Return the alert's deliveries (of one person), by person, step and attempt."""
    query = select(Delivery).where(Delivery.alert_id == alert.id)
    if person is not None:
        query = query.where(Delivery.person_id == person.id)
    return list(
        db.session.scalars(query.order_by(Delivery.person_id, Delivery.step, Delivery.attempt))
    )


def transitions_of(alert: Alert) -> list[tuple[str | None, str, int | None]]:
    """Return the alert's recorded transitions as (from, to, actor id)."""
    rows = db.session.scalars(
        select(AlertTransition)
        .where(AlertTransition.alert_id == alert.id)
        .order_by(AlertTransition.id)
    )
    return [
        (t.from_state.value if t.from_state else None, t.to_state.value, t.actor_id) for t in rows
    ]


def audit_actions(alert: Alert) -> list[str]:
    """Return the actions of the alert's audit events, oldest first."""
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.subject_type == "alert", AuditEvent.subject_id == alert.id)
            .order_by(AuditEvent.id)
        )
    )


def queued_job_ids(*queue_names: str) -> set[str]:
    """Return the ids of the jobs waiting in these queues (scheduled ones included)."""
    from rq.registry import ScheduledJobRegistry  # noqa: PLC0415

    ids: set[str] = set()
    for name in queue_names or ("urgent", "default", "low"):
        queue = get_queue(name)
        ids.update(queue.job_ids)
        ids.update(ScheduledJobRegistry(queue=queue).get_job_ids())
    return ids
