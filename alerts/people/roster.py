"""Roster import: the PLP's sign-up sheet (CSV) into people and memberships.

The format is the public contract in the README: a header row with
`name,phone,phone2,email,language,role,address` (`name` and `phone` required, any order),
`,` or `;` separated, UTF-8 with or without a BOM. Rows are numbered as a spreadsheet
shows them: the header is row 1.

An import is all-or-nothing: `read_roster` checks every row and raises `RosterError`
with one problem per row and column; only a clean file reaches `import_roster`, which
writes in the caller's transaction. Re-importing the same file changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from alerts.models import LANGUAGES, Membership, Partnership, Person, Role, record_audit, utcnow
from alerts.people.phones import Phone, PhoneNumberError, parse_phone
from core.extensions import db

COLUMNS = ("name", "phone", "phone2", "email", "language", "role", "address")
REQUIRED_COLUMNS = ("name", "phone")
MAX_NAME, MAX_ADDRESS = 200, 300
_IN_CHUNK = 500  # ids per IN (...) query: well under every database's parameter limit

Tick = Callable[[int], None]


@dataclass(frozen=True, order=True)
class Problem:
    """One reason a file is refused: where (row, column) and why."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class RosterError(ValueError):
    """The file is refused; `problems` lists every reason."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the roster file")


@dataclass(frozen=True)
class RosterEntry:
    """One valid row of a roster file."""

    row: int
    name: str
    phone: Phone
    phone2: Phone | None
    email: str | None
    language: str | None  # None: keep the person's, or the PLP's for a new person
    role: Role | None  # None: keep an existing member's role; member for a new one
    address: str | None


@dataclass(frozen=True)
class RosterSheet:
    """A decoded file: its columns and its non-blank rows, numbered as in a spreadsheet."""

    columns: tuple[str, ...]
    rows: list[tuple[int, list[str]]]


def split_roster(data: bytes) -> RosterSheet:
    """Decode a roster file and split it into rows; raise `RosterError` on a bad header."""
    try:
        text = data.decode("utf-8-sig")  # "-sig": Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise RosterError(
            [
                Problem(
                    line,
                    "",
                    (
                        "the file is not UTF-8 text; in your spreadsheet choose "
                        "'CSV UTF-8' when saving"
                    ),
                )
            ]
        ) from None
    lines = text.splitlines()
    if not text.strip() or not lines:
        raise RosterError([Problem(1, "", "the file is empty; expected a header row")])
    # Belgian spreadsheets write ';' (the decimal separator is ','), others ','.
    # csv.Sniffer guesses from the data rows, where addresses hold both; the header
    # holds only column names, so it decides.
    header_line = lines[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as err:
        raise RosterError([Problem(1, "", f"unreadable header: {err}")]) from None
    columns = tuple(cell.strip().lower() for cell in header)
    problems = _header_problems(columns)
    if problems:
        raise RosterError(problems)
    rows: list[tuple[int, list[str]]] = []
    row_number = 1
    while True:
        row_number += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise RosterError([Problem(row_number, "", f"unreadable row: {err}")]) from None
        if any(cell.strip() for cell in cells):
            rows.append((row_number, cells))
    return RosterSheet(columns, rows)


def _header_problems(columns: tuple[str, ...]) -> list[Problem]:
    problems = []
    for column in columns:
        if column and column not in COLUMNS:
            problems.append(
                Problem(1, column, f"unknown column; the columns are {', '.join(COLUMNS)}")
            )
        elif column and columns.count(column) > 1:
            problems.append(Problem(1, column, "this column appears twice"))
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            problems.append(Problem(1, column, "required column is missing"))
    return sorted(set(problems))


def check_rows(sheet: RosterSheet, tick: Tick | None = None) -> list[RosterEntry]:
    """Check every row; return the entries, or raise `RosterError` listing every problem."""
    entries: list[RosterEntry] = []
    problems: list[Problem] = []
    first_row_of: dict[str, int] = {}
    for row_number, cells in sheet.rows:
        entry, row_problems = _check_row(sheet.columns, row_number, cells)
        if entry is not None:
            earlier = first_row_of.setdefault(entry.phone.e164, row_number)
            if earlier != row_number:
                row_problems.append(Problem(row_number, "phone", f"same number as row {earlier}"))
            else:
                entries.append(entry)
        problems.extend(row_problems)
        if tick:
            tick(1)
    if problems:
        raise RosterError(problems)
    if not entries:
        raise RosterError([Problem(2, "", "the file has a header but no members")])
    return entries


def read_roster(data: bytes) -> list[RosterEntry]:
    """Decode and check a whole roster file (no progress reporting)."""
    return check_rows(split_roster(data))


def _check_row(
    columns: tuple[str, ...], row: int, cells: list[str]
) -> tuple[RosterEntry | None, list[Problem]]:
    problems: list[Problem] = []
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        problems.append(
            Problem(
                row,
                "",
                (
                    f"{len(cells)} cells but the header has {len(columns)} columns "
                    "(a separator inside a value needs quotes)"
                ),
            )
        )
    values = {col: (cells[i].strip() if i < len(cells) else "") for i, col in enumerate(columns)}
    for i, col in enumerate(columns):
        if not col and i < len(cells) and cells[i].strip():
            problems.append(
                Problem(
                    row, "", (f"a value in column {i + 1}, which has no name in the header row")
                )
            )

    def bad(column: str, message: str) -> None:
        problems.append(Problem(row, column, message))

    name = " ".join(values.get("name", "").split())
    if not name:
        bad("name", "required")
    elif len(name) > MAX_NAME:
        bad("name", f"longer than {MAX_NAME} characters")

    phone = phone2 = None
    try:
        phone = parse_phone(values.get("phone", ""))
    except PhoneNumberError as err:
        bad("phone", "required" if str(err) == "empty" else str(err))
    if values.get("phone2"):
        try:
            phone2 = parse_phone(values["phone2"])
        except PhoneNumberError as err:
            bad("phone2", str(err))
        else:
            if phone is not None and phone2.e164 == phone.e164:
                bad("phone2", "same number as phone")

    email = None
    if values.get("email"):
        try:
            # ASCII only: SMTP relays without SMTPUTF8 refuse accented local parts, and an
            # accented domain is stored in its IDNA (xn--) form that every relay accepts.
            checked = validate_email(
                values["email"], check_deliverability=False, allow_smtputf8=False
            )
            email = checked.ascii_email or checked.normalized
        except EmailNotValidError as err:
            bad("email", f"{values['email']!r}: {err}")

    language = None
    if values.get("language"):
        # "fr-BE" and "NL" are how spreadsheets and people write it.
        language = values["language"].lower().split("-")[0].split("_")[0]
        if language not in LANGUAGES:
            bad("language", f"{values['language']!r}: choose one of {', '.join(LANGUAGES)}")

    role = None
    if values.get("role"):
        try:
            role = Role(values["role"].lower())
        except ValueError:
            bad("role", f"{values['role']!r}: choose one of {', '.join(r.value for r in Role)}")

    address = " ".join(values.get("address", "").split()) or None
    if address and len(address) > MAX_ADDRESS:
        bad("address", f"longer than {MAX_ADDRESS} characters")

    if problems:
        return None, problems
    return RosterEntry(row, name, phone, phone2, email, language, role, address), problems


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
    entries: list[RosterEntry],
    *,
    remove_missing: bool = False,
    dry_run: bool = False,
    actor: str = "cli",
    tick: Tick | None = None,
) -> ImportReport:
    """Bring the roster's people and memberships into the session; the caller commits.

    People are matched by their first number. A blank optional cell keeps what is
    known; a filled one replaces it. With `dry_run` nothing is added to the session.
    """
    report = ImportReport(plp=plp.code, rows=len(entries), dry_run=dry_run)
    people = _people_by_phone([e.phone.e164 for e in entries])
    memberships = {
        m.person_id: m
        for m in db.session.scalars(select(Membership).where(Membership.partnership_id == plp.id))
    }
    now = utcnow()
    seen_person_ids: set[int] = set()
    for entry in entries:
        person = people.get(entry.phone.e164)
        label = f"{entry.name} ({entry.phone.e164})"
        if person is None:
            report.created.append(label)
            if not dry_run:
                person = _new_person(entry, plp, consent_at=now)
                db.session.add(person)
                db.session.add(
                    Membership(person=person, partnership=plp, role=entry.role or Role.MEMBER)
                )
        else:
            seen_person_ids.add(person.id)
            changes = _changes(person, entry)
            membership = memberships.get(person.id)
            role = entry.role or (membership.role if membership is not None else Role.MEMBER)
            if not changes and membership is not None and membership.role == role:
                report.unchanged += 1
            if changes:
                report.updated.append(f"{label}: {', '.join(changes)}")
                if not dry_run:
                    for attr, value in changes.items():
                        setattr(person, attr, value)
            if membership is None:
                report.joined.append(label)
                if not dry_run:
                    db.session.add(Membership(person=person, partnership=plp, role=role))
                    # Being on a PLP's sign-up sheet is consent; an officer or a member
                    # of another PLP may have none recorded yet.
                    person.consent_at = person.consent_at or now
            elif membership.role != role:
                report.role_changed.append(f"{label}: {membership.role} -> {role}")
                if not dry_run:
                    membership.role = role
        if tick:
            tick(1)

    for person_id, membership in memberships.items():
        if person_id not in seen_person_ids:
            label = f"{membership.person.name} ({membership.person.phone})"
            report.missing.append(label)
            if remove_missing:
                report.removed.append(label)
                if not dry_run:
                    db.session.delete(membership)

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


def _people_by_phone(phones: list[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    for start in range(0, len(phones), _IN_CHUNK):
        chunk = phones[start : start + _IN_CHUNK]
        for person in db.session.scalars(select(Person).where(Person.phone.in_(chunk))):
            found[person.phone] = person
    return found


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
