"""Roster import: the sign-up sheet (CSV) into people and memberships, all rows or none."""

from __future__ import annotations

import csv
import io
import os
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from alerts.models import AuditEvent, Membership, Partnership, Person, PhoneType, Role
from alerts.people import enrolment
from alerts.people.enrolment import import_roster
from alerts.people.roster import (
    CHUNK,
    MAX_PROBLEMS,
    RosterError,
    check_roster,
    check_rows,
    read_roster,
    seekable,
    split_roster,
)
from core.extensions import db

HEADER = ["name", "phone", "phone2", "email", "language", "role", "address"]


def csv_bytes(
    rows: list[list[str]], *, delimiter: str = ",", bom: bool = False, encoding: str = "utf-8"
) -> bytes:
    """Return rows as a CSV file the way a spreadsheet saves it (CRLF line ends)."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode(encoding)


def write_roster(path: Path, rows: list[list[str]], **options) -> Path:
    """Write a roster file and return its path."""
    path.write_bytes(csv_bytes(rows, **options))
    return path


def import_file(runner, path: Path, *options: str, plp: str = "PLP-PARC"):
    """Run `roster import PLP FILE.csv [options]`."""
    return runner.invoke(args=["roster", "import", plp, str(path), *options])


def count(model) -> int:
    """Return the number of rows of a model."""
    return db.session.scalar(select(func.count()).select_from(model))


def person(phone: str) -> Person:
    """Return the person whose first number is `phone` (E.164), reloaded from the database."""
    db.session.expire_all()
    return db.session.scalar(select(Person).where(Person.phone == phone))


def memberships() -> set[tuple[str, str, str]]:
    """Return every membership as (phone, PLP code, role)."""
    db.session.expire_all()
    rows = db.session.execute(
        select(Person.phone, Partnership.code, Membership.role)
        .join(Membership.person)
        .join(Membership.partnership)
    )
    return {(phone, code, str(role)) for phone, code, role in rows}


def database_state() -> tuple:
    """Return everything an import can change, to compare before and after."""
    db.session.expire_all()
    people = db.session.execute(
        select(
            Person.name,
            Person.phone,
            Person.phone_type,
            Person.phone2,
            Person.phone2_type,
            Person.email,
            Person.language,
            Person.address,
            Person.updated_at,
        ).order_by(Person.phone)
    ).all()
    return people, memberships(), count(AuditEvent)


# --- The file, without a database -------------------------------------------------------


def test_comma_separated_file_is_read():
    """A ','-separated file gives one entry per row, numbered from row 2."""
    data = csv_bytes(
        [["name", "phone"], ["Anne Peeters", "0470 12 34 56"], ["Bruno Maes", "0471 12 34 56"]]
    )
    entries = read_roster(data)
    assert [(e.row, e.name, e.phone.e164) for e in entries] == [
        (2, "Anne Peeters", "+32470123456"),
        (3, "Bruno Maes", "+32471123456"),
    ]


def test_semicolon_file_with_bom_is_read():
    """A ';'-separated file with Excel's BOM is read; ',' inside addresses stays in the value."""
    data = csv_bytes(
        [
            ["name", "phone", "address"],
            ["Monique Lefèvre", "0470 12 34 56", "Rue du Parc 1, 1050 Ixelles"],
        ],
        delimiter=";",
        bom=True,
    )
    assert data.startswith(b"\xef\xbb\xbf")
    sheet = split_roster(data)
    assert sheet.columns == ("name", "phone", "address")  # no BOM glued to "name"
    [entry] = check_rows(sheet)
    assert (entry.name, entry.phone.e164, entry.address) == (
        "Monique Lefèvre",
        "+32470123456",
        "Rue du Parc 1, 1050 Ixelles",
    )


def test_columns_in_any_order_and_header_in_any_case():
    """Columns are found by name whatever their order, case or surrounding spaces."""
    data = csv_bytes(
        [
            [" Language ", "EMAIL", "Phone", "Name"],
            ["nl", "luc@example.be", "0473 99 01 03", "Luc Maes"],
        ]
    )
    [entry] = read_roster(data)
    assert (entry.name, entry.phone.e164, entry.email, entry.language) == (
        "Luc Maes",
        "+32473990103",
        "luc@example.be",
        "nl",
    )


def test_row_values_are_normalised():
    """Phones become E.164 with their type, languages are read loosely, a blank role is None."""
    data = csv_bytes(
        [
            HEADER,
            ["  Anne   Peeters ", "0470/12.34.56", "02 511 22 33", "", "fr-BE", "", ""],
            ["Bruno Maes", "+32 471 12 34 56", "", "", "NL", "Coordinator", "Parkstraat  7"],
            ["Claire Dubois", "087 55 01 05", "", "claire@example.be", "", "steering", ""],
        ]
    )
    anne, bruno, claire = read_roster(data)
    assert anne.name == "Anne Peeters"
    assert (anne.phone.e164, anne.phone.kind) == ("+32470123456", PhoneType.MOBILE)
    assert (anne.phone2.e164, anne.phone2.kind) == ("+3225112233", PhoneType.FIXED)
    assert (anne.language, anne.role, anne.email, anne.address) == ("fr", None, None, None)
    assert (bruno.language, bruno.role, bruno.phone2, bruno.address) == (
        "nl",
        Role.COORDINATOR,
        None,
        "Parkstraat 7",
    )
    assert (claire.phone.kind, claire.language, claire.role) == (
        PhoneType.FIXED,
        None,
        Role.STEERING,
    )


BAD_ROWS = [
    HEADER,
    ["Anne Valid", "0470 12 34 56", "", "", "", "", ""],
    ["Bruno", "0470 12 34", "", "", "", "", ""],
    ["Carla", "0471 11 11 11", "", "", "it", "", ""],
    ["Dirk", "0471 22 22 22", "", "", "", "boss", ""],
    ["Eva", "0471 33 33 33", "", "eva@", "", "", ""],
    ["", "0471 44 44 44", "", "", "", "", ""],
    ["Frank", "0470/12.34.56", "", "", "", "", ""],
    ["Greta", "0471 55 55 55", "+32 471 55 55 55", "", "", "", ""],
    ["Hugo", "0800 12 345", "", "", "", "", ""],
    ["", "", "", "", "", "", "Rue sans nom 1"],
]
BAD_ROW_PROBLEMS = [
    "row 3, phone: '0470 12 34' is not a valid phone number",
    "row 4, language: 'it': choose one of fr, nl, de, en",
    "row 5, role: 'boss': choose one of member, coordinator, steering",
    "row 6, email: 'eva@': There must be something after the @-sign.",
    "row 7, name: required",
    "row 8, phone: same number as row 2",
    "row 9, phone2: same number as phone",
    "row 10, phone: '0800 12 345' is a toll-free service number, not a person's phone",
    "row 11, name: required",
    "row 11, phone: required",
]


def test_every_problem_is_listed_with_row_and_column():
    """A file with bad rows raises one problem per row and column, in row order."""
    with pytest.raises(RosterError) as excinfo:
        read_roster(csv_bytes(BAD_ROWS))
    assert [str(p) for p in excinfo.value.problems] == BAD_ROW_PROBLEMS


@pytest.mark.parametrize(
    ("header", "problems"),
    [
        (
            ["name", "phone", "telephone"],
            [
                "row 1, telephone: unknown column; the columns are "
                "name, phone, phone2, email, language, role, address"
            ],
        ),
        (["name", "email"], ["row 1, phone: required column is missing"]),
        (
            ["email", "address"],
            ["row 1, name: required column is missing", "row 1, phone: required column is missing"],
        ),
        (["name", "phone", "Phone"], ["row 1, phone: this column appears twice"]),
    ],
)
def test_bad_header_is_refused(header, problems):
    """An unknown, missing or repeated column refuses the file, naming the column."""
    data = csv_bytes([header, ["Anne", "0470 12 34 56", "x"]])
    with pytest.raises(RosterError) as excinfo:
        split_roster(data)
    assert [str(p) for p in excinfo.value.problems] == problems


def test_latin1_file_is_refused():
    """A file saved in a legacy encoding is refused with how to save it as UTF-8."""
    data = csv_bytes(
        [["name", "phone"], ["Anne", "0470 12 34 56"], ["Monique Lefèvre", "0471 12 34 56"]],
        encoding="latin-1",
    )
    with pytest.raises(RosterError) as excinfo:
        split_roster(data)
    assert [str(p) for p in excinfo.value.problems] == [
        "row 3: the file is not UTF-8 text; in your spreadsheet choose 'CSV UTF-8' when saving"
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "row 1: the file is empty; expected a header row"),
        (b"\xef\xbb\xbf\r\n", "row 1: the file is empty; expected a header row"),
        (b"name;phone\r\n;;\r\n", "row 2: the file has a header but no members"),
    ],
)
def test_file_without_members_is_refused(data, problem):
    """An empty file, or a header without members, is refused rather than imported as nothing."""
    with pytest.raises(RosterError) as excinfo:
        read_roster(data)
    assert [str(p) for p in excinfo.value.problems] == [problem]


def test_blank_rows_are_skipped_but_counted():
    """Blank rows are skipped and later rows keep the number the spreadsheet shows."""
    data = csv_bytes(
        [
            HEADER,
            ["Anne", "0470 12 34 56", "", "", "", "", ""],
            [],
            ["", "", "", "", "", "", ""],
            ["  ", "", "", "", "", "", " "],
            ["Bruno", "0471 12 34 56", "", "", "", "", ""],
        ],
        delimiter=";",
    )
    sheet = split_roster(data)
    assert [row for row, _cells in sheet.rows] == [2, 6]
    assert [(e.row, e.name) for e in check_rows(sheet)] == [(2, "Anne"), (6, "Bruno")]


def test_multiline_cell_is_one_spreadsheet_row():
    """An address typed on two lines in one cell is one row; later rows keep their numbers."""
    data = csv_bytes(
        [
            ["name", "phone", "address"],
            ["Anne", "0470 12 34 56", "Rue du Parc 1\n1050 Ixelles"],
            ["Bruno", "0471 12 34", ""],
        ]
    )
    with pytest.raises(RosterError) as excinfo:
        read_roster(data)
    assert [str(p) for p in excinfo.value.problems] == [
        "row 3, phone: '0471 12 34' is not a valid phone number"
    ]
    [anne] = read_roster(data.split(b"Bruno")[0])
    assert anne.address == "Rue du Parc 1 1050 Ixelles"


def test_unquoted_separator_in_a_value_is_reported():
    """A value holding the separator without quotes shifts the cells: the row is refused."""
    data = b"name;phone;address\r\nAnne;0470 12 34 56;Rue du Parc 1; bte 3\r\n"
    with pytest.raises(RosterError) as excinfo:
        read_roster(data)
    assert [str(p) for p in excinfo.value.problems] == [
        "row 2: 4 cells but the header has 3 columns (a separator inside a value needs quotes)"
    ]


# --- The command ------------------------------------------------------------------------

MEMBERS = [
    HEADER,
    ["Anne Peeters", "0470 12 34 56", "", "anne@example.be", "", "coordinator", "Rue du Parc 1"],
    ["Bruno Maes", "0471 12 34 56", "02 511 22 33", "", "NL", "", "Parkstraat 3"],
    ["Claire Dubois", "087 55 01 05", "0472 12 34 56", "", "fr-BE", "member", ""],
]


@pytest.mark.parametrize(("delimiter", "bom"), [(",", False), (";", True)])
def test_import_creates_people_and_memberships(runner, make_plp, tmp_path, delimiter, bom):
    """A ','-separated file and a ';'-separated one with a BOM both import every member."""
    make_plp("PLP-PARC")
    path = write_roster(tmp_path / "roster.csv", MEMBERS, delimiter=delimiter, bom=bom)
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-PARC: 3 rows; 3 new people, 0 existing people joined, 0 updated, "
        "0 role changes, 0 unchanged"
    ]
    assert memberships() == {
        ("+32470123456", "PLP-PARC", "coordinator"),
        ("+32471123456", "PLP-PARC", "member"),
        ("+3287550105", "PLP-PARC", "member"),
    }
    [event] = db.session.scalars(select(AuditEvent)).all()
    assert (event.action, event.actor, event.subject_type) == (
        "roster.import",
        "cli",
        "partnership",
    )
    assert event.details == {
        "rows": 3,
        "created": 3,
        "joined": 0,
        "updated": 0,
        "role_changed": 0,
        "removed": 0,
    }


def test_import_stores_normalised_phones_types_and_defaults(runner, make_plp, tmp_path):
    """Phones are stored in E.164 with their type; blank language is the PLP's; consent set."""
    make_plp("PLP-PARC", language="de")
    path = write_roster(
        tmp_path / "roster.csv",
        [
            HEADER,
            ["Anne Peeters", "0470/12.34.56", "", "Anne@Example.BE", "", "", ""],
            ["Bruno Maes", "+32 471 12 34 56", "02 511 22 33", "", "NL", "", ""],
            ["Claire Dubois", "087 55 01 05", "0033 6 12 34 56 78", "", "fr-BE", "", ""],
        ],
    )
    assert import_file(runner, path).exit_code == 0
    anne, bruno, claire = (person(p) for p in ("+32470123456", "+32471123456", "+3287550105"))
    assert (anne.phone_type, anne.phone2, anne.phone2_type) == (PhoneType.MOBILE, None, None)
    assert (anne.language, anne.email) == ("de", "Anne@example.be")
    assert (bruno.phone2, bruno.phone2_type, bruno.language) == (
        "+3225112233",
        PhoneType.FIXED,
        "nl",
    )
    assert (claire.phone_type, claire.phone2, claire.phone2_type, claire.language) == (
        PhoneType.FIXED,
        "+33612345678",
        PhoneType.MOBILE,
        "fr",
    )
    assert {str(role) for _p, _c, role in memberships()} == {"member"}
    assert all(p.consent_at is not None for p in (anne, bruno, claire))


def test_bad_file_lists_every_problem_and_writes_nothing(runner, make_plp, tmp_path):
    """One bad row refuses the whole file: one line per problem, exit 1, nothing written."""
    make_plp("PLP-PARC")
    path = write_roster(tmp_path / "roster.csv", BAD_ROWS)
    result = import_file(runner, path)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        *BAD_ROW_PROBLEMS,
        f"Error: {path}: {len(BAD_ROW_PROBLEMS)} problem(s); nothing was imported",
    ]
    assert (count(Person), count(Membership), count(AuditEvent)) == (0, 0, 0)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            csv_bytes([["name", "phone", "telephone"], ["Anne", "0470 12 34 56", "x"]]),
            "row 1, telephone: unknown column; the columns are "
            "name, phone, phone2, email, language, role, address",
        ),
        (
            csv_bytes([["name", "email"], ["Anne", "anne@example.be"]]),
            "row 1, phone: required column is missing",
        ),
        (
            csv_bytes([["name", "phone", "NAME"], ["Anne", "0470 12 34 56", "Anne"]]),
            "row 1, name: this column appears twice",
        ),
        (
            csv_bytes(
                [["name", "phone"], ["Monique Lefèvre", "0470 12 34 56"]], encoding="latin-1"
            ),
            "row 2: the file is not UTF-8 text; in your spreadsheet choose 'CSV UTF-8' when saving",
        ),
    ],
    ids=["unknown-column", "missing-column", "duplicate-column", "latin-1"],
)
def test_unreadable_file_is_refused_by_the_command(runner, make_plp, tmp_path, data, problem):
    """A bad header or a non-UTF-8 file is refused with a clear message and nothing written."""
    make_plp("PLP-PARC")
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    result = import_file(runner, path)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        problem,
        f"Error: {path}: 1 problem(s); nothing was imported",
    ]
    assert (count(Person), count(Membership), count(AuditEvent)) == (0, 0, 0)


def test_reimporting_the_same_file_changes_nothing(runner, make_plp, tmp_path):
    """A second import of the same file adds, updates and audits nothing."""
    make_plp("PLP-PARC")
    path = write_roster(tmp_path / "roster.csv", MEMBERS, delimiter=";", bom=True)
    assert import_file(runner, path).exit_code == 0
    before = database_state()
    result = import_file(runner, path, "-v")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-PARC: 3 rows; 0 new people, 0 existing people joined, 0 updated, "
        "0 role changes, 3 unchanged"
    ]
    assert database_state() == before
    assert (count(Person), count(Membership), count(AuditEvent)) == (3, 3, 1)


def test_person_in_two_sheets_is_one_person_with_two_memberships(runner, make_plp, tmp_path):
    """The same number in two PLPs' sheets is one person with a membership (and role) in each."""
    make_plp("PLP-PARC")
    make_plp("PLP-GARE")
    parc = write_roster(
        tmp_path / "parc.csv",
        [
            ["name", "phone", "role"],
            ["Anne Peeters", "0470 12 34 56", "coordinator"],
            ["Bruno Maes", "0471 12 34 56", ""],
        ],
    )
    gare = write_roster(
        tmp_path / "gare.csv",
        [
            ["name", "phone", "role"],
            ["Anne Peeters", "+32 470 12 34 56", ""],
            ["Claire Dubois", "0472 12 34 56", ""],
        ],
    )
    assert import_file(runner, parc).exit_code == 0
    result = import_file(runner, gare, plp="plp-gare")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-GARE: 2 rows; 1 new people, 1 existing people joined, 0 updated, "
        "0 role changes, 0 unchanged"
    ]
    assert count(Person) == 3
    assert memberships() == {
        ("+32470123456", "PLP-PARC", "coordinator"),
        ("+32471123456", "PLP-PARC", "member"),
        ("+32470123456", "PLP-GARE", "member"),
        ("+32472123456", "PLP-GARE", "member"),
    }


def test_blank_cell_keeps_and_filled_cell_updates(runner, make_plp, tmp_path):
    """On re-import a blank optional cell keeps the known value; a filled one replaces it."""
    make_plp("PLP-PARC")
    first = write_roster(
        tmp_path / "first.csv",
        [
            HEADER,
            [
                "Anne Peeters",
                "0470 12 34 56",
                "02 511 22 33",
                "anne@example.be",
                "nl",
                "",
                "Parkstraat 1",
            ],
            ["Bruno Maes", "0471 12 34 56", "", "bruno@example.be", "fr", "", "Rue du Parc 3"],
        ],
    )
    second = write_roster(
        tmp_path / "second.csv",
        [
            HEADER,
            ["Anne Peeters", "0470 12 34 56", "", "", "", "", ""],
            [
                "Bruno Maes-Janssens",
                "0471 12 34 56",
                "087 55 01 05",
                "bruno@maes.be",
                "de",
                "",
                "Parkstraße 5",
            ],
        ],
    )
    assert import_file(runner, first).exit_code == 0
    result = import_file(runner, second, "-v")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-PARC: 2 rows; 0 new people, 0 existing people joined, 1 updated, "
        "0 role changes, 1 unchanged",
        "  updated: Bruno Maes-Janssens (+32471123456): "
        "name, phone2, phone2_type, email, language, address",
    ]
    anne, bruno = person("+32470123456"), person("+32471123456")
    assert (anne.phone2, anne.phone2_type, anne.email, anne.language, anne.address) == (
        "+3225112233",
        PhoneType.FIXED,
        "anne@example.be",
        "nl",
        "Parkstraat 1",
    )
    assert (
        bruno.name,
        bruno.phone2,
        bruno.phone2_type,
        bruno.email,
        bruno.language,
        bruno.address,
    ) == (
        "Bruno Maes-Janssens",
        "+3287550105",
        PhoneType.FIXED,
        "bruno@maes.be",
        "de",
        "Parkstraße 5",
    )
    assert [
        e.details["updated"] for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    ] == [0, 1]


def test_known_person_joins_and_keeps_their_details(runner, make_plp, make_person, tmp_path):
    """A person already known joins the PLP; blank cells keep their language and e-mail."""
    make_plp("PLP-PARC", language="fr")
    make_person(
        "Agent Peeters", phone="+32470123456", language="en", email="agent@police.example.be"
    )
    path = write_roster(
        tmp_path / "roster.csv",
        [["name", "phone", "email", "language"], ["Agent Peeters", "0470 12 34 56", "", ""]],
    )
    result = import_file(runner, path, "-v")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-PARC: 1 rows; 0 new people, 1 existing people joined, 0 updated, "
        "0 role changes, 0 unchanged",
        "  joined: Agent Peeters (+32470123456)",
    ]
    agent = person("+32470123456")
    assert (agent.language, agent.email) == ("en", "agent@police.example.be")
    assert memberships() == {("+32470123456", "PLP-PARC", "member")}
    assert count(Person) == 1


def test_changed_role_updates_the_membership(runner, make_plp, tmp_path):
    """A role changed in the sheet changes the membership's role and is reported."""
    make_plp("PLP-PARC")
    path = tmp_path / "roster.csv"
    write_roster(path, [["name", "phone", "role"], ["Anne Peeters", "0470 12 34 56", "member"]])
    assert import_file(runner, path).exit_code == 0
    write_roster(path, [["name", "phone", "role"], ["Anne Peeters", "0470 12 34 56", "steering"]])
    result = import_file(runner, path, "-v")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-PARC: 1 rows; 0 new people, 0 existing people joined, 0 updated, "
        "1 role changes, 0 unchanged",
        "  role: Anne Peeters (+32470123456): member -> steering",
    ]
    assert memberships() == {("+32470123456", "PLP-PARC", "steering")}


def test_blank_role_keeps_an_existing_role(runner, make_plp, tmp_path):
    """Re-importing a sheet without the role column keeps a coordinator a coordinator."""
    make_plp("PLP-PARC")
    path = tmp_path / "roster.csv"
    write_roster(
        path, [["name", "phone", "role"], ["Anne Peeters", "0470 12 34 56", "coordinator"]]
    )
    assert import_file(runner, path).exit_code == 0
    write_roster(
        path,
        [
            ["name", "phone", "role"],
            ["Anne Peeters", "0470 12 34 56", ""],
            ["Bruno Maes", "0471 12 34 56", ""],
        ],
    )
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "PLP-PARC: 2 rows; 1 new people, 0 existing people joined, 0 updated, "
        "0 role changes, 1 unchanged"
    )
    assert memberships() == {
        ("+32470123456", "PLP-PARC", "coordinator"),
        ("+32471123456", "PLP-PARC", "member"),
    }


def test_known_person_joining_gets_a_consent_time(runner, make_plp, make_person, tmp_path):
    """Someone already known (an officer, say) who joins through a sheet has consent recorded."""
    make_plp("PLP-PARC")
    make_person("Agent Peeters", phone="+32470123456")
    assert person("+32470123456").consent_at is None
    path = write_roster(
        tmp_path / "roster.csv", [["name", "phone"], ["Agent Peeters", "0470 12 34 56"]]
    )
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert person("+32470123456").consent_at is not None
    assert memberships() == {("+32470123456", "PLP-PARC", "member")}


def test_email_addresses_are_ascii_for_smtp():
    """An accented local part is refused; an accented domain is stored in its IDNA form."""
    data = csv_bytes(
        [
            ["name", "phone", "email"],
            ["Anne", "0470 12 34 56", "anne@exämple.be"],
            ["André", "0471 12 34 56", "andré@example.be"],
        ]
    )
    with pytest.raises(RosterError) as excinfo:
        read_roster(data)
    assert [(p.row, p.column) for p in excinfo.value.problems] == [(3, "email")]
    assert "before the @-sign are not supported" in excinfo.value.problems[0].message
    (anne,) = read_roster(data.rsplit(b"\r\nAndr", 1)[0] + b"\r\n")
    assert anne.email == "anne@xn--exmple-cua.be"


def test_value_under_an_unnamed_column_is_refused():
    """A value in a column whose header cell is blank is reported, not silently dropped."""
    data = b"name,phone,\r\nAnne,0470123456,anne@example.be\r\nBruno,0471123456,\r\n"
    with pytest.raises(RosterError) as excinfo:
        read_roster(data)
    assert [str(p) for p in excinfo.value.problems] == [
        "row 2: a value in column 3, which has no name in the header row"
    ]


def test_dry_run_reports_and_writes_nothing(runner, make_plp, tmp_path):
    """--dry-run lists what would change (new, updated, role, removed) and writes nothing."""
    make_plp("PLP-PARC")
    first = write_roster(
        tmp_path / "first.csv",
        [
            ["name", "phone", "email", "role"],
            ["Anne Peeters", "0470 12 34 56", "", ""],
            ["Bruno Maes", "0471 12 34 56", "", ""],
            ["Claire Dubois", "0472 12 34 56", "", ""],
        ],
    )
    assert import_file(runner, first).exit_code == 0
    before = database_state()
    second = write_roster(
        tmp_path / "second.csv",
        [
            ["name", "phone", "email", "role"],
            ["Anne Peeters", "0470 12 34 56", "anne@example.be", ""],
            ["Bruno Maes", "0471 12 34 56", "", "coordinator"],
            ["David Claes", "0473 12 34 56", "", ""],
        ],
    )
    result = import_file(runner, second, "--dry-run", "--remove-missing")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-PARC: 3 rows; 1 new people, 0 existing people joined, 1 updated, "
        "1 role changes, 0 unchanged, 1 removed",
        "  new: David Claes (+32473123456)",
        "  updated: Anne Peeters (+32470123456): email",
        "  role: Bruno Maes (+32471123456): member -> coordinator",
        "  removed: Claire Dubois (+32472123456)",
        "dry run: nothing would be written",
    ]
    assert database_state() == before
    assert (count(Person), count(Membership), count(AuditEvent)) == (3, 3, 1)


def test_dry_run_adds_nothing_to_the_session(make_plp, make_person):
    """import_roster with dry_run leaves the session clean for any caller, not only the CLI."""
    plp = make_plp("PLP-PARC")
    known = make_person("Anne Peeters", phone="+32470123456")
    db.session.add(Membership(person=known, partnership=plp, role=Role.MEMBER))
    db.session.commit()
    entries = read_roster(
        csv_bytes(
            [
                ["name", "phone", "email", "role"],
                ["Anne Peeters", "0470 12 34 56", "anne@example.be", "coordinator"],
                ["Bruno Maes", "0471 12 34 56", "", ""],
            ]
        )
    )
    report = import_roster(plp, entries, dry_run=True)
    assert (len(report.created), len(report.updated), len(report.role_changed)) == (1, 1, 1)
    assert (list(db.session.new), list(db.session.dirty), list(db.session.deleted)) == ([], [], [])


def test_dry_run_into_an_empty_plp_writes_nothing(runner, make_plp, tmp_path):
    """--dry-run on a first import creates no person, membership or audit event."""
    make_plp("PLP-PARC")
    path = write_roster(tmp_path / "roster.csv", MEMBERS)
    result = import_file(runner, path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "PLP-PARC: 3 rows; 3 new people, 0 existing people joined, 0 updated, "
        "0 role changes, 0 unchanged"
    )
    assert result.output.splitlines()[-1] == "dry run: nothing would be written"
    assert (count(Person), count(Membership), count(AuditEvent)) == (0, 0, 0)


def test_members_missing_from_the_file_are_kept_and_counted(runner, make_plp, tmp_path):
    """Without --remove-missing, members absent from the file stay and are counted."""
    make_plp("PLP-PARC")
    path = tmp_path / "roster.csv"
    write_roster(
        path,
        [
            ["name", "phone"],
            ["Anne", "0470 12 34 56"],
            ["Bruno", "0471 12 34 56"],
            ["Claire", "0472 12 34 56"],
        ],
    )
    assert import_file(runner, path).exit_code == 0
    write_roster(path, [["name", "phone"], ["Anne", "0470 12 34 56"]])
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-PARC: 1 rows; 0 new people, 0 existing people joined, 0 updated, "
        "0 role changes, 1 unchanged",
        "2 member(s) of PLP-PARC are not in the file and were kept (--remove-missing removes them)",
    ]
    assert count(Membership) == 3
    assert count(AuditEvent) == 1  # keeping members is no change


def test_remove_missing_removes_only_this_plps_memberships(runner, make_plp, tmp_path):
    """--remove-missing ends memberships in this PLP of people not in the file; people remain."""
    make_plp("PLP-PARC")
    make_plp("PLP-GARE")
    path = tmp_path / "roster.csv"
    write_roster(
        path,
        [
            ["name", "phone"],
            ["Anne", "0470 12 34 56"],
            ["Bruno", "0471 12 34 56"],
            ["Claire", "0472 12 34 56"],
        ],
    )
    assert import_file(runner, path).exit_code == 0
    assert import_file(runner, path, plp="PLP-GARE").exit_code == 0
    write_roster(path, [["name", "phone"], ["Anne", "0470 12 34 56"]])
    result = import_file(runner, path, "--remove-missing", "-v")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "PLP-PARC: 1 rows; 0 new people, 0 existing people joined, 0 updated, "
        "0 role changes, 1 unchanged, 2 removed"
    )
    assert sorted(lines[1:]) == [
        "  removed: Bruno (+32471123456)",
        "  removed: Claire (+32472123456)",
    ]
    assert memberships() == {
        ("+32470123456", "PLP-PARC", "member"),
        ("+32470123456", "PLP-GARE", "member"),
        ("+32471123456", "PLP-GARE", "member"),
        ("+32472123456", "PLP-GARE", "member"),
    }
    assert count(Person) == 3
    last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (last.details["removed"], last.details["rows"]) == (2, 1)


def test_problem_after_blank_rows_names_the_spreadsheet_row(runner, make_plp, tmp_path):
    """Blank rows are skipped, yet a problem below them names the row the spreadsheet shows."""
    make_plp("PLP-PARC")
    path = write_roster(
        tmp_path / "roster.csv",
        [
            ["name", "phone", "email"],
            ["Anne", "0470 12 34 56", ""],
            [],
            ["", "", ""],
            ["Bruno", "0471 12 34 56", "bruno@"],
        ],
        delimiter=";",
        bom=True,
    )
    result = import_file(runner, path)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "row 5, email: 'bruno@': There must be something after the @-sign.",
        f"Error: {path}: 1 problem(s); nothing was imported",
    ]
    assert count(Person) == 0


def test_blank_rows_are_not_members(runner, make_plp, tmp_path):
    """A file with blank rows between members imports only the members."""
    make_plp("PLP-PARC")
    path = write_roster(
        tmp_path / "roster.csv",
        [
            ["name", "phone"],
            [],
            ["Anne", "0470 12 34 56"],
            ["", ""],
            ["Bruno", "0471 12 34 56"],
            [],
        ],
    )
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("PLP-PARC: 2 rows; 2 new people,")
    assert count(Person) == 2


LANGUAGE_CYCLE = ("fr", "nl", "de", "en", "")


@pytest.mark.slow
def test_ten_thousand_rows_import(runner, make_plp, tmp_path):
    """A 10,000-member sheet imports every member in one go, with its languages."""
    make_plp("PLP-GRAND", language="nl")
    rows = [["name", "phone", "phone2", "email", "language"]]
    for i in range(10_000):
        rows.append(
            [
                f"Membre {i}",
                f"0470 {i // 10_000:02d} {i // 100 % 100:02d} {i % 100:02d}",
                f"02 5{i // 1000:02d} {i // 10 % 100:02d} {i % 10}0" if i % 3 == 0 else "",
                f"membre{i}@example.be" if i % 2 == 0 else "",
                LANGUAGE_CYCLE[i % 5],
            ]
        )
    path = write_roster(tmp_path / "grand.csv", rows, delimiter=";", bom=True)
    result = import_file(runner, path, plp="PLP-GRAND")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PLP-GRAND: 10000 rows; 10000 new people, 0 existing people joined, 0 updated, "
        "0 role changes, 0 unchanged"
    ]
    assert (count(Person), count(Membership)) == (10_000, 10_000)
    languages = dict(
        db.session.execute(select(Person.language, func.count()).group_by(Person.language)).all()
    )
    assert languages == {"fr": 2000, "nl": 4000, "de": 2000, "en": 2000}  # blank: the PLP's
    assert (
        db.session.scalar(
            select(func.count()).select_from(Person).where(Person.phone2.is_not(None))
        )
        == 3334
    )
    last = person("+32470009999")
    assert (last.name, last.phone_type, last.email) == ("Membre 9999", PhoneType.MOBILE, None)


def test_a_nul_or_control_character_in_a_cell_is_a_row_problem():
    """A damaged cell (NUL, escape) is refused with its row and column; tabs are spacing."""
    rows = [
        ["name", "phone", "address"],
        ["Anne\x00 Martin", "0470 12 34 56", "Rue du Parc 1"],
        ["Bruno\tPeeters", "0470 12 34 57", "Rue\x1b du Parc 2"],
    ]
    with pytest.raises(RosterError) as excinfo:
        read_roster(csv_bytes(rows))
    assert [(p.row, p.column) for p in excinfo.value.problems] == [(2, "name"), (3, "address")]
    assert all("control character" in p.message for p in excinfo.value.problems)


# --- Large files: streamed in bounded memory, still all or nothing ----------------------


def member_rows(count: int, *, first: int = 0) -> list[list[str]]:
    """Return `count` valid member rows (header included) with distinct mobile numbers."""
    rows = [["name", "phone", "email", "language"]]
    for i in range(first, first + count):
        rows.append(
            [
                f"Membre {i}",
                f"0470 {i // 10_000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d}",
                f"membre{i}@example.be" if i % 2 == 0 else "",
                LANGUAGE_CYCLE[i % 5],
            ]
        )
    return rows


def test_bad_last_row_of_a_large_file_writes_nothing(runner, make_plp, tmp_path):
    """A bad row after more than two chunks of good ones refuses the file; nothing written."""
    make_plp("PLP-PARC")
    rows = member_rows(2 * CHUNK + 100)
    rows.append(["Zoé", "0470 12 34", "", ""])
    path = write_roster(tmp_path / "roster.csv", rows)
    result = import_file(runner, path)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"row {len(rows)}, phone: '0470 12 34' is not a valid phone number",
        f"Error: {path}: 1 problem(s); nothing was imported",
    ]
    assert (count(Person), count(Membership), count(AuditEvent)) == (0, 0, 0)


def test_failure_in_a_later_chunk_rolls_back_the_earlier_ones(
    runner, make_plp, tmp_path, monkeypatch
):
    """A database error on the second chunk leaves nothing of the first, already flushed."""
    make_plp("PLP-PARC")
    path = write_roster(tmp_path / "roster.csv", member_rows(2 * CHUNK + 10))
    people_at_chunk_start = []
    load_people = enrolment._people_by_phone

    def second_chunk_fails(plp, phones):
        people_at_chunk_start.append(count(Person))  # as the import's transaction sees it
        if len(people_at_chunk_start) == 2:
            raise OperationalError("SELECT ... FROM person", {}, Exception("disk I/O error"))
        return load_people(plp, phones)

    monkeypatch.setattr(enrolment, "_people_by_phone", second_chunk_fails)
    result = import_file(runner, path)
    assert isinstance(result.exception, OperationalError), result.output
    assert people_at_chunk_start == [0, CHUNK]  # the first chunk was written
    assert (count(Person), count(Membership), count(AuditEvent)) == (0, 0, 0)


def test_problems_beyond_the_cap_are_counted(runner, make_plp, tmp_path):
    """Past the first MAX_PROBLEMS problems, the rest are counted: '... and N more'."""
    make_plp("PLP-PARC")
    rows = [["name", "phone", "role"]]
    rows += [[f"Membre {i}", f"0470 00 {i // 100:02d} {i % 100:02d}", "boss"] for i in range(1005)]
    path = write_roster(tmp_path / "roster.csv", rows)
    with path.open("rb") as file, pytest.raises(RosterError) as excinfo:
        check_roster(file)
    assert (excinfo.value.total, len(excinfo.value.problems)) == (1005, MAX_PROBLEMS)
    assert [p.row for p in excinfo.value.problems] == list(range(2, MAX_PROBLEMS + 2))
    result = import_file(runner, path)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == MAX_PROBLEMS + 2
    assert lines[0] == "row 2, role: 'boss': choose one of member, coordinator, steering"
    assert lines[-2:] == [
        "... and 5 more",
        f"Error: {path}: 1005 problem(s); nothing was imported",
    ]
    assert count(Person) == 0


def test_a_stream_that_cannot_seek_is_copied_then_checked(tmp_path):
    """A pipe (stdin) is read once into a temporary copy, which the two passes read."""
    data = csv_bytes(member_rows(3))
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        assert not pipe.seekable()
        with seekable(pipe) as stream, check_roster(stream) as checked:
            assert [e.name for e in checked.entries()] == ["Membre 0", "Membre 1", "Membre 2"]


@pytest.mark.slow
def test_import_memory_does_not_grow_with_the_file(runner, make_plp, tmp_path):
    """20,000 rows import within 40 MB of Python memory; holding them all took 200 MB."""
    make_plp("PLP-PARC")
    make_plp("PLP-GARE")
    # What every import loads once (phone metadata, compiled statements), loaded first.
    warmup = write_roster(tmp_path / "warmup.csv", member_rows(1, first=99_999))
    assert import_file(runner, warmup, plp="PLP-GARE").exit_code == 0
    path = write_roster(tmp_path / "roster.csv", member_rows(20_000))
    tracemalloc.start()
    try:
        result = import_file(runner, path)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert (count(Person), count(Membership)) == (20_001, 20_001)
    assert peak < 40_000_000, f"peak {peak / 1e6:.0f} MB"


def test_streamed_entries_are_the_entries_of_the_whole_file():
    """The entries the check spools for the import are those of reading the file at once."""
    rows = [
        *MEMBERS,
        ["  Dirk   Claes ", "0470/12.34.57", "0033 6 12 34 56 78", "Dirk@Exämple.BE", "NL", "", ""],
        ["Eva", "0471 99 01 03", "", "", "", "steering", "Rue du Parc 1,\n1050 Ixelles"],
    ]
    data = csv_bytes(rows, delimiter=";", bom=True)
    with check_roster(io.BytesIO(data)) as checked:
        streamed = list(checked.entries())
    assert checked.rows == 5
    assert streamed == read_roster(data)
    assert [e.row for e in streamed] == [2, 3, 4, 5, 6]


def test_non_utf8_byte_after_a_bom_names_its_row():
    """A Latin-1 letter opening row 2 of a file with a BOM is reported on row 2, not 1."""
    data = b"\xef\xbb\xbfname,phone\r\n\xc9ric,0470 12 34 56\r\n"
    with pytest.raises(RosterError) as excinfo:
        read_roster(data)
    assert [str(p) for p in excinfo.value.problems] == [
        "row 2: the file is not UTF-8 text; in your spreadsheet choose 'CSV UTF-8' when saving"
    ]
