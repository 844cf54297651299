"""Writing a checked roster: its entries into people and memberships, in chunks.

Only a file that `alerts.people.roster.check_roster` found clean reaches `import_roster`,
which writes in the caller's one transaction (all or nothing) in chunks of `CHUNK` rows,
expunging each chunk so that memory does not grow with the file. Re-importing the same
file changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy import and_, delete, inspect, select

from alerts.models import (
    Membership,
    Partnership,
    Person,
    Role,
    record_audit,
    utcnow,
)
from alerts.people.roster import CHUNK, RosterEntry, Tick, phone_key
from core.extensions import db


@dataclass
class ImportReport:
    """What an import changed (or, in a dry run, would change)."""

    plp: str
    rows: int
    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # "name (+32...): email, address"
    joined: list[str] = field(default_factory=list)  # existing people new to this PLP
    role_changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)  # members not in the file
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Tell whether the import changes anything."""
        return bool(
            self.created or self.updated or self.joined or self.role_changed or self.removed
        )

    def lines(self, *, detail: bool) -> list[str]:
        """Describe the import for the operator; `detail` lists every person."""
        verb = "would be" if self.dry_run else "were"
        out = [
            f"{self.plp}: {self.rows} rows; {len(self.created)} new people, "
            f"{len(self.joined)} existing people joined, {len(self.updated)} updated, "
            f"{len(self.role_changed)} role changes, {self.unchanged} unchanged"
            + (f", {len(self.removed)} removed" if self.removed else "")
        ]
        if detail:
            for label, names in (
                ("new", self.created),
                ("joined", self.joined),
                ("updated", self.updated),
                ("role", self.role_changed),
                ("removed", self.removed),
            ):
                out.extend(f"  {label}: {n}" for n in names)
        if self.missing and not self.removed:
            out.append(
                f"{len(self.missing)} member(s) of {self.plp} are not in the file and were kept "
                "(--remove-missing removes them)"
            )
        if self.dry_run:
            out.append(f"dry run: nothing {verb} written")
        return out


def import_roster(
    plp: Partnership,
    entries: Iterable[RosterEntry],
    *,
    remove_missing: bool = False,
    dry_run: bool = False,
    actor: str = "cli",
    tick: Tick | None = None,
) -> ImportReport:
    """Bring the roster's people and memberships into the session; the caller commits.

    People are matched by their first number. A blank optional cell keeps what is
    known; a filled one replaces it. With `dry_run` nothing is added to the session.

    `entries` is any iterable (a list, or `CheckedRoster.entries()`), taken `CHUNK`
    at a time: each chunk's people are loaded in one query, and what it writes is
    flushed then expunged, so the session does not grow with the file. It all stays
    in the caller's one transaction: a failure anywhere rolls back every chunk.
    """
    report = ImportReport(plp=plp.code, rows=0, dry_run=dry_run)
    # The numbers in the file, for the members missing from it: an int each, about 60
    # bytes per row. The report's lists hold a label per person changed (about 90).
    in_file: set[int | str] = set()
    # What the caller had loaded stays theirs: only what the import loads is expunged.
    callers = set(db.session.identity_map.keys())
    now = utcnow()
    rows = iter(entries)
    while chunk := list(islice(rows, CHUNK)):
        report.rows += len(chunk)
        in_file.update(phone_key(entry.phone.e164) for entry in chunk)
        written = _import_chunk(plp, chunk, report, dry_run=dry_run, now=now)
        if not dry_run:
            db.session.flush()
        for obj in written:
            if obj in db.session and inspect(obj).key not in callers:
                db.session.expunge(obj)
        if tick:
            tick(len(chunk))

    members = (
        select(Membership.id, Person.name, Person.phone)
        .join(Membership.person)
        .where(Membership.partnership_id == plp.id)
        .order_by(Membership.id)
        .execution_options(yield_per=CHUNK)  # a PLP of 300,000 is read in chunks too
    )
    missing = [
        (membership_id, f"{name} ({phone})")
        for membership_id, name, phone in db.session.execute(members)
        if phone_key(phone) not in in_file
    ]
    report.missing = [label for _id, label in missing]
    if remove_missing:
        report.removed = list(report.missing)
        if not dry_run:
            ids = [membership_id for membership_id, _label in missing]
            for start in range(0, len(ids), CHUNK):
                db.session.execute(
                    delete(Membership).where(Membership.id.in_(ids[start : start + CHUNK]))
                )

    if not dry_run and report.changed:
        record_audit(
            "roster.import",
            actor=actor,
            subject=plp,
            rows=report.rows,
            created=len(report.created),
            joined=len(report.joined),
            updated=len(report.updated),
            role_changed=len(report.role_changed),
            removed=len(report.removed),
        )
        db.session.flush()
    return report


def _import_chunk(
    plp: Partnership, chunk: list[RosterEntry], report: ImportReport, *, dry_run: bool, now
) -> list[object]:
    """Apply one chunk of entries to the session and the report; return what it wrote.

    Memberships are made by id, not through the relationships: a new person and their
    membership would refer to each other (a cycle only the garbage collector frees),
    and the PLP's collection would grow with the file. What the chunk only reads is
    let go with `known`: the identity map references clean objects weakly.
    """
    known = _people_by_phone(plp, [entry.phone.e164 for entry in chunk])
    written: list[object] = []
    joining: list[tuple[Person, Role]] = []  # memberships to add once people have ids
    for entry in chunk:
        person, membership = known.get(entry.phone.e164, (None, None))
        label = f"{entry.name} ({entry.phone.e164})"
        if person is None:
            report.created.append(label)
            if not dry_run:
                person = _new_person(entry, plp, consent_at=now)
                db.session.add(person)
                joining.append((person, entry.role or Role.MEMBER))
            continue
        changes = _changes(person, entry)
        role = entry.role or (membership.role if membership is not None else Role.MEMBER)
        if not changes and membership is not None and membership.role == role:
            report.unchanged += 1
        if changes:
            report.updated.append(f"{label}: {', '.join(changes)}")
            if not dry_run:
                for attr, value in changes.items():
                    setattr(person, attr, value)
                written.append(person)
        if membership is None:
            report.joined.append(label)
            if not dry_run:
                joining.append((person, role))
                # Being on a PLP's sign-up sheet is consent; an officer or a member
                # of another PLP may have none recorded yet.
                person.consent_at = person.consent_at or now
        elif membership.role != role:
            report.role_changed.append(f"{label}: {membership.role} -> {role}")
            if not dry_run:
                membership.role = role
                written.append(membership)
    if joining:
        db.session.flush()  # the new people's ids
        for person, role in joining:
            membership = Membership(person_id=person.id, partnership_id=plp.id, role=role)
            db.session.add(membership)
            written += [person, membership]
    return written


def _people_by_phone(
    plp: Partnership, phones: list[str]
) -> dict[str, tuple[Person, Membership | None]]:
    """Load the people with these first numbers, each with their membership of `plp`."""
    rows = db.session.execute(
        select(Person, Membership)
        .outerjoin(
            Membership,
            and_(Membership.person_id == Person.id, Membership.partnership_id == plp.id),
        )
        .where(Person.phone.in_(phones))
    )
    return {person.phone: (person, membership) for person, membership in rows}


def _new_person(entry: RosterEntry, plp: Partnership, *, consent_at) -> Person:
    # Signing the PLP's sheet is the member's consent to be contacted: recorded at import.
    return Person(
        name=entry.name,
        phone=entry.phone.e164,
        phone_type=entry.phone.kind,
        phone2=entry.phone2.e164 if entry.phone2 else None,
        phone2_type=entry.phone2.kind if entry.phone2 else None,
        email=entry.email,
        language=entry.language or plp.language,
        address=entry.address,
        consent_at=consent_at,
    )


def _changes(person: Person, entry: RosterEntry) -> dict[str, object]:
    """Return the attributes the entry changes on an existing person (blank keeps)."""
    wanted: dict[str, object] = {"name": entry.name}
    if entry.phone2 is not None:
        wanted["phone2"] = entry.phone2.e164
        wanted["phone2_type"] = entry.phone2.kind
    for attr in ("email", "language", "address"):
        value = getattr(entry, attr)
        if value is not None:
            wanted[attr] = value
    return {attr: value for attr, value in wanted.items() if getattr(person, attr) != value}
