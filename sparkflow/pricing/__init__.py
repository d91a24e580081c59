"""The list prices ``sparkflow plan`` estimates a run's cost with: one JSON table per target, as data.

Each price names its unit, the provider's pricing page (``source``) and the page its figure was read on
(``confirmed_by``), with the date the table was checked. A price that could not be confirmed has ``usd: null``
and a ``note`` saying so: the estimate then shows the usage and leaves its cost out, rather than guess it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Price:
    """What ``per`` units of a usage cost (``usd`` None: not confirmed)."""

    key: str
    usd: float | None
    per: int
    unit: str
    source: str
    confirmed_by: str | None
    note: str | None

    def cost(self, quantity: float) -> float | None:
        """The cost of ``quantity`` units, or None when the price is not confirmed."""
        return None if self.usd is None else quantity / self.per * self.usd


@dataclass(frozen=True)
class PriceTable:
    """One target's prices, in one region, checked on one date."""

    target: str
    region: str
    checked: str
    basis: str
    prices: dict[str, Price]

    def price(self, key: str) -> Price:
        return self.prices[key]


@cache
def price_table(target: str) -> PriceTable:
    """The price table of ``target`` (``aws`` or ``gcp``), read from ``sparkflow/pricing/<target>.json``."""
    document = json.loads(resources.files(__package__).joinpath(f"{target}.json").read_text(encoding="utf-8"))
    prices = {
        key: Price(
            key=key,
            usd=item["usd"],
            per=int(item["per"]),
            unit=item["unit"],
            source=item["source"],
            confirmed_by=item.get("confirmed_by"),
            note=item.get("note"),
        )
        for key, item in document["prices"].items()
    }
    return PriceTable(document["target"], document["region"], document["checked"], document["basis"], prices)
