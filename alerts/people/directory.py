"""The directory: police zones, partnerships, officers and PINs.

These functions add to the session and leave the commit to the caller, so that a
command or a request is one transaction. Errors carry a message fit for the operator.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from alerts.models import (
    LANGUAGES,
    Membership,
    Officer,
    Partnership,
    Person,
    Role,
    Zone,
    record_audit,
)
from alerts.people.phones import PhoneNumberError, parse_phone
from alerts.people.pins import hash_pin
from core.extensions import db

# Codes are typed in SMS ("ALERTE 1234 PLP-PARC,ZP5344 ..."): no spaces or commas.
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,19}$")


class DirectoryError(ValueError):
    """A directory change that cannot be made; the message says why."""


def normalize_code(code: str) -> str:
    """Return a zone or PLP code in its canonical form, or raise `DirectoryError`."""
    canonical = (code or "").strip().upper()
    if not _CODE.match(canonical):
        raise DirectoryError(
            f"code {code!r}: 2 to 20 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return canonical


def _check_code_free(code: str) -> None:
    # Zone and PLP codes share one namespace: an SMS target may be either.
    if db.session.scalar(select(Zone.id).where(Zone.code == code)) is not None:
        raise DirectoryError(f"code {code} is already a zone")
    if db.session.scalar(select(Partnership.id).where(Partnership.code == code)) is not None:
        raise DirectoryError(f"code {code} is already a PLP")


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise DirectoryError("a name has 1 to 200 characters")
    return name


def check_language(language: str) -> str:
    """Return a supported language code, or raise `DirectoryError`."""
    lang = (language or "").strip().lower()
    if lang not in LANGUAGES:
        raise DirectoryError(f"language {language!r}: choose one of {', '.join(LANGUAGES)}")
    return lang


def add_zone(code: str, name: str, *, actor: str = "cli") -> Zone:
    """Add a police zone."""
    code = normalize_code(code)
    _check_code_free(code)
    zone = Zone(code=code, name=_check_name(name))
    db.session.add(zone)
    db.session.flush()
    record_audit("zone.add", actor=actor, subject=zone, code=code)
    return zone


def get_zone(code: str) -> Zone:
    """Return the zone with this code, or raise `DirectoryError`."""
    zone = db.session.scalar(select(Zone).where(Zone.code == normalize_code(code)))
    if zone is None:
        raise DirectoryError(f"no zone {code.strip().upper()}")
    return zone


def add_partnership(
    code: str, name: str, zone_code: str, *, language: str = "fr", actor: str = "cli"
) -> Partnership:
    """Add a partnership (PLP) to a zone, with the default charter."""
    code = normalize_code(code)
    zone = get_zone(zone_code)
    _check_code_free(code)
    plp = Partnership(
        code=code,
        name=_check_name(name),
        zone=zone,
        language=check_language(language),
        charter_json={},
    )
    db.session.add(plp)
    db.session.flush()
    record_audit("plp.add", actor=actor, subject=plp, code=code, zone=zone.code)
    return plp


def get_partnership(code: str) -> Partnership:
    """Return the partnership with this code, or raise `DirectoryError`."""
    plp = db.session.scalar(select(Partnership).where(Partnership.code == normalize_code(code)))
    if plp is None:
        raise DirectoryError(f"no PLP {code.strip().upper()}")
    return plp


def find_person(phone: str) -> Person | None:
    """Return the person whose first number this is (any notation), if any."""
    try:
        e164 = parse_phone(phone).e164
    except PhoneNumberError as err:
        raise DirectoryError(f"phone: {err}") from None
    return db.session.scalar(select(Person).where(Person.phone == e164))


def register_officer(
    zone_code: str, name: str, phone: str, pin: str, *, language: str = "fr", actor: str = "cli"
) -> Officer:
    """Register a police officer of a zone with a phone PIN."""
    zone = get_zone(zone_code)
    try:
        number = parse_phone(phone)
    except PhoneNumberError as err:
        raise DirectoryError(f"phone: {err}") from None
    person = db.session.scalar(select(Person).where(Person.phone == number.e164))
    if person is None:
        person = Person(
            name=_check_name(name),
            phone=number.e164,
            phone_type=number.kind,
            language=check_language(language),
        )
        db.session.add(person)
    elif person.officer is not None:
        raise DirectoryError(
            f"{number.display} is already an officer of zone {person.officer.zone.code}"
        )
    person.pin_hash = _hash(pin)
    officer = Officer(person=person, zone=zone)
    db.session.add(officer)
    db.session.flush()
    record_audit("officer.add", actor=actor, subject=officer, zone=zone.code)
    return officer


def set_pin(phone: str, pin: str, *, actor: str = "cli") -> Person:
    """Set the PIN of an officer, coordinator or steering member."""
    person = find_person(phone)
    if person is None:
        raise DirectoryError(f"nobody has the number {phone.strip()}")
    may_have_pin = person.officer is not None or any(
        m.role in (Role.COORDINATOR, Role.STEERING) for m in person.memberships
    )
    if not may_have_pin:
        raise DirectoryError("PINs are for officers, coordinators and steering members")
    person.pin_hash = _hash(pin)
    record_audit("person.pin", actor=actor, subject=person)
    return person


def _hash(pin: str) -> str:
    try:
        return hash_pin(pin)
    except ValueError as err:
        raise DirectoryError(f"PIN: {err}") from None


def coordinators_of(plp: Partnership) -> list[Person]:
    """Return the coordinators of a partnership."""
    return list(
        db.session.scalars(
            select(Person)
            .join(Membership)
            .where(Membership.partnership_id == plp.id, Membership.role == Role.COORDINATOR)
            .order_by(Person.id)
        )
    )
