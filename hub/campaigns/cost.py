"""What a delivery costs, in euro excluding VAT: pure, from the ``[cost]`` settings.

SMS are billed per part (a part is 160/153 GSM-7 characters or 70/67 UCS-2, see
``hub.outputs.sms_text``), calls per started minute, both 0.055 EUR by default (BE-Alert's
figures); e-mail and CAP are free. A number whose E.164 form starts with one of the
configured prefixes pays that prefix's price (the longest matching prefix wins), so that
foreign numbers may cost more. Amounts are ``Decimal``: a campaign of 100,000 SMS adds up
exactly.

    prices = Prices.from_settings(settings.cost)
    prices.sms("+33612345678", parts=2)          # Decimal('0.16') with "+33" = 0.08
    prices.voice("+3225112233", seconds=61)      # two started minutes
    prices.delivery("email", "an@example.be")    # Decimal('0')
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from hub.config import CostSettings
from hub.errors import ConfigError

DEFAULT_EUR = Decimal("0.055")
_PREFIX = re.compile(r"\+[0-9]{1,6}")


def _decimal(value: float | str | Decimal) -> Decimal:
    # via str: 0.055 as a float is 0.05499999...; its shortest repr is what the settings say
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class Prices:
    """Unit prices: per SMS part and per started call minute, with per-prefix exceptions."""

    sms_eur: Decimal = DEFAULT_EUR
    voice_minute_eur: Decimal = DEFAULT_EUR
    sms_prefixes: Mapping[str, Decimal] = field(default_factory=dict)
    voice_prefixes: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, cost: CostSettings) -> Prices:
        """The prices of the ``[cost]`` settings; a prefix that is not ``+`` and 1-6 digits, or
        a negative price, is a ``ConfigError`` naming it."""
        tables: list[dict[str, Decimal]] = []
        for name, table in (("sms_prefix_eur", cost.sms_prefix_eur),
                            ("voice_prefix_eur", cost.voice_prefix_eur)):
            checked: dict[str, Decimal] = {}
            for prefix, price in table.items():
                if not _PREFIX.fullmatch(prefix):
                    raise ConfigError(f"cost.{name}: {prefix!r} is not a country prefix (+ and 1-6 digits)")
                checked[prefix] = _non_negative(f"cost.{name}.{prefix}", price)
            tables.append(checked)
        return cls(_non_negative("cost.sms_eur", cost.sms_eur),
                   _non_negative("cost.voice_minute_eur", cost.voice_minute_eur), tables[0], tables[1])

    def sms_part(self, number: str | None) -> Decimal:
        """The price of one SMS part to ``number`` (E.164; None: an erased number)."""
        return _lookup(self.sms_prefixes, number, self.sms_eur)

    def voice_minute(self, number: str | None) -> Decimal:
        return _lookup(self.voice_prefixes, number, self.voice_minute_eur)

    def sms(self, number: str | None, parts: int) -> Decimal:
        return self.sms_part(number) * max(0, parts)

    def voice(self, number: str | None, seconds: float) -> Decimal:
        """A call is billed per started minute; an unanswered call (0 s) costs nothing."""
        return self.voice_minute(number) * started_minutes(seconds)

    def delivery(self, channel: str, address: str | None, *, parts: int = 0, seconds: float = 0.0) -> Decimal:
        """What one delivery on ``channel`` ("sms", "voice", "email") costs."""
        if channel == "sms":
            return self.sms(address, parts)
        if channel == "voice":
            return self.voice(address, seconds)
        return Decimal(0)


def started_minutes(seconds: float) -> int:
    return max(0, math.ceil(seconds / 60)) if seconds > 0 else 0


def _non_negative(name: str, value: float | Decimal) -> Decimal:
    amount = _decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{name} = {value!r}: a price must be a number of euro, 0 or more")
    return amount


def _lookup(table: Mapping[str, Decimal], number: str | None, default: Decimal) -> Decimal:
    if not table or not number:
        return default
    for size in range(min(7, len(number)), 1, -1):  # the longest prefix first: "+3247" before "+32"
        price = table.get(number[:size])
        if price is not None:
            return price
    return default


def euro(amount: Decimal) -> float:
    """An amount as the JSON and the store carry it: a float rounded to 1/1,000,000 EUR."""
    return float(round(amount, 6))
