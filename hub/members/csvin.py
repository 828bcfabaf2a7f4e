"""A member list as CSV bytes → an ``ImportFile``: the columns used and one ``ImportRow`` per
data row, each either a ``MemberData`` or the reasons it is refused. Pure: no I/O, no
exceptions for bad input; file-level problems are ``ImportFile.errors``.

What it reads, as spreadsheets and coordinators write it:

- UTF-8 with or without BOM, UTF-16 with BOM (Excel's "Unicode text"), else Windows-1252;
- ``;`` (Belgian Excel), ``,`` or tab, chosen by counting them in the header row (outside
  quotes); an Excel ``sep=;`` first line is honoured; quoted fields (``"Rue X 1; bte 2"``);
- the header row maps columns by name (``hub.members.columns``); rows are numbered as the
  spreadsheet shows them, the header being row 1; rows with every cell empty are skipped;
- a cell may hold several numbers or addresses separated by ``,`` ``;`` or a line break, and
  numbers also by `` / `` between spaces.

Limits: one line of the file at most ``MAX_LINE`` characters (a member row is far shorter; a
longer line is a sign of a file that is not a member list), and ``csv``'s own field limit
(``csv.field_size_limit()``, 128 KiB by default), which this module reads but never changes:
it is process-wide state.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from hub.domain import Channel, Language, MemberData, Phone, PhoneKind
from hub.members.columns import ADDRESS_PARTS, PHONE_FIELDS, Column, Field, fold, map_header
from hub.members.emails import parse_email
from hub.members.phones import parse_phone

MAX_LINE = 65_536
MAX_NAME = 200
MAX_TEXT = 500

_MAGIC = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another ZIP file"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls) or another Office file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_QUOTED = re.compile(r'"[^"]*"')
_SEP_LINE = re.compile(r"sep=(.)\r?\n?")
_LIST_SPLIT = re.compile(r"[,;\n]")
_SLASH_SPLIT = re.compile(r"\s+/\s+")
_CHANNEL_SPLIT = re.compile(r"[,;/+\s]+")
_FORMULA = ("'=", "'+", "'-", "'@")

_LANGUAGES: dict[str, Language] = {
    key: language
    for language, keys in (
        (Language.NL, ("nl", "nlbe", "n", "ned", "nederlands", "vlaams", "dutch", "neerlandais",
                       "flamand", "niederlandisch")),
        (Language.FR, ("fr", "frbe", "f", "fra", "frans", "francais", "french", "franzosisch")),
        (Language.DE, ("de", "debe", "d", "deu", "duits", "allemand", "deutsch", "german")),
        (Language.EN, ("en", "engb", "enus", "e", "eng", "engels", "anglais", "english",
                       "englisch")),
    )
    for key in keys
}
_CHANNELS: dict[str, Channel] = {
    key: channel
    for channel, keys in (
        (Channel.SMS, ("sms", "text", "texto", "tekst")),
        (Channel.VOICE, ("voice", "call", "spraak", "oproep", "bellen", "appel", "vocal", "voix",
                         "telefoon", "telephone", "phone")),
        (Channel.EMAIL, ("email", "mail", "courriel")),
    )
    for key in keys
}


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One data row: ``member`` when it can be imported, else ``reasons``."""

    row: int  # as the spreadsheet numbers it: the header is row 1
    member: MemberData | None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportFile:
    rows: tuple[ImportRow, ...] = ()
    columns: tuple[Column, ...] = ()
    errors: tuple[str, ...] = ()  # the file as a whole is refused: no rows
    warnings: tuple[str, ...] = ()
    encoding: str = ""
    delimiter: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


def read_members_csv(data: bytes, *, default_language: Language = Language.NL) -> ImportFile:
    """Read a member list. ``default_language`` is given to rows without one (the group's
    first language is the caller's natural choice); such rows get a warning."""
    text, encoding, errors = _decode(data)
    if errors:
        return ImportFile(errors=tuple(errors), encoding=encoding)
    text, delimiter = _delimiter(text)
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _read(enumerate(records, 1), default_language, encoding, delimiter)
    except csv.Error as exc:  # a field over csv.field_size_limit(), a NUL...
        return ImportFile(errors=(f"not a readable CSV file (line {records.line_num}): {exc}",),
                          encoding=encoding, delimiter=delimiter)


def _read(records: Iterator[tuple[int, list[str]]], default_language: Language, encoding: str,
          delimiter: str) -> ImportFile:
    """The rows, streamed from the csv reader (the records are not all kept: fewer live
    objects, less for the garbage collector to walk)."""
    header = next((r for _, r in records if _filled(r)), None)
    if header is None:
        return ImportFile(errors=("the file is empty",), encoding=encoding, delimiter=delimiter)
    columns, header_errors, warnings = map_header(header)
    if header_errors:
        return ImportFile(columns=columns, errors=tuple(header_errors), encoding=encoding,
                          delimiter=delimiter)
    reader = _RowReader(columns, default_language)
    rows = tuple(reader.read(number, r) for number, r in records if _filled(r))
    if not rows:
        return ImportFile(columns=columns, errors=("the file has a header but no members",),
                          encoding=encoding, delimiter=delimiter)
    if Field.LANGUAGE not in reader.index:
        warnings.append(f"no language column: every member gets {default_language.value}")
    return ImportFile(rows=rows, columns=columns, warnings=tuple(warnings), encoding=encoding,
                      delimiter=delimiter)


# --- the file: bytes → text


def _decode(data: bytes) -> tuple[str, str, list[str]]:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return "", "", [f"not a CSV file: this is {what}; save the list as CSV first"]
    text, encoding = _text(data)
    if text is None or _CONTROL.search(text, 0, 65_536) is not None or "\x00" in text:
        return "", encoding, ["not a CSV file: it holds binary data"]
    if not text.strip():
        return "", encoding, ["the file is empty"]
    lengths = [len(line) for line in text.splitlines()]
    longest = max(lengths)
    if longest > MAX_LINE:
        line = lengths.index(longest) + 1
        return "", encoding, [f"line {line} has {longest:,} characters; a member row has at most "
                              f"{MAX_LINE:,}: this is not a member list"]
    return text, encoding, []


def _text(data: bytes) -> tuple[str | None, str]:
    if data.startswith(codecs.BOM_UTF8):
        candidates: Sequence[str] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ("utf-16",)
    else:
        candidates = ("utf-8", "cp1252")
    for encoding in candidates:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return None, candidates[-1]


def _delimiter(text: str) -> tuple[str, str]:
    """``(text, delimiter)``: an Excel ``sep=`` line is taken and removed; else the candidate
    most often in the first non-empty line, outside quotes (``;`` on a tie or none)."""
    sep = _SEP_LINE.match(text)
    if sep is not None:
        return text[sep.end():], sep.group(1)
    first = next((line for line in text[: 4 * MAX_LINE].splitlines() if line.strip()), "")
    bare = _QUOTED.sub("", first)
    counts = {d: bare.count(d) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])
    return text, best if counts[best] else ";"


def _filled(record: Sequence[str]) -> bool:
    return any(cell.strip() for cell in record)


# --- one row → MemberData or reasons


class _Row:
    """What one row collects while it is read."""

    __slots__ = ("reasons", "warnings", "phones", "emails", "contact_given")

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.warnings: list[str] = []
        self.phones: dict[str, Phone] = {}
        self.emails: dict[str, None] = {}
        self.contact_given = False


class _RowReader:
    def __init__(self, columns: Sequence[Column], default_language: Language) -> None:
        self.index: dict[Field, list[int]] = {}
        for column in columns:
            if column.field is not None:
                self.index.setdefault(column.field, []).append(column.index)
        self.phone_columns = [(c.field, c.index, c.header) for c in columns if c.field in PHONE_FIELDS]
        self.email_columns = self.index.get(Field.EMAIL, [])
        self.first = {f: found[0] for f, found in self.index.items()}
        self.width = len(columns)
        self.default_language = default_language
        self.has_location = Field.LAT in self.index
        self.has_channels = Field.CHANNELS in self.index
        self.has_parts = any(f in self.index for f in ADDRESS_PARTS)

    def read(self, number: int, cells: list[str]) -> ImportRow:
        row = _Row()
        if len(cells) > self.width and _filled(cells[self.width:]):
            row.reasons.append(f"{len(cells)} cells where the header has {self.width} (a "
                               "delimiter inside a value that is not between quotes?)")
        name = self._name(cells, row)
        self._phones(cells, row)
        self._emails(cells, row)
        language = self._language(cells, row)
        lat, lon = self._location(cells, row) if self.has_location else (None, None)
        channels = self._channels(cells, row) if self.has_channels else ()
        if not row.contact_given:
            row.reasons.append("no phone number and no e-mail address")
        if row.reasons or language is None:
            return ImportRow(number, None, tuple(row.reasons), tuple(row.warnings))
        phones = tuple(row.phones.values())
        _check_channels(channels, phones, row)
        member = MemberData(
            name=name, language=language, phones=phones, emails=tuple(row.emails),
            external_id=self._text(cells, Field.EXTERNAL_ID, row) or None,
            address=self._address(cells, row) or None, lat=lat, lon=lon, channels=channels)
        if row.reasons:  # a text too long
            return ImportRow(number, None, tuple(row.reasons), tuple(row.warnings))
        return ImportRow(number, member, (), tuple(row.warnings))

    def _cell(self, cells: list[str], field: Field) -> str:
        i = self.first.get(field, 1 << 20)
        return cells[i].strip() if i < len(cells) else ""

    def _text(self, cells: list[str], field: Field, row: _Row, limit: int = MAX_TEXT) -> str:
        value = self._cell(cells, field)
        if value.startswith(_FORMULA):  # the export's guard against spreadsheet formulas
            value = value[1:]
        if len(value) > limit:
            row.reasons.append(f"the {field.value} is longer than {limit} characters")
        return value

    def _name(self, cells: list[str], row: _Row) -> str:
        name = self._text(cells, Field.NAME, row, MAX_NAME)
        if not name:
            parts = (self._text(cells, Field.FIRST_NAME, row, MAX_NAME),
                     self._text(cells, Field.LAST_NAME, row, MAX_NAME))
            name = " ".join(p for p in parts if p)
        if not name:
            row.reasons.append("no name")
        return name

    def _phones(self, cells: list[str], row: _Row) -> None:
        for field, i, header in self.phone_columns:
            value = cells[i].strip() if i < len(cells) else ""
            if not value:
                continue
            row.contact_given = True
            for phone in _numbers(value, row):
                if field is Field.SMS_PHONE and phone.kind is not PhoneKind.MOBILE:
                    what = "a landline" if phone.kind is PhoneKind.FIXED else "not a mobile number"
                    row.reasons.append(f"{value!r} in column {header!r} is {what}: it cannot "
                                       "receive SMS (put it in a phone column)")
                elif phone.number not in row.phones:
                    row.phones[phone.number] = phone

    def _emails(self, cells: list[str], row: _Row) -> None:
        for i in self.email_columns:
            value = cells[i].strip() if i < len(cells) else ""
            if not value:
                continue
            row.contact_given = True
            if value.startswith(_FORMULA):
                value = value[1:]
            parts = _LIST_SPLIT.split(value) if _LIST_SPLIT.search(value) else (value,)
            for part in parts:
                if not part.strip():
                    continue
                address, reason = parse_email(part)
                if reason is not None:
                    row.reasons.append(reason)
                elif address is not None:
                    row.emails[address] = None

    def _language(self, cells: list[str], row: _Row) -> Language | None:
        value = self._cell(cells, Field.LANGUAGE)
        if not value:
            if Field.LANGUAGE in self.index:
                row.warnings.append(f"no language: {self.default_language.value} assumed")
            return self.default_language
        language = _LANGUAGES.get(value.lower()) or _LANGUAGES.get(fold(value))
        if language is None:
            row.reasons.append(f"unknown language {value!r} (nl, fr, de or en)")
        return language

    def _location(self, cells: list[str], row: _Row) -> tuple[float | None, float | None]:
        lat_text, lon_text = self._cell(cells, Field.LAT), self._cell(cells, Field.LON)
        if not lat_text and not lon_text:
            return None, None
        lat, lon = _number(lat_text), _number(lon_text)
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            row.reasons.append(f"lat {lat_text!r} and lon {lon_text!r} are not a position "
                               "(decimal degrees, both needed)")
            return None, None
        if not (49 <= lat <= 52 and 2 <= lon <= 7):
            hint = " (lat and lon swapped?)" if 49 <= lon <= 52 and 2 <= lat <= 7 else ""
            row.warnings.append(f"position {lat}, {lon} is outside Belgium{hint}")
        return lat, lon

    def _channels(self, cells: list[str], row: _Row) -> tuple[Channel, ...]:
        value = self._cell(cells, Field.CHANNELS)
        if not value:
            return ()
        found: dict[Channel, None] = {}
        for word in _CHANNEL_SPLIT.split(value):
            if not word:
                continue
            channel = _CHANNELS.get(fold(word))
            if channel is None:
                row.reasons.append(f"unknown channel {word!r} (sms, voice or email)")
            else:
                found[channel] = None
        return tuple(found)

    def _address(self, cells: list[str], row: _Row) -> str:
        address = self._text(cells, Field.ADDRESS, row)
        if address or not self.has_parts:
            return address
        street, number, box, postcode, city = (self._text(cells, f, row) for f in ADDRESS_PARTS)
        first = " ".join(p for p in (street, number + (f"/{box}" if box else "")) if p)
        second = " ".join(p for p in (postcode, city) if p)
        return ", ".join(p for p in (first, second) if p)


def _numbers(value: str, row: _Row) -> Iterator[Phone]:
    """The numbers in one phone cell; a reason in ``row`` for each that is not one."""
    if _LIST_SPLIT.search(value):
        parts: Sequence[str] = [p for p in _LIST_SPLIT.split(value) if p.strip()]
    else:
        whole = parse_phone(value)
        if isinstance(whole, Phone):
            yield whole
            return
        split = _SLASH_SPLIT.split(value)
        if len(split) == 1 or not all(isinstance(parse_phone(p), Phone) for p in split):
            row.reasons.append(whole)
            return
        parts = split
    for part in parts:
        phone = parse_phone(part)
        if isinstance(phone, Phone):
            yield phone
        else:
            row.reasons.append(phone)


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _check_channels(channels: tuple[Channel, ...], phones: tuple[Phone, ...], row: _Row) -> None:
    if Channel.SMS in channels and not any(p.kind is PhoneKind.MOBILE for p in phones):
        row.warnings.append("channel sms asked, but no mobile number")
    if Channel.VOICE in channels and not phones:
        row.warnings.append("channel voice asked, but no phone number")
    if Channel.EMAIL in channels and not row.emails:
        row.warnings.append("channel email asked, but no e-mail address")
