"""Members → CSV bytes that ``read_members_csv`` reads back to the same ``MemberData``.

Written for the spreadsheets Belgian coordinators open it with:

- ``;`` between fields: Excel in nl-BE and fr-BE uses ``;`` as its list separator, so a
  double-click opens the file in columns (a ``,`` file lands in one column there);
- UTF-8 with a BOM, which is how Excel knows it is UTF-8 (accents intact), CRLF line ends;
  no ``sep=;`` line, since Excel then ignores the BOM;
- the English header names of ``Field``: ``external id;name;phone;phone 2;email;...`` with as
  many ``phone``/``email`` columns as the member with the most has;
- numbers as a Belgian dials them (``0477 12 34 56``, ``00 33 6 12 34 56 78``): Excel keeps
  those as text, whereas ``+32477123456`` would become a number, and a leading ``+`` a formula;
- a text cell starting with ``= + - @`` gets a leading ``'`` (against formula injection when
  the file is opened); the import removes it again;
- lat/lon with a ``.`` (Excel keeps them as text, so a save does not round them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from hub.domain import MemberData
from hub.members.columns import Field
from hub.members.phones import display

DELIMITER = ";"
_FORMULA_START = ("=", "+", "-", "@")


def write_members_csv(members: Iterable[MemberData]) -> bytes:
    members = list(members)
    phones = max((len(m.phones) for m in members), default=1) or 1
    emails = max((len(m.emails) for m in members), default=1) or 1
    header = [Field.EXTERNAL_ID.value, Field.NAME.value, *_numbered(Field.PHONE, phones),
              *_numbered(Field.EMAIL, emails), Field.LANGUAGE.value, Field.ADDRESS.value,
              Field.LAT.value, Field.LON.value, Field.CHANNELS.value]
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=DELIMITER, lineterminator="\r\n")
    writer.writerow(header)
    for m in members:
        writer.writerow([
            _text(m.external_id or ""), _text(m.name),
            *_padded([display(p.number) for p in m.phones], phones),
            *_padded([_text(e) for e in m.emails], emails),
            m.language.value, _text(m.address or ""),
            "" if m.lat is None else repr(m.lat), "" if m.lon is None else repr(m.lon),
            ",".join(c.value for c in m.channels),
        ])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def _numbered(field: Field, count: int) -> list[str]:
    return [field.value] + [f"{field.value} {i}" for i in range(2, count + 1)]


def _padded(values: list[str], count: int) -> list[str]:
    return values + [""] * (count - len(values))


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value
