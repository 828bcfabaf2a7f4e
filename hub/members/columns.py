"""The column mapping of a member list: which header names (nl, fr, en, some de) mean what.

A header cell is compared after folding: accents dropped, case folded, everything but letters
and digits removed, so ``E-mail adres``, ``e_mail_adres`` and ``EMAILADRES`` are one name.
Phone and e-mail columns may repeat (``gsm``, ``telefoon``, ``tel 2``, ``e-mail 2``): a
trailing number is dropped before the look-up. ``nom`` beside ``prénom`` (and ``naam`` beside
``voornaam``, ``name`` beside ``first name``) is the family name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Field(StrEnum):
    """What a column holds. The values are the English header names the export writes."""

    EXTERNAL_ID = "external id"
    NAME = "name"
    FIRST_NAME = "first name"
    LAST_NAME = "last name"
    PHONE = "phone"  # any number: its kind (mobile or fixed) decides SMS and voice
    SMS_PHONE = "gsm"  # must be a mobile: a landline here is refused
    VOICE_PHONE = "landline"  # any number, named as the one to call
    EMAIL = "email"
    LANGUAGE = "language"
    ADDRESS = "address"
    STREET = "street"
    HOUSE_NUMBER = "house number"
    BOX = "box"
    POSTCODE = "postcode"
    CITY = "city"
    LAT = "lat"
    LON = "lon"
    CHANNELS = "channels"


PHONE_FIELDS = (Field.PHONE, Field.SMS_PHONE, Field.VOICE_PHONE)
REPEATABLE = frozenset((*PHONE_FIELDS, Field.EMAIL))
ADDRESS_PARTS = (Field.STREET, Field.HOUSE_NUMBER, Field.BOX, Field.POSTCODE, Field.CITY)

# The accepted names, as a coordinator would write them (the error message lists these).
NAMES: dict[Field, tuple[str, ...]] = {
    Field.EXTERNAL_ID: ("external id", "id", "ref", "référence", "referentie", "extern id",
                        "externe id", "id externe", "identifiant", "lidnummer", "member id"),
    Field.NAME: ("name", "naam", "nom", "volledige naam", "nom complet", "full name"),
    Field.FIRST_NAME: ("first name", "voornaam", "prénom", "given name", "vorname"),
    Field.LAST_NAME: ("last name", "achternaam", "familienaam", "nom de famille", "surname",
                      "family name", "nachname"),
    Field.PHONE: ("phone", "telefoon", "téléphone", "tel", "telefoonnummer", "telnr",
                  "numéro de téléphone", "phone number", "telefon"),
    Field.SMS_PHONE: ("gsm", "gsm-nummer", "mobile", "mobiel", "mobiel nummer", "portable",
                      "téléphone portable", "mobile phone", "cell phone", "sms", "handy"),
    Field.VOICE_PHONE: ("landline", "vaste lijn", "vast nummer", "vaste telefoon", "fixe",
                        "téléphone fixe", "voice", "home phone"),
    Field.EMAIL: ("email", "e-mail", "e-mailadres", "mail", "courriel", "adresse e-mail",
                  "adresse électronique", "email address"),
    Field.LANGUAGE: ("language", "taal", "langue", "lang", "sprache"),
    Field.ADDRESS: ("address", "adres", "adresse", "postadres", "adresse postale"),
    Field.STREET: ("street", "straat", "rue", "straatnaam", "straße"),
    Field.HOUSE_NUMBER: ("house number", "huisnummer", "nummer", "nr", "numéro", "n°", "number",
                         "hausnummer"),
    Field.BOX: ("box", "bus", "boîte", "bte"),
    Field.POSTCODE: ("postcode", "code postal", "cp", "zip", "postal code", "postleitzahl", "plz"),
    Field.CITY: ("city", "gemeente", "woonplaats", "plaats", "stad", "commune", "localité", "ville",
                 "town", "municipality", "ort"),
    Field.LAT: ("lat", "latitude", "breedtegraad"),
    Field.LON: ("lon", "lng", "long", "longitude", "lengtegraad"),
    Field.CHANNELS: ("channels", "kanalen", "canaux", "kanaal", "canal", "channel"),
}


def fold(text: str) -> str:
    """Accents off, case folded, only letters and digits kept: ``Prénom `` → ``prenom``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())


_LOOKUP: dict[str, Field] = {fold(name): field for field, names in NAMES.items() for name in names}


def field_for(header: str) -> Field | None:
    """The field a header cell names, or None."""
    key = fold(header)
    found = _LOOKUP.get(key)
    if found is not None:
        return found
    base = key.rstrip("0123456789")
    found = _LOOKUP.get(base) if base != key else None
    return found if found in REPEATABLE else None


def letter(index: int) -> str:
    """The spreadsheet letter of a 0-based column index: 0 → A, 26 → AA."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


@dataclass(frozen=True, slots=True)
class Column:
    index: int  # 0-based
    header: str  # as written in the file
    field: Field | None  # None: an empty header cell, ignored

    def __str__(self) -> str:
        return f"{self.header!r} (column {letter(self.index)})"


def accepted_names() -> str:
    return "; ".join(f"{field.value}: {', '.join(names)}" for field, names in NAMES.items())


def map_header(cells: Sequence[str]) -> tuple[tuple[Column, ...], list[str], list[str]]:
    """``(columns, errors, warnings)`` for a header row. Errors name the columns to fix."""
    columns = [Column(i, cell.strip(), field_for(cell) if cell.strip() else None)
               for i, cell in enumerate(cells)]
    columns = _family_name(columns)
    errors: list[str] = []
    unknown = [c for c in columns if c.field is None and c.header]
    if unknown:
        if any(_looks_like_data(c.header) for c in columns):
            return (), ["the first row looks like data, not a header: add a header row such as "
                        "'name;gsm;email;language'"], []
        errors.append(f"unknown column{'s' if len(unknown) > 1 else ''} "
                      f"{', '.join(str(c) for c in unknown)}: rename or remove "
                      f"{'them' if len(unknown) > 1 else 'it'}. Accepted names: {accepted_names()}")
    seen: dict[Field, Column] = {}
    for column in columns:
        if column.field is None or column.field in REPEATABLE:
            continue
        if column.field in seen:
            errors.append(f"columns {seen[column.field]} and {column} both give the {column.field.value}")
        seen[column.field] = column
    errors.extend(_missing(columns))
    warnings = [f"column {letter(c.index)} has no header: ignored" for c in columns
                if c.field is None and not c.header]
    return tuple(columns), errors, warnings


def _family_name(columns: list[Column]) -> list[Column]:
    fields = {c.field for c in columns}
    if Field.FIRST_NAME in fields and Field.NAME in fields and Field.LAST_NAME not in fields:
        return [Column(c.index, c.header, Field.LAST_NAME) if c.field is Field.NAME else c
                for c in columns]
    return columns


def _missing(columns: Sequence[Column]) -> list[str]:
    fields = {c.field for c in columns}
    errors = []
    if not fields & {Field.NAME, Field.FIRST_NAME, Field.LAST_NAME}:
        errors.append("no name column (name, naam, nom, or first name and last name)")
    if not fields & {*PHONE_FIELDS, Field.EMAIL}:
        errors.append("no phone or e-mail column (gsm, telefoon, téléphone, phone, email, ...)")
    if (Field.LAT in fields) != (Field.LON in fields):
        errors.append("a lat column needs a lon column, and the other way round")
    return errors


def _looks_like_data(cell: str) -> bool:
    return "@" in cell or sum(c.isdigit() for c in cell) >= 6
