"""Roster import: the PLP's sign-up sheet (CSV) into people and memberships.

The format is the public contract in the README: a header row with
`name,phone,phone2,email,language,role,address` (`name` and `phone` required, any order),
`,` or `;` separated, UTF-8 with or without a BOM. Rows are numbered as a spreadsheet
shows them: the header is row 1.

An import is all-or-nothing: `check_roster` reads the file and raises `RosterError`
with one problem per row and column; only a clean file reaches `import_roster`, which
takes its entries (`CheckedRoster.entries`) and writes them in the caller's transaction
(`alerts.people.enrolment`).
Re-importing the same file changes nothing.

Both passes stream: memory does not grow with the file, except for what the cross-row
checks and the report need (see `_RowChecker` and `import_roster`). `split_roster`,
`check_rows` and `read_roster` hold a whole (small) file in memory, for callers that
have bytes: the demo and the tests.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO

from email_validator import EmailNotValidError, validate_email

from alerts.models import (
    LANGUAGES,
    PhoneType,
    Role,
)
from alerts.people.phones import Phone, PhoneNumberError, parse_phone

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACING = str.maketrans("\t\r\n", "   ")  # spacing inside a cell, not damage
COLUMNS = ("name", "phone", "phone2", "email", "language", "role", "address")
REQUIRED_COLUMNS = ("name", "phone")
MAX_NAME, MAX_ADDRESS = 200, 300
# Rows written per flush, and numbers per IN (...) query: well under every database's
# parameter limit (999 in SQLite before 3.32).
CHUNK = 500
# Problems kept to show; the others are only counted ("... and N more"). A file with a
# wrong column mapping has a problem on every row: 300,000 lines help nobody.
MAX_PROBLEMS = 1000
_READ_SIZE = 1 << 16

Tick = Callable[[int], None]


def phone_key(e164: str) -> int | str:
    """Return a number as the int of its digits: 32 bytes where its string takes 61."""
    digits = e164[1:]
    return int(digits) if e164.startswith("+") and digits.isdigit() else e164


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
    """The file is refused; `problems` lists the reasons (the first `MAX_PROBLEMS`).

    `total` counts every problem, also those not kept.
    """

    def __init__(self, problems: Iterable[Problem], total: int | None = None):
        self.problems = sorted(problems)
        self.total = max(total or 0, len(self.problems))
        super().__init__(f"{self.total} problem(s) in the roster file")

    @property
    def not_listed(self) -> int:
        """Count the problems beyond those kept in `problems`."""
        return self.total - len(self.problems)


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


class CheckedRoster:
    """A roster file that passed every check (pass 1): its entries, spooled to disk.

    Pass 1 writes each row it found valid, already normalised, to a temporary file;
    pass 2 (`entries`) reads them back. Reading the sheet again would parse every
    phone number and e-mail address a second time: measured, a third of the CPU time
    of re-importing an unchanged file.
    """

    def __init__(self, spool: io.TextIOWrapper, rows: int):
        self._spool = spool
        self.rows = rows  # members in the file (non-blank rows)

    def entries(self) -> Iterator[RosterEntry]:
        """Yield the file's entries in order, one row at a time."""
        self._spool.seek(0)
        for row, name, phone, kind, phone2, kind2, email, language, role, address in csv.reader(
            self._spool
        ):
            yield RosterEntry(
                int(row),
                name,
                Phone(phone, PhoneType(kind)),
                Phone(phone2, PhoneType(kind2)) if phone2 else None,
                email or None,
                language or None,
                Role(role) if role else None,
                address or None,
            )

    def close(self) -> None:
        """Delete the spooled entries."""
        self._spool.close()

    def __enter__(self) -> CheckedRoster:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def _spooled(entry: RosterEntry) -> tuple:
    """Return an entry as the spool's CSV row (a blank cell for None)."""
    phone2 = entry.phone2
    return (
        entry.row,
        entry.name,
        entry.phone.e164,
        entry.phone.kind.value,
        phone2.e164 if phone2 else "",
        phone2.kind.value if phone2 else "",
        entry.email or "",
        entry.language or "",
        entry.role.value if entry.role else "",
        entry.address or "",
    )


@contextmanager
def seekable(file: BinaryIO) -> Iterator[BinaryIO]:
    """Yield `file` if it can be read twice, else a temporary copy of it (a pipe, stdin)."""
    if file.seekable():
        yield file
        return
    with tempfile.TemporaryFile() as copy:
        shutil.copyfileobj(file, copy, _READ_SIZE)
        copy.seek(0)
        yield copy


def check_roster(stream: BinaryIO, *, tick: Tick | None = None) -> CheckedRoster:
    """Check a whole roster file (pass 1) without holding it; raise `RosterError`.

    `stream` is a seekable binary file (see `seekable`), read from where it stands;
    `tick` is called with the number of bytes read as the check goes. Close the
    result (or use it in a `with` block) once imported.
    """
    start = stream.tell()
    has_text = _check_utf8(stream)
    # Closed by CheckedRoster.close, or below when the file is refused.
    spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        spooler = csv.writer(spool)
        with _text(stream, start) as text:
            columns, reader = _header(text, has_text=has_text)
            checker = _RowChecker(columns)
            position = start
            for row_number, cells in _records(reader):
                entry = checker.check(row_number, cells)
                if entry is not None and not checker.total:  # a refused file is not spooled
                    spooler.writerow(_spooled(entry))
                if tick:
                    now = stream.tell()
                    tick(now - position)
                    position = now
        checker.finish()
    except BaseException:
        spool.close()
        raise
    return CheckedRoster(spool, checker.rows)


def split_roster(data: bytes) -> RosterSheet:
    """Decode a roster file and split it into rows; raise `RosterError` on a bad header."""
    stream = io.BytesIO(data)
    has_text = _check_utf8(stream)
    with _text(stream, 0) as text:
        columns, reader = _header(text, has_text=has_text)
        return RosterSheet(columns, list(_records(reader)))


def check_rows(sheet: RosterSheet, tick: Tick | None = None) -> list[RosterEntry]:
    """Check every row; return the entries, or raise `RosterError` listing every problem."""
    checker = _RowChecker(sheet.columns)
    entries: list[RosterEntry] = []
    for row_number, cells in sheet.rows:
        entry = checker.check(row_number, cells)
        if entry is not None:
            entries.append(entry)
        if tick:
            tick(1)
    checker.finish()
    return entries


def read_roster(data: bytes) -> list[RosterEntry]:
    """Decode and check a whole roster file (no progress reporting)."""
    return check_rows(split_roster(data))


def _check_utf8(stream: BinaryIO) -> bool:
    """Check that the file is UTF-8 text; tell whether it holds more than whitespace.

    A pass of its own, at the speed of the decoder: a file in another encoding is
    refused with that one problem, whatever else is wrong in it.
    """
    start = stream.tell()
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    has_text, at_start = False, True
    try:
        while True:
            chunk = stream.read(_READ_SIZE)
            pending = len(decoder.getstate()[0])  # an incomplete character from before
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                # The bad byte's offset in this chunk (negative: in the pending bytes,
                # which hold no line break).
                line = lines_before + chunk[: max(0, err.start - pending)].count(b"\n") + 1
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
            if at_start and text:
                text = text.removeprefix("\ufeff")  # one BOM, as "utf-8-sig" drops
                at_start = False
            has_text = has_text or bool(text.strip())
            if not chunk:
                return has_text
            lines_before += chunk.count(b"\n")
    finally:
        stream.seek(start)


@contextmanager
def _text(stream: BinaryIO, start: int) -> Iterator[io.TextIOWrapper]:
    """Yield the file from `start` as text lines (checked UTF-8), line ends kept for csv."""
    stream.seek(start)
    # "-sig": Excel's "CSV UTF-8" starts with a BOM.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield text
    finally:
        text.detach()  # the caller's file stays open


def _header(text: io.TextIOWrapper, *, has_text: bool):
    """Read the header row; return the columns and the reader of the rows after it."""
    first_line = text.readline()
    if not has_text:
        raise RosterError([Problem(1, "", "the file is empty; expected a header row")])
    # Belgian spreadsheets write ';' (the decimal separator is ','), others ','.
    # csv.Sniffer guesses from the data rows, where addresses hold both; the header
    # holds only column names, so it decides.
    header_line = (first_line.splitlines() or [""])[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(chain([first_line], text), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as err:
        raise RosterError([Problem(1, "", f"unreadable header: {err}")]) from None
    columns = tuple(cell.strip().lower() for cell in header)
    problems = _header_problems(columns)
    if problems:
        raise RosterError(problems)
    return columns, reader


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


def _records(reader) -> Iterator[tuple[int, list[str]]]:
    """Yield the non-blank rows after the header, numbered as a spreadsheet shows them."""
    row_number = 1
    while True:
        row_number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise RosterError([Problem(row_number, "", f"unreadable row: {err}")]) from None
        if any(cell.strip() for cell in cells):
            yield row_number, cells


class _RowChecker:
    """Check rows one by one, keeping only what the verdict on the whole file needs.

    That is the first `MAX_PROBLEMS` problems, the count of all of them, and for the
    duplicate check each number's first row: a dict of two ints, about 100 bytes per
    row (30 MB for 300,000 rows), where holding the rows took 8-11 kB each.
    """

    def __init__(self, columns: tuple[str, ...]):
        self.columns = columns
        self.rows = 0
        self.problems: list[Problem] = []
        self.total = 0
        self._first_row_of: dict[int | str, int] = {}

    def check(self, row_number: int, cells: list[str]) -> RosterEntry | None:
        """Check one row; return its entry if it is valid and not a duplicate."""
        self.rows += 1
        entry, row_problems = _check_row(self.columns, row_number, cells)
        if entry is not None:
            earlier = self._first_row_of.setdefault(phone_key(entry.phone.e164), row_number)
            if earlier != row_number:
                row_problems.append(Problem(row_number, "phone", f"same number as row {earlier}"))
                entry = None
        if row_problems:
            self.total += len(row_problems)
            room = MAX_PROBLEMS - len(self.problems)
            if room > 0:
                # Rows come in order: the kept ones are the first problems of the file.
                self.problems.extend(sorted(row_problems)[:room])
        return entry

    def finish(self) -> None:
        """Raise `RosterError` if any row was bad, or if there was no member at all."""
        if self.total:
            raise RosterError(self.problems, total=self.total)
        if not self.rows:
            raise RosterError([Problem(2, "", "the file has a header but no members")])


def _report_control_characters(values: dict[str, str], bad) -> None:
    """Report the cells holding a NUL or another control character (the file is refused).

    A broken export: no database stores it faithfully (PostgreSQL refuses NUL), and no
    person's name contains one. Tabs and line breaks are only spacing.
    """
    for column, value in values.items():
        if column and _CONTROL.search(value.translate(_SPACING)):
            bad(column, "contains a control character (a damaged cell?)")


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

    _report_control_characters(values, bad)

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
