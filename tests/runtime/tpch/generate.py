"""A small TPC-H-like database as Parquet tables, the same for the same seed: eight tables with TPC-H's columns and
types (keys INT, money DECIMAL(15, 2), dates DATE), a few thousand line items, for tests of engine parity."""

from __future__ import annotations

import datetime
import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MONEY = pa.decimal128(15, 2)
REGIONS = ("AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST")
SEGMENTS = ("AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY")
PRIORITIES = ("1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW")
SHIP_MODES = ("AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK")
TYPES = (
    "PROMO BRUSHED TIN",
    "STANDARD POLISHED BRASS",
    "ECONOMY ANODIZED STEEL",
    "PROMO PLATED COPPER",
    "LARGE BURNISHED NICKEL",
)
CONTAINERS = ("SM BOX", "MED BAG", "LG CASE", "JUMBO PKG", "WRAP DRUM")


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def write_tables(folder: Path, seed: int = 7) -> dict[str, Path]:
    """Write every table as ``folder/<table>/part-0.parquet``; return table name -> its folder."""
    rng = random.Random(seed)
    start = datetime.date(1992, 1, 1)
    tables: dict[str, pa.Table] = {}
    tables["region"] = pa.table({"r_regionkey": pa.array(range(5), pa.int32()), "r_name": pa.array(REGIONS)})
    tables["nation"] = pa.table(
        {
            "n_nationkey": pa.array(range(25), pa.int32()),
            "n_name": pa.array([f"NATION{key:02d}" for key in range(25)]),
            "n_regionkey": pa.array([key % 5 for key in range(25)], pa.int32()),
        }
    )
    suppliers = 20
    tables["supplier"] = pa.table(
        {
            "s_suppkey": pa.array(range(1, suppliers + 1), pa.int32()),
            "s_name": pa.array([f"Supplier#{key:09d}" for key in range(1, suppliers + 1)]),
            "s_nationkey": pa.array([rng.randrange(25) for _ in range(suppliers)], pa.int32()),
            "s_acctbal": pa.array([_money(rng, -999, 9999) for _ in range(suppliers)], MONEY),
            "s_comment": pa.array(
                ["Customer Complaints noted" if key % 7 == 0 else "carefully final" for key in range(suppliers)]
            ),
        }
    )
    customers = 150
    tables["customer"] = pa.table(
        {
            "c_custkey": pa.array(range(1, customers + 1), pa.int32()),
            "c_name": pa.array([f"Customer#{key:09d}" for key in range(1, customers + 1)]),
            "c_nationkey": pa.array([rng.randrange(25) for _ in range(customers)], pa.int32()),
            "c_acctbal": pa.array([_money(rng, -999, 9999) for _ in range(customers)], MONEY),
            "c_mktsegment": pa.array([rng.choice(SEGMENTS) for _ in range(customers)]),
            "c_phone": pa.array([f"{10 + rng.randrange(25)}-{rng.randrange(1000):03d}" for _ in range(customers)]),
        }
    )
    parts = 200
    tables["part"] = pa.table(
        {
            "p_partkey": pa.array(range(1, parts + 1), pa.int32()),
            "p_name": pa.array([f"part {key} {rng.choice(('green', 'forest', 'ivory'))}" for key in range(parts)]),
            "p_brand": pa.array([f"Brand#{rng.randint(1, 5)}{rng.randint(1, 5)}" for _ in range(parts)]),
            "p_type": pa.array([rng.choice(TYPES) for _ in range(parts)]),
            "p_size": pa.array([rng.randint(1, 50) for _ in range(parts)], pa.int32()),
            "p_container": pa.array([rng.choice(CONTAINERS) for _ in range(parts)]),
            "p_retailprice": pa.array([_money(rng, 900, 2000) for _ in range(parts)], MONEY),
        }
    )
    partsupp = [(part, 1 + (part + step * 5) % suppliers) for part in range(1, parts + 1) for step in range(4)]
    tables["partsupp"] = pa.table(
        {
            "ps_partkey": pa.array([part for part, _ in partsupp], pa.int32()),
            "ps_suppkey": pa.array([supp for _, supp in partsupp], pa.int32()),
            "ps_availqty": pa.array([rng.randint(1, 9999) for _ in partsupp], pa.int32()),
            "ps_supplycost": pa.array([_money(rng, 1, 1000) for _ in partsupp], MONEY),
        }
    )
    orders, items = [], []
    for key in range(1, 1501):
        day = start + datetime.timedelta(days=rng.randrange(2400))
        lines = []
        for number in range(1, rng.randint(1, 7) + 1):
            part = rng.randint(1, parts)
            quantity = Decimal(rng.randint(1, 50))
            price = quantity * _money(rng, 9, 21)
            ship = day + datetime.timedelta(days=rng.randint(1, 121))
            commit = day + datetime.timedelta(days=rng.randint(30, 90))
            receipt = ship + datetime.timedelta(days=rng.randint(1, 30))
            lines.append(
                (
                    key,
                    part,
                    1 + (part + rng.randrange(4) * 5) % suppliers,
                    number,
                    quantity,
                    price,
                    Decimal(rng.randint(0, 10)) / 100,
                    Decimal(rng.randint(0, 8)) / 100,
                    "R"
                    if receipt <= datetime.date(1995, 6, 17) and rng.random() < 0.5
                    else ("A" if rng.random() < 0.5 else "N"),
                    "F" if ship <= datetime.date(1995, 6, 17) else "O",
                    ship,
                    commit,
                    receipt,
                    rng.choice(SHIP_MODES),
                )
            )
        items += lines
        total = sum((line[5] for line in lines), Decimal(0))
        status = (
            "F" if all(line[9] == "F" for line in lines) else ("O" if all(line[9] == "O" for line in lines) else "P")
        )
        customer = rng.randint(1, customers)
        if customer % 3 == 0:  # a third of the customers never order (TPC-H's Q13 and Q22 count them)
            customer += 1
        orders.append((key, customer, status, total, day, rng.choice(PRIORITIES)))
    columns = list(zip(*orders, strict=True))
    tables["orders"] = pa.table(
        {
            "o_orderkey": pa.array(columns[0], pa.int32()),
            "o_custkey": pa.array(columns[1], pa.int32()),
            "o_orderstatus": pa.array(columns[2]),
            "o_totalprice": pa.array(columns[3], MONEY),
            "o_orderdate": pa.array(columns[4], pa.date32()),
            "o_orderpriority": pa.array(columns[5]),
        }
    )
    columns = list(zip(*items, strict=True))
    names = (
        "l_orderkey",
        "l_partkey",
        "l_suppkey",
        "l_linenumber",
        "l_quantity",
        "l_extendedprice",
        "l_discount",
        "l_tax",
        "l_returnflag",
        "l_linestatus",
        "l_shipdate",
        "l_commitdate",
        "l_receiptdate",
        "l_shipmode",
    )
    kinds = (pa.int32(),) * 4 + (MONEY,) * 4 + (pa.string(),) * 2 + (pa.date32(),) * 3 + (pa.string(),)
    tables["lineitem"] = pa.table(
        {name: pa.array(values, kind) for name, values, kind in zip(names, columns, kinds, strict=True)}
    )
    found: dict[str, Path] = {}
    for name, table in tables.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / name / "part-0.parquet")
        found[name] = folder / name
    return found
