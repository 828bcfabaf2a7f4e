"""Export: what a Belgian spreadsheet opens right, and what the import reads back."""

from __future__ import annotations

import codecs
import dataclasses
import random

from hub.domain import Channel, Language, MemberData, Phone, PhoneKind
from hub.members import read_members_csv, write_members_csv

MEMBERS = [
    MemberData(name="Hélène Lefèvre", language=Language.FR,
               phones=(Phone("+32477123456", PhoneKind.MOBILE), Phone("+3225112233", PhoneKind.FIXED),
                       Phone("+33612345678", PhoneKind.MOBILE)),
               emails=("Helene@skynet.be",), external_id="00123",
               address='Rue "Haute" 5; bte 2, 1000 Bruxelles', lat=50.8466, lon=4.3528,
               channels=(Channel.SMS, Channel.EMAIL)),
    MemberData(name="=HYPERLINK(\"x\")", language=Language.NL, emails=("a@x.be", "b@x.be"),
               external_id="-1"),
    MemberData(name="Jürgen Müller", language=Language.DE, phones=(Phone("+3280012345", PhoneKind.OTHER),)),
]


def test_format() -> None:
    data = write_members_csv(MEMBERS)
    assert data.startswith(codecs.BOM_UTF8)
    lines = data[3:].decode("utf-8").split("\r\n")
    assert lines[0] == ("external id;name;phone;phone 2;phone 3;email;email 2;language;address;"
                        "lat;lon;channels")
    assert lines[1].startswith("00123;Hélène Lefèvre;0477 12 34 56;02 511 22 33;00 33 6 12 34 56 78;")
    assert lines[2].startswith("'-1;\"'=HYPERLINK(\"\"x\"\")\";")  # no formula when opened
    assert "+32" not in data.decode("utf-8-sig")


def test_round_trip() -> None:
    imported = read_members_csv(write_members_csv(MEMBERS))
    assert imported.errors == () and imported.delimiter == ";"
    assert [r.reasons for r in imported.rows] == [(), (), ()]
    assert [r.member for r in imported.rows] == MEMBERS


def test_round_trip_generated() -> None:
    rng = random.Random(3)
    members = []
    for i in range(300):
        phones = tuple(Phone(f"+3247{rng.randrange(10**7):07d}", PhoneKind.MOBILE)
                       for _ in range(rng.randrange(3)))
        emails = (f"m{i}@x.be",) if not phones or rng.random() < 0.5 else ()
        members.append(MemberData(
            name=rng.choice(("Jan", "Ïngrid", "D'Hondt; Els", 'Piet "P"')) + f" {i}",
            language=rng.choice(list(Language)), phones=phones, emails=emails,
            external_id=rng.choice((None, f"X{i}")),
            channels=tuple(rng.sample(list(Channel), rng.randrange(4)))))
        if rng.random() < 0.5:
            members[-1] = dataclasses.replace(members[-1], lat=rng.uniform(49.5, 51.5),
                                              lon=rng.uniform(2.5, 6.4))
    imported = read_members_csv(write_members_csv(members))
    assert [r.member for r in imported.rows] == members


def test_empty() -> None:
    imported = read_members_csv(write_members_csv([]))
    assert imported.errors == ("the file has a header but no members",)
