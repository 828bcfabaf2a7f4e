"""Member lists as coordinators' spreadsheets write them, and every bad file of the issue."""

from __future__ import annotations

import codecs

import pytest

from hub.domain import Channel, Language, MemberData, Phone, PhoneKind
from hub.members import Field, ImportFile, read_members_csv
from hub.members.columns import NAMES, field_for, fold, letter

JAN = MemberData(name="Jan Peeters", language=Language.NL,
                 phones=(Phone("+32477123456", PhoneKind.MOBILE),),
                 emails=("jan@telenet.be",))


def read(text: str, encoding: str = "utf-8") -> ImportFile:
    return read_members_csv(text.encode(encoding))


def only_member(result: ImportFile) -> MemberData:
    assert result.errors == ()
    assert len(result.rows) == 1, result.rows
    member = result.rows[0].member
    assert member is not None, result.rows[0].reasons
    return member


def reasons(result: ImportFile) -> list[str]:
    assert result.errors == ()
    return [reason for row in result.rows for reason in row.reasons]


# --- headers in nl, fr, en


def test_dutch_header() -> None:
    result = read("Naam;GSM;E-mail;Taal\nJan Peeters;0477 12 34 56;jan@telenet.be;Nederlands\n")
    assert only_member(result) == JAN
    assert [c.field for c in result.columns] == [Field.NAME, Field.SMS_PHONE, Field.EMAIL,
                                                 Field.LANGUAGE]


def test_french_header_first_and_family_name() -> None:
    result = read("Prénom;Nom;Portable;Courriel;Langue\n"
                  "Marie;Dubois;+32 477/12.34.56;marie@skynet.be;français\n")
    member = only_member(result)
    assert member.name == "Marie Dubois" and member.language is Language.FR
    assert result.columns[1].field is Field.LAST_NAME  # nom beside prénom


def test_english_header_case_accents_spaces() -> None:
    result = read("  FIRST NAME ;Last_Name;Mobile Phone;E-MAIL address;LANGUAGE;Ref\n"
                  "Jan;Peeters;0477123456;jan@telenet.be;en;A-17\n")
    member = only_member(result)
    assert member.name == "Jan Peeters" and member.language is Language.EN
    assert member.external_id == "A-17"


def test_every_accepted_name_maps_to_its_field_alone() -> None:
    folded: dict[str, Field] = {}
    for field, names in NAMES.items():
        for name in names:
            assert field_for(name) is field, name
            assert folded.setdefault(fold(name), field) is field, name
    assert field_for("Téléphone 2") is Field.PHONE
    assert field_for("Naam 2") is None  # only phone and e-mail columns repeat


def test_letters() -> None:
    assert [letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


# --- encodings and delimiters


def test_bom() -> None:
    data = codecs.BOM_UTF8 + b"Naam;GSM;E-mail;Taal\nJan Peeters;0477 12 34 56;jan@telenet.be;nl\n"
    result = read_members_csv(data)
    assert only_member(result) == JAN and result.encoding == "utf-8-sig"
    assert result.columns[0].field is Field.NAME  # the BOM is not part of the first header


def test_windows_1252_accents() -> None:
    result = read("Prénom;Nom;Téléphone;Langue\nHélène;Lefèvre;0477 12 34 56;Français\n", "cp1252")
    assert result.encoding == "cp1252"
    assert only_member(result).name == "Hélène Lefèvre"


def test_utf16_from_excel_unicode_text() -> None:
    data = "Naam\tGSM\tE-mail\tTaal\r\nJan Peeters\t0477 12 34 56\tjan@telenet.be\tnl\r\n".encode("utf-16")
    result = read_members_csv(data)
    assert only_member(result) == JAN and result.delimiter == "\t"


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_delimiters(delimiter: str) -> None:
    lines = [["Naam", "GSM", "E-mail", "Taal"], ["Jan Peeters", "0477 12 34 56", "jan@telenet.be", "nl"]]
    result = read("\r\n".join(delimiter.join(line) for line in lines) + "\r\n")
    assert result.delimiter == delimiter and only_member(result) == JAN


def test_quoted_fields_with_delimiters_inside() -> None:
    result = read('Naam;GSM;Adres;Taal\n'
                  '"Peeters; Jan";"0477 12 34 56";"Kerkstraat 1; bus 2, 1000 Brussel";nl\n')
    member = only_member(result)
    assert member.name == "Peeters; Jan"
    assert member.address == "Kerkstraat 1; bus 2, 1000 Brussel"
    result = read('name,phone,address\n"Dubois, Marie",0477123456,"Rue Haute 5, 1000 Bruxelles"\n')
    assert only_member(result).name == "Dubois, Marie"


def test_quoted_field_with_a_line_break_keeps_spreadsheet_row_numbers() -> None:
    result = read('Naam;GSM\n"Jan\nPeeters";0477123456\n\nMarie;0477123457\n')
    assert [r.row for r in result.rows] == [2, 4]  # the empty row 3 is skipped, still counted


def test_excel_sep_line() -> None:
    result = read("sep=,\nNaam,GSM\nJan Peeters,0477 12 34 56\n")
    assert result.delimiter == "," and only_member(result).name == "Jan Peeters"


# --- rows


def test_several_phone_columns_and_numbers_in_one_cell() -> None:
    result = read("Naam;GSM;Telefoon;Tel 2;E-mail;E-mail 2\n"
                  "Jan;0477 12 34 56;02 511 22 33 / 0477 12 34 56;+33 6 12 34 56 78;"
                  "jan@x.be, jan@y.be;JAN@Y.BE\n")
    member = only_member(result)
    assert [p.number for p in member.phones] == ["+32477123456", "+3225112233", "+33612345678"]
    assert [p.kind for p in member.phones] == [PhoneKind.MOBILE, PhoneKind.FIXED, PhoneKind.MOBILE]
    assert member.emails == ("jan@x.be", "jan@y.be", "JAN@y.be")


def test_address_from_parts_location_channels() -> None:
    result = read("Naam;GSM;Straat;Nr;Bus;Postcode;Gemeente;Lat;Lon;Kanalen\n"
                  'Jan;0477123456;Kerkstraat;12;3;1000;Brussel;"50,8466";4.3528;SMS, e-mail\n')
    member = only_member(result)
    assert member.address == "Kerkstraat 12/3, 1000 Brussel"
    assert (member.lat, member.lon) == (50.8466, 4.3528)
    assert member.channels == (Channel.SMS, Channel.EMAIL)
    assert result.rows[0].warnings == ("channel email asked, but no e-mail address",)


@pytest.mark.parametrize(("word", "language"), [
    ("nl", Language.NL), ("N", Language.NL), ("Nederlands", Language.NL), ("nl-BE", Language.NL),
    ("F", Language.FR), ("français", Language.FR), ("Frans", Language.FR),
    ("Deutsch", Language.DE), ("de", Language.DE), ("English", Language.EN), ("EN", Language.EN),
])
def test_language_words(word: str, language: Language) -> None:
    assert only_member(read(f"Naam;GSM;Taal\nJan;0477123456;{word}\n")).language is language


def test_language_default() -> None:
    result = read_members_csv(b"Naam;GSM\nJan;0477123456\n", default_language=Language.FR)
    assert only_member(result).language is Language.FR
    assert result.warnings == ("no language column: every member gets fr",)
    result = read("Naam;GSM;Taal\nJan;0477123456;\n")
    assert result.rows[0].warnings == ("no language: nl assumed",)


def test_formula_guard_is_removed() -> None:
    assert only_member(read("Naam;GSM\n'=Jan;0477123456\n")).name == "=Jan"


def test_empty_header_cell_is_ignored_with_a_warning() -> None:
    result = read("Naam;;GSM\nJan;x;0477123456\n")
    assert only_member(result).name == "Jan"
    assert result.warnings[0] == "column B has no header: ignored"


# --- bad input, each from the issue


def test_not_csv() -> None:
    result = read_members_csv(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)
    assert result.errors == ("not a CSV file: this is an Excel workbook (.xlsx) or another ZIP "
                             "file; save the list as CSV first",)
    result = read_members_csv(bytes(range(256)) * 40)
    assert result.errors == ("not a CSV file: it holds binary data",)
    assert read_members_csv(b"\x89PNG\r\n\x1a\n...").errors[0].startswith("not a CSV file")


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\r\n  \n", b";;;\n;;\n"])
def test_empty_file(data: bytes) -> None:
    assert read_members_csv(data).errors == ("the file is empty",)


def test_only_a_header() -> None:
    assert read("Naam;GSM\n;\n").errors == ("the file has a header but no members",)


def test_unknown_columns() -> None:
    result = read("Naam;Geboortedatum;GSM;Opmerking\nJan;1970-01-01;0477123456;x\n")
    assert result.rows == ()
    (error,) = result.errors
    assert error.startswith("unknown columns 'Geboortedatum' (column B), 'Opmerking' (column D): "
                            "rename or remove them. Accepted names: external id: external id, id,")
    assert "gsm: gsm, gsm-nummer" in error and "prénom" in error


def test_header_problems() -> None:
    assert read("Naam;Nom;GSM\nJan;Jan;0477123456\n").errors == (
        "columns 'Naam' (column A) and 'Nom' (column B) both give the name",)
    assert read("Naam;Taal\nJan;nl\n").errors == (
        "no phone or e-mail column (gsm, telefoon, téléphone, phone, email, ...)",)
    assert read("GSM;Taal\n0477123456;nl\n").errors[0].startswith("no name column")
    assert read("Naam;GSM;Lat\nJan;0477123456;50.8\n").errors == (
        "a lat column needs a lon column, and the other way round",)
    assert read("Jan Peeters;0477 12 34 56\n").errors[0].startswith(
        "the first row looks like data, not a header")


def test_number_in_an_impossible_format() -> None:
    assert reasons(read("Naam;Telefoon\nJan;0477 12 34\n")) == ["'0477 12 34' is not a valid number"]


def test_foreign_number_without_country_code() -> None:
    assert reasons(read("Naam;Telefoon\nJean;612345678\n")) == [
        "'612345678' is not a Belgian number and has no country code (+33 6 12 34 56 78?)"]


def test_landline_as_the_sms_number() -> None:
    result = read("Naam;GSM;E-mail\nJan;02 511 22 33;jan@telenet.be\n")
    assert result.rows[0].member is None
    assert reasons(result) == ["'02 511 22 33' in column 'GSM' is a landline: it cannot receive SMS "
                               "(put it in a phone column)"]
    assert only_member(read("Naam;Telefoon\nJan;02 511 22 33\n")).phones[0].kind is PhoneKind.FIXED


def test_email_without_domain() -> None:
    assert reasons(read("Naam;E-mail\nJan;jan@\n")) == ["'jan@' is an e-mail address without a domain"]


def test_language_xx() -> None:
    assert reasons(read("Naam;GSM;Taal\nJan;0477123456;xx\n")) == [
        "unknown language 'xx' (nl, fr, de or en)"]


def test_ten_megabytes_on_one_line() -> None:
    data = b"Naam;GSM\nJan;" + b"0" * (10 * 1024 * 1024) + b"\n"
    assert read_members_csv(data).errors == (
        "line 2 has 10,485,764 characters; a member row has at most 65,536: this is not a member list",)
    assert read_members_csv(b"x" * (10 * 1024 * 1024)).errors[0].startswith("line 1 has 10,485,760")


def test_a_field_over_the_csv_limit() -> None:
    # An unclosed quote swallows the rest of the file: a field over csv.field_size_limit().
    data = b'Naam;GSM\n"Jan;0477123456\n' + b"Marie;0477123457\n" * 20_000
    (error,) = read_members_csv(data).errors
    assert error.startswith("not a readable CSV file") and "field larger than field limit" in error


def test_missing_contact_and_name_and_too_many_cells() -> None:
    result = read("Naam;GSM;E-mail\nJan;;\n;0477123456;\nJan;0477123456;jan@x.be;extra\nJan;0477123458;;;\n")
    assert [r.reasons for r in result.rows] == [
        ("no phone number and no e-mail address",),
        ("no name",),
        ("4 cells where the header has 3 (a delimiter inside a value that is not between quotes?)",),
        (),
    ]


def test_bad_location_and_channel() -> None:
    result = read("Naam;GSM;Lat;Lon;Kanalen\nJan;0477123456;abc;4.3;sms\nJan;0477123457;4.35;50.85;fax\n"
                  "Jan;0477123458;4.35;50.85;voice\n")
    assert result.rows[0].reasons == ("lat 'abc' and lon '4.3' are not a position (decimal degrees, "
                                      "both needed)",)
    assert result.rows[1].reasons == ("unknown channel 'fax' (sms, voice or email)",)
    assert result.rows[2].warnings == ("position 4.35, 50.85 is outside Belgium (lat and lon swapped?)",)
