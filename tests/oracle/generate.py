"""Cases of the differential oracle: a seed becomes data files and a ``pipeline.py`` a data engineer might write.

:func:`generate` is deterministic (everything is drawn from ``random.Random(seed)``). A case has one to three
sources (text, CSV with a header and quoted fields, JSON lines, Parquet written with pyarrow; with or without
``schema=``), and a chain of one to three stages whose declarations are right by construction:

* ``partition="rows"`` only for row-wise work: filters, ``withColumn`` / ``select`` arithmetic, word splitting,
  parsing log lines, and lookups of a split first input against a side input read whole;
* ``partition_by=`` only for work that needs the rows of one key together: a group-by of that key (possibly with
  another column), a join of two or three inputs on it, a window partitioned by it, a distinct that keeps it; a
  group-by whose aggregates all merge from partial results (counts, sums other than decimal ones, min, max)
  declares ``combine=`` a merge function beside it;
* whole stages for the rest: ``orderBy`` + ``limit`` (over a total order, so the rows kept are determined), a
  global aggregate, a distinct over everything, a group-by of another column.

Data stays small (tens to a few hundred rows, a few KB a file); keys are skewed (Zipf-like: a few hot keys hold
most rows) and may be null; values may be null. Each column keeps one type through its file (sparkflow infers the
schema of a source without ``schema=`` from its first 4 MiB, documented).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

# Column kinds and their Spark DDL types.
DDL = {
    "int": "INT",
    "long": "BIGINT",
    "float": "DOUBLE",
    "str": "STRING",
    "date": "DATE",
    "ts": "TIMESTAMP",
    "bool": "BOOLEAN",
    "dec": "DECIMAL(10,2)",
}
NUMERIC = ("int", "long", "float", "dec")
FORMATS = ("text", "csv", "json", "parquet")
KEY_NAMES = ("k", "customer", "user_id")
# Words of the text sources; a few carry an apostrophe (the word pattern keeps them).
_WORDS = (
    "the of and to a in is it you that he was for on are with as his they be at one have this from or had by "
    "word but what some we can out other were all there when up use your how said an each she which do their "
    "time if will way about many then them would write like so these her long make thing see him two has look "
    "don't it's isn't river stone spark duck"
)
VOCABULARY = tuple(_WORDS.split())
_NOTE_PARTS = ("red", "blue", "late", "gift", "rush", "fragile", "paid", "bulk", "promo", "café", "return", "test")
_STATUSES = ("new", "paid", "shipped", "returned")
_COUNTRIES = ("DE", "FR", "US", "JP", "BR")
_KINDS = ("click", "view", "buy", "refund")
_ACTIONS = ("login", "buy", "view", "logout")


@dataclass(frozen=True)
class Col:
    """A column of a frame as the generator knows it.

    Attributes:
        kind: one of :data:`DDL`'s keys.
        exact: False for floats computed by aggregation (sums and averages depend on the order of addition, so
            two correct engines may differ in the last bits): never sorted on, ranked on or deduplicated on.
        group: few distinct values: a sensible column to group or partition by.
        low, high: the range of a numeric column's values (for thresholds of filters).
    """

    name: str
    kind: str
    exact: bool = True
    group: bool = False
    low: float = 0.0
    high: float = 0.0


@dataclass(frozen=True)
class Frame:
    """What flows out of a source or a stage: its columns, whether it has the case's key column, and which
    columns identify a row (None when rows may repeat)."""

    cols: tuple[Col, ...]
    has_key: bool
    unique: tuple[str, ...] | None

    def col(self, name: str) -> Col:
        return next(col for col in self.cols if col.name == name)

    def names(self) -> list[str]:
        return [col.name for col in self.cols]

    def of(self, *kinds: str, exact: bool = True) -> list[Col]:
        return [col for col in self.cols if col.kind in kinds and (col.exact or not exact)]


@dataclass(frozen=True)
class SourceDecl:
    """A source: its Python variable (= its name), the ``sf.source(...)`` call, and its frame."""

    name: str
    call: str
    frame: Frame
    fmt: str
    key_unique: bool = False  # every non-null key at most once (a dimension table)


@dataclass
class StageCode:
    """One ``@sf.stage`` function as source text."""

    name: str
    decorator: str
    params: list[tuple[str, str]]  # (parameter, the pipeline variable passed to it)
    body: list[str]
    doc: str
    frame: Frame
    partition: str  # rows, key, whole
    window: bool = False
    merge: list[str] = field(default_factory=list)  # a module-level function its combine= names, written before it

    def text(self) -> str:
        signature = ", ".join(f"{param}: DataFrame" for param, _ in self.params)
        lines = [*self.merge, self.decorator, f"def {self.name}({signature}) -> DataFrame:", f'    """{self.doc}"""']
        lines += [f"    {line}" if line else "" for line in self.body]
        return "\n".join(lines)


@dataclass(frozen=True)
class Case:
    """A generated case on disk.

    Attributes:
        pipeline_file: the ``pipeline.py`` to load (with :func:`sparkflow.loading.load_pipeline`).
        source_text: its text.
        outputs: the node ids the pipeline returns.
        tags: what the case covers (formats, schema or not, operations), for coverage checks and reports.
    """

    seed: int
    folder: Path
    pipeline_file: Path
    source_text: str
    outputs: tuple[str, ...]
    tags: frozenset[str]
    data_files: tuple[Path, ...] = ()
    source_bytes: tuple[tuple[str, str, int], ...] = ()  # each source's name, format and bytes on disk

    def largest_source(self) -> int:
        """The bytes of the largest text, CSV or JSON-lines source (these split by bytes; Parquet by row groups),
        else of the largest source."""
        lines = [size for _, fmt, size in self.source_bytes if fmt != "parquet"]
        return max(lines or [size for _, _, size in self.source_bytes] or [0])

    def describe(self) -> str:
        return f"seed {self.seed}: " + ", ".join(sorted(self.tags))


@dataclass
class _Builder:
    rng: random.Random
    folder: Path
    seed: int
    key: str = "k"
    key_kind: str = "str"
    keys: list[Any] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    null_keys: float = 0.0
    tags: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)
    sizes: dict[str, tuple[str, int]] = field(default_factory=dict)
    stage_names: set[str] = field(default_factory=set)
    uses_window: bool = False

    # --- keys and values -------------------------------------------------------------------------------------

    def setup_keys(self) -> None:
        rng = self.rng
        self.key = rng.choice(KEY_NAMES)
        self.key_kind = rng.choice(("str", "str", "int", "long"))
        count = rng.randint(4, 30)
        if self.key_kind == "str":
            self.keys = [f"c{number:03d}" for number in rng.sample(range(1, 999), count)]
        else:
            self.keys = rng.sample(range(1, 5000), count)
        skew = rng.choice((0.0, 0.7, 1.2, 1.6))
        self.weights = [1.0 / (rank + 1) ** skew for rank in range(count)]
        self.null_keys = rng.choice((0.0, 0.0, 0.05, 0.15))
        self.tags.add("skewed keys" if skew >= 1.2 else "uniform keys" if skew == 0 else "mild skew")
        if self.null_keys:
            self.tags.add("null keys")
        self.tags.add(f"{self.key_kind} key")

    def draw_key(self, null_rate: float | None = None) -> Any:
        rate = self.null_keys if null_rate is None else null_rate
        if rate and self.rng.random() < rate:
            return None
        return self.rng.choices(self.keys, self.weights)[0]

    def maybe(self, value: Any, rate: float) -> Any:
        return None if self.rng.random() < rate else value

    def money(self, low: float = 0.0, high: float = 500.0) -> float:
        return round(self.rng.uniform(low, high), 2)

    def note(self, quotes: bool) -> str:
        rng = self.rng
        parts = rng.sample(_NOTE_PARTS, rng.randint(1, 3))
        text = rng.choice((" ", ", ", "; ")).join(parts)
        if quotes and rng.random() < 0.5:
            text = f'say "{text}"' if rng.random() < 0.5 else f'{text}, "{rng.choice(_NOTE_PARTS)}" too'
        return text

    def day(self) -> dt.date:
        return dt.date(2024, 1, 1) + dt.timedelta(days=self.rng.randint(0, 180))

    def moment(self) -> dt.datetime:
        return dt.datetime(2024, 1, 1) + dt.timedelta(seconds=self.rng.randint(0, 180 * 86400))

    # --- sources -----------------------------------------------------------------------------------------------

    def table_source(self, slot: str, fmt: str, schema: bool) -> SourceDecl:
        """A tabular source: ``orders`` (the main table), ``customers`` (a dimension) or ``events``."""
        rng = self.rng
        key_col = Col(self.key, self.key_kind)
        quotes = fmt == "csv" and rng.random() < 0.5
        rows: list[dict[str, Any]] = []
        cols: list[Col]
        # Schemaless JSON: dates stay strings in Spark but DuckDB infers DATE (docs/engines.md): no dates there.
        dates = fmt == "parquet" or schema or (fmt == "csv" and rng.random() < 0.5)
        if slot == "orders":
            count = rng.randint(15, 60)
            nulls = rng.choice((0.0, 0.1, 0.25))
            if nulls:
                self.tags.add("null values")
            # Money as DECIMAL where a schema or Parquet says so (inference gives DOUBLE).
            money = "dec" if (schema or fmt == "parquet") and rng.random() < 0.3 else "float"
            if money == "dec":
                self.tags.add("decimal")
            cols = [
                Col("order_id", "int"),
                key_col,
                Col("amount", money, low=0, high=500),
                Col("qty", "int", high=20),
            ]
            cols += [Col("note", "str"), Col("status", "str", group=True)]
            if rng.random() < 0.4:
                cols.append(Col("gift", "bool"))
                self.tags.add("boolean")
            if dates:
                cols.append(Col("day", "date"))
            first = rng.randint(1, 1000)
            for number in range(count):
                row = {
                    "order_id": first + number,
                    self.key: self.draw_key(),
                    "amount": self.maybe(self.money() if money == "float" else Decimal(f"{self.money():.2f}"), nulls),
                    "gift": self.maybe(rng.random() < 0.3, nulls),
                    "qty": self.maybe(rng.randint(0, 20), nulls),
                    "note": self.maybe(self.note(quotes), nulls),
                    "status": self.maybe(rng.choice(_STATUSES), nulls / 2),
                    "day": self.day(),
                }
                rows.append(row)
            frame = Frame(tuple(cols), True, ("order_id",))
            key_unique = False
        elif slot == "customers":
            present = rng.sample(self.keys, max(1, int(len(self.keys) * rng.uniform(0.5, 1.0))))
            extra = [f"x{n:03d}" if self.key_kind == "str" else 9000 + n for n in range(rng.randint(0, 3))]
            duplicates = rng.random() < 0.25
            keyed = present + extra + (rng.sample(present, min(len(present), 3)) if duplicates else [])
            if self.null_keys and rng.random() < 0.5:
                keyed.append(None)
            rng.shuffle(keyed)
            cols = [key_col, Col("name", "str"), Col("score", "float", low=0, high=100), Col("tier", "int", group=True)]
            cols.append(Col("country", "str", group=True))
            for number, key in enumerate(keyed):
                rows.append(
                    {
                        self.key: key,
                        "name": f"{rng.choice(('Ann', 'Bo', 'Cy', 'Di', 'Ed'))} {rng.choice('KLMNOP')}{number:03d}",
                        "score": self.maybe(round(rng.uniform(0, 100), 3), 0.1),
                        "tier": self.maybe(rng.randint(1, 4), 0.1),
                        "country": self.maybe(rng.choice(_COUNTRIES), 0.1),
                    }
                )
            frame = Frame(tuple(cols), True, ("name",))
            key_unique = not duplicates
        else:
            count = rng.randint(10, 40)
            moments = fmt == "parquet" or schema
            cols = [Col("event_id", "long"), key_col, Col("kind", "str", group=True)]
            cols.append(Col("weight", "float", low=0, high=10))
            if moments:
                cols.append(Col("at", "ts"))
            for number in range(count):
                rows.append(
                    {
                        "event_id": 10_000_000_000 + number * 7,
                        self.key: self.draw_key(),
                        "kind": rng.choice(_KINDS),
                        "weight": self.maybe(round(rng.uniform(0, 10), 1), 0.15),
                        "at": self.moment(),
                    }
                )
            frame = Frame(tuple(cols), True, ("event_id",))
            key_unique = False
        return self.write_table(slot, cols, rows, fmt, schema, frame, key_unique)

    def write_table(
        self, name: str, cols: list[Col], rows: list[dict[str, Any]], fmt: str, schema: bool, frame: Frame, unique: bool
    ) -> SourceDecl:
        rng = self.rng
        self.tags.add(fmt)
        if fmt != "parquet":
            self.tags.add(f"{fmt} {'with schema' if schema else 'inferred'}")
        if fmt == "json" and schema and rng.random() < 0.3:  # a JSON schema names fields: any order
            cols = rng.sample(cols, len(cols))
            frame = replace(frame, cols=tuple(cols))
        elif fmt == "json" and not schema:  # Spark (and sparkflow on DuckDB) put inferred JSON fields in name order
            frame = replace(frame, cols=tuple(sorted(cols, key=lambda col: col.name)))
        ddl = ", ".join(f"{col.name} {DDL[col.kind]}" for col in cols)
        pieces = rng.choice((1, 1, 1, 2, 3))
        size = rng.choice((None, None, None, '"20GB"'))
        options = [f'"{name}"']
        cut = sorted(rng.sample(range(1, len(rows)), pieces - 1)) if pieces > 1 and len(rows) > pieces else []
        groups = [rows[start:end] for start, end in zip([0, *cut], [*cut, len(rows)], strict=True)]
        if len(groups) > 1 or (fmt == "parquet" and rng.random() < 0.5):
            folder = self.folder / name
            folder.mkdir()
            options += [f'"{name}/"', f'format="{fmt}"']
            if rng.random() < 0.15:  # a file without records (a quiet day's export) among the others
                groups.insert(rng.randint(0, len(groups)), [])
                self.tags.add("empty file")
            parts = [folder / f"part-{index}.{_extension(fmt)}" for index in range(len(groups))]
        else:
            options.append(f'"{name}.{_extension(fmt)}"')
            parts = [self.folder / f"{name}.{_extension(fmt)}"]
        if schema:
            options.append(f'schema="{ddl}"')
        if size:
            options.append(f"size={size}")
        if len(parts) > 1:
            self.tags.add("folder source")
        newline = "\r\n" if rng.random() < 0.2 else "\n"  # the source's line ending
        for path, chunk in zip(parts, groups, strict=True):
            if fmt == "csv":
                self.write_csv(path, cols, chunk, self.newline(newline))
            elif fmt == "json":
                self.write_json(path, cols, chunk)
            else:
                self.write_parquet(path, cols, chunk)
            self.files.append(path)
        call = f"{name} = sf.source({', '.join(options)})"
        self.sizes[name] = (fmt, sum(path.stat().st_size for path in parts))
        return SourceDecl(name, call, frame, fmt, unique)

    def write_csv(self, path: Path, cols: list[Col], rows: list[dict[str, Any]], newline: str) -> None:
        rng = self.rng
        quote_all = rng.random() < 0.2
        lines = [",".join(col.name for col in cols)]
        for row in rows:
            fields = []
            for col in cols:
                value = row.get(col.name)
                if value is None:
                    fields.append("")
                    continue
                text = _text(value, col.kind)
                if col.kind == "str" and (quote_all or any(ch in text for ch in ',"') or rng.random() < 0.1):
                    if '"' in text:
                        self.tags.add("csv doubled quotes")
                    if "," in text:
                        self.tags.add("csv quoted comma")
                    text = '"' + text.replace('"', '""') + '"'
                fields.append(text)
            lines.append(",".join(fields))
        ending = newline if rng.random() < 0.85 else ""
        path.write_bytes((newline.join(lines) + ending).encode("utf-8"))

    def write_json(self, path: Path, cols: list[Col], rows: list[dict[str, Any]]) -> None:
        rng = self.rng
        lines = []
        for row in rows:
            record: dict[str, Any] = {}
            for col in cols:
                value = row.get(col.name)
                if value is None and rng.random() < 0.5:
                    continue  # a missing field is null too
                record[col.name] = None if value is None else _json_value(value, col.kind)
            lines.append(json.dumps(record))
        path.write_text("\n".join(lines) + ("\n" if rng.random() < 0.9 else ""), encoding="utf-8")

    def write_parquet(self, path: Path, cols: list[Col], rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {
            "int": pa.int32(),
            "long": pa.int64(),
            "float": pa.float64(),
            "str": pa.string(),
            "date": pa.date32(),
            "ts": pa.timestamp("us"),
            "bool": pa.bool_(),
            "dec": pa.decimal128(10, 2),
        }
        table = pa.table({col.name: pa.array([row.get(col.name) for row in rows], types[col.kind]) for col in cols})
        pq.write_table(table, path, row_group_size=self.rng.choice((8, 16, 40, 1000)))

    def text_source(self, kind: str) -> SourceDecl:
        """``book`` (lines of words), ``logs`` (one event a line) or ``stop`` (one stop word a line)."""
        rng = self.rng
        self.tags.add("text")
        lines: list[str] = []
        weights = [1.0 / (rank + 1) for rank in range(len(VOCABULARY))]
        if kind == "book":
            for _ in range(rng.randint(10, 40)):
                words = rng.choices(VOCABULARY, weights, k=rng.randint(0, 12))
                words = [word.capitalize() if rng.random() < 0.15 else word for word in words]
                line = " ".join(words)
                if words and rng.random() < 0.4:
                    line += rng.choice((".", ",", "!", " --", "?"))
                lines.append(line)
            frame = Frame((Col("value", "str"),), False, None)
        elif kind == "stop":
            lines = rng.sample(VOCABULARY[:20], rng.randint(3, 10))
            frame = Frame((Col("value", "str"),), False, None)
        else:
            for _ in range(rng.randint(15, 60)):
                if rng.random() < 0.05:
                    lines.append("# rotated")
                    continue
                key = self.draw_key()
                shown = "-" if key is None else str(key)
                line = f"{self.day().isoformat()} user={shown} action={rng.choice(_ACTIONS)}"
                if rng.random() < 0.8:
                    line += f" amount={self.money(0, 300):.2f}"
                lines.append(line)
            frame = Frame((Col("value", "str"),), False, None)
        newline = "\r\n" if rng.random() < 0.15 else "\n"
        if newline == "\r\n":
            self.tags.add("CRLF")
        pieces = rng.choice((1, 1, 1, 2))
        if pieces > 1 and len(lines) > 4:
            folder = self.folder / kind
            folder.mkdir()
            cut = rng.randint(1, len(lines) - 1)
            for index, part in enumerate((lines[:cut], lines[cut:])):
                path = folder / f"part-{index}.txt"
                ending = self.newline(newline)
                path.write_bytes((ending.join(part) + ending).encode("utf-8"))
                self.files.append(path)
            call = f'{kind} = sf.source("{kind}", "{kind}/", format="text")'
            self.tags.add("folder source")
            self.sizes[kind] = ("text", sum(path.stat().st_size for path in folder.iterdir()))
        else:
            path = self.folder / f"{kind}.txt"
            path.write_bytes((newline.join(lines) + (newline if rng.random() < 0.8 else "")).encode("utf-8"))
            self.files.append(path)
            call = f'{kind} = sf.source("{kind}", "{kind}.txt", format="text")'
            self.sizes[kind] = ("text", path.stat().st_size)
        return SourceDecl(kind, call, frame, "text")

    def newline(self, usual: str) -> str:
        """A file's line ending: its source's, or now and then the other one (a folder of files from two systems)."""
        if self.rng.random() < 0.1:
            usual = "\n" if usual == "\r\n" else "\r\n"
            self.tags.add("mixed line endings")
        if usual == "\r\n":
            self.tags.add("CRLF")
        return usual

    # --- stages --------------------------------------------------------------------------------------------------

    def stage_name(self, base: str) -> str:
        name, number = base, 2
        while name in self.stage_names:
            name, number = f"{base}_{number}", number + 1
        self.stage_names.add(name)
        return name

    def words(self, lines: str, stop: str | None) -> StageCode:
        self.tags.add("word splitting")
        body = [
            'found = lines.select(F.explode(F.split(F.lower("value"), r"[^a-z\']+")).alias("word"))',
            "found = found.where(\"word != ''\")",
        ]
        params = [("lines", lines)]
        if stop:
            self.tags.add("side input")
            params.append(("stop", stop))
            body.append('return found.join(stop.select(F.col("value").alias("word")), "word", "left_anti")')
            doc = "Words of each line, lower case, without the stop words."
        else:
            body.append("return found")
            doc = "Words of each line, lower case."
        frame = Frame((Col("word", "str", group=True),), False, None)
        return StageCode(self.stage_name("words"), '@sf.stage(partition="rows")', params, body, doc, frame, "rows")

    def parse(self, logs: str) -> StageCode:
        self.tags.add("log parsing")
        cast = {"str": "", "int": '.cast("int")', "long": '.cast("bigint")'}[self.key_kind]
        body = [
            'found = lines.where(F.col("value").rlike(r"user=\\S+ action=\\S+"))',
            'user = F.regexp_extract("value", r"user=(\\S+)", 1)',
            'amount = F.regexp_extract("value", r"amount=([0-9.]+)", 1)',
            "return found.select(",
            '    F.regexp_extract("value", r"^(\\S+)", 1).alias("day"),',
            f'    F.when(user != "-", user{cast}).alias("{self.key}"),',
            '    F.regexp_extract("value", r"action=(\\S+)", 1).alias("action"),',
            '    F.when(amount != "", amount.cast("double")).alias("amount"),',
            ")",
        ]
        cols = (
            Col("day", "str", group=True),
            Col(self.key, self.key_kind),
            Col("action", "str", group=True),
            Col("amount", "float", low=0, high=300),
        )
        frame = Frame(cols, True, None)
        doc = "One row per event line: day, user, action and amount (lines that are not events are dropped)."
        return StageCode(
            self.stage_name("parse"), '@sf.stage(partition="rows")', [("lines", logs)], body, doc, frame, "rows"
        )

    def condition(self, frame: Frame) -> str | None:
        rng = self.rng
        options: list[str] = []
        for col in frame.of("float", "dec"):
            threshold = round(rng.uniform(col.low, col.high * 0.7), 1)
            options.append(f'F.col("{col.name}") {rng.choice((">", ">=", "<"))} {threshold}')
        for col in frame.of("int", "long"):
            if col.name == self.key:
                continue
            if col.high:
                options.append(f'F.col("{col.name}") >= {rng.randint(int(col.low), int(col.high))}')
            else:
                options.append(f'F.col("{col.name}") % {rng.randint(2, 4)} != 0')
        for col in frame.of("str"):
            if col.group:
                continue
            if col.name == "note":
                options.append(f'F.col("note").contains("{rng.choice((",", "a", "e"))}")')
            elif col.name != self.key:
                options.append(f'F.length("{col.name}") > {rng.randint(3, 9)}')
        for col in frame.of("date"):
            options.append(f'F.col("{col.name}") >= F.to_date(F.lit("2024-0{rng.randint(2, 5)}-01"))')
        for col in frame.of("bool"):
            options.append(
                rng.choice((f'F.col("{col.name}")', f'~F.col("{col.name}")', f'F.col("{col.name}").isNull()'))
            )
        if frame.has_key:
            options.append(f'F.col("{self.key}").isNotNull()')
        groups = [col for col in frame.of("str") if col.group]
        if groups:
            col = rng.choice(groups)
            picked = rng.sample(_values_of(col.name), 2)
            options.append(f'F.col("{col.name}").isin({", ".join(repr(value) for value in picked)})')
        if not options:
            return None
        first = rng.choice(options)
        if len(options) > 1 and rng.random() < 0.4:
            second = rng.choice([option for option in options if option != first])
            return f"({first}) {rng.choice(('&', '|'))} ({second})"
        return first

    def filter_rows(self, frame: Frame, param: str, upstream: str) -> StageCode | None:
        condition = self.condition(frame)
        if condition is None:
            return None
        self.tags.add("filter")
        name = self.stage_name("kept")
        body = [f"return {param}.where({condition})"]
        return StageCode(
            name, '@sf.stage(partition="rows")', [(param, upstream)], body, "Rows that pass.", frame, "rows"
        )

    def derive(self, frame: Frame, param: str, upstream: str) -> StageCode | None:
        rng = self.rng
        made: list[tuple[str, Col]] = []
        floats, ints = frame.of("float", "dec"), [col for col in frame.of("int", "long") if col.name != self.key]
        strs = [col for col in frame.of("str") if col.name != self.key]
        if floats:
            col = rng.choice(floats)
            other = f' + F.coalesce(F.col("{ints[0].name}"), F.lit(0))' if ints else ""
            factor = rng.choice(("1.5", "0.25", "2", "1.07"))
            expression = f'F.col("{col.name}") * {factor}{other}'
            if rng.random() < 0.3:
                expression = f"F.round({expression}, 2)"
                self.tags.add("round")
            made.append((expression, Col("scaled", "float", low=0, high=col.high * 2)))
            threshold = round(rng.uniform(col.low, col.high), 1)
            band = f'F.when(F.col("{col.name}") >= {threshold}, "high").when(F.col("{col.name}").isNull(), "none")'
            made.append((band + '.otherwise("low")', Col("band", "str", group=True)))
        if ints:
            col = rng.choice(ints)
            made.append((f'F.coalesce(F.col("{col.name}"), F.lit(0)) * 2 + 1', Col("odd", "long", low=1, high=41)))
        if strs:
            col = rng.choice(strs)
            if rng.random() < 0.5:
                made.append((f'F.upper(F.col("{col.name}"))', Col("shout", "str")))
            else:
                made.append((f'F.length("{col.name}")', Col("length", "int", low=0, high=30)))
        if frame.has_key and any(col.group for col in strs):
            group = rng.choice([col for col in strs if col.group])
            label = f'F.concat_ws("/", F.col("{self.key}").cast("string"), F.col("{group.name}"))'
            made.append((label, Col("label", "str")))
        for col in frame.of("date"):
            made.append((f'F.month("{col.name}")', Col("month", "int", group=True, low=1, high=7)))
        made = [item for item in made if item[1].name not in frame.names()]
        if not made:
            return None
        chosen = rng.sample(made, min(len(made), rng.randint(1, 3)))
        self.tags.add("withColumn arithmetic")
        if rng.random() < 0.5:
            body = [f"out = {param}"] + [f'out = out.withColumn("{col.name}", {expr})' for expr, col in chosen]
            body.append("return out")
        else:
            inner = ", ".join(f'"{col.name}": {expr}' for expr, col in chosen)
            body = [f"return {param}.withColumns({{{inner}}})"]
        out = Frame(frame.cols + tuple(col for _, col in chosen), frame.has_key, frame.unique)
        name = self.stage_name("derived")
        doc = "Derived columns, row by row."
        return StageCode(name, '@sf.stage(partition="rows")', [(param, upstream)], body, doc, out, "rows")

    def project(self, frame: Frame, param: str, upstream: str) -> StageCode | None:
        rng = self.rng
        others = [col for col in frame.cols if col.name != self.key]
        if len(others) < 2:
            return None
        kept = rng.sample(others, rng.randint(1, len(others) - 1))
        cols = ([frame.col(self.key)] if frame.has_key else []) + sorted(kept, key=frame.cols.index)
        names = [col.name for col in cols]
        unique = frame.unique if frame.unique and all(name in names for name in frame.unique) else None
        self.tags.add("select")
        body = [f"return {param}.select({', '.join(repr(name) for name in names)})".replace("'", '"')]
        out = Frame(tuple(cols), frame.has_key, unique)
        name = self.stage_name("narrowed")
        return StageCode(name, '@sf.stage(partition="rows")', [(param, upstream)], body, "Fewer columns.", out, "rows")

    def lookup(self, frame: Frame, param: str, upstream: str, side: SourceDecl) -> StageCode:
        rng = self.rng
        how = rng.choice(("left", "inner", "left_semi", "left_anti"))
        self.tags.add("side input")
        self.tags.add(f"{how} join")
        picked = [col for col in side.frame.cols if col.name != self.key]
        picked = rng.sample(picked, rng.randint(1, len(picked)))
        selected = ", ".join(f'"{name}"' for name in [self.key, *[col.name for col in picked]])
        body = [f'return {param}.join({side.name}.select({selected}), "{self.key}", "{how}")']
        if how in ("left_semi", "left_anti"):
            out = frame
        else:
            cols = [frame.col(self.key)] + [col for col in frame.cols if col.name != self.key] + picked
            out = Frame(tuple(cols), True, frame.unique if side.key_unique else None)
        doc = f"Each row with its {side.name} ({how} lookup of a side input read whole)."
        name = self.stage_name("looked_up")
        params = [(param, upstream), (side.name, side.name)]
        return StageCode(name, '@sf.stage(partition="rows")', params, body, doc, out, "rows")

    def aggregates(self, frame: Frame, keys: list[str]) -> tuple[list[str], list[Col]]:
        """2-4 aggregate expressions over ``frame`` (not of ``keys``) and the columns they make."""
        rng = self.rng
        exprs: list[tuple[str, Col]] = [('F.count("*").alias("rows")', Col("rows", "long", low=0, high=50))]
        for col in frame.cols:
            if col.name in keys:
                continue
            if col.kind in ("int", "long") and col.exact:
                exprs.append((f'F.sum("{col.name}").alias("sum_{col.name}")', Col(f"sum_{col.name}", "long")))
            if col.kind == "float":
                exprs.append((f'F.sum("{col.name}").alias("sum_{col.name}")', Col(f"sum_{col.name}", "float", False)))
            if col.kind == "dec":  # decimal sums are exact
                exprs.append((f'F.sum("{col.name}").alias("sum_{col.name}")', Col(f"sum_{col.name}", "dec")))
            if col.kind in NUMERIC:
                exprs.append((f'F.avg("{col.name}").alias("avg_{col.name}")', Col(f"avg_{col.name}", "float", False)))
            if col.kind in NUMERIC or col.kind in ("str", "date", "ts"):
                func = rng.choice(("min", "max"))
                made = Col(f"{func}_{col.name}", col.kind, col.exact)
                exprs.append((f'F.{func}("{col.name}").alias("{made.name}")', made))
            if col.kind in ("str", "int", "long", "date") or col.name == self.key:
                exprs.append((f'F.countDistinct("{col.name}").alias("n_{col.name}")', Col(f"n_{col.name}", "long")))
            if col.kind != "str" and rng.random() < 0.3:
                exprs.append((f'F.count("{col.name}").alias("has_{col.name}")', Col(f"has_{col.name}", "long")))
        first, rest = exprs[0], exprs[1:]
        chosen = ([first] if rng.random() < 0.7 or not rest else []) + rng.sample(
            rest, min(len(rest), rng.randint(1, 3))
        )
        for expr, _ in chosen:
            self.tags.add(expr.split("(")[0].removeprefix("F."))
        return [expr for expr, _ in chosen], [col for _, col in chosen]

    def group(self, frame: Frame, param: str, upstream: str, by: list[str], partition: str) -> StageCode:
        exprs, made = self.aggregates(frame, by)
        self.tags.add("groupBy")
        keys = ", ".join(f'"{name}"' for name in by)
        if len(exprs) == 1 and exprs[0] == 'F.count("*").alias("rows")' and self.rng.random() < 0.5:
            body = [f'return {param}.groupBy({keys}).count().withColumnRenamed("count", "rows")']
        else:
            body = [f"return {param}.groupBy({keys}).agg(", *[f"    {expr}," for expr in exprs], ")"]
        cols = tuple(replace(frame.col(name), group=True) for name in by) + tuple(made)
        out = Frame(cols, self.key in by, tuple(by))
        name = self.stage_name("by_" + "_".join(by) if len(by) < 3 else "grouped")
        merges = [_merged(expr, col) for expr, col in zip(exprs, made, strict=True)]
        merge: list[str] = []
        if partition == "key":
            declared = self.partition_by(by)
            decorator = f"@sf.stage(partition_by={declared})"
            if all(merges):  # every aggregate merges from its partial results: combine before the shuffle
                self.tags.add("combine")
                decorator = f"@sf.stage(partition_by={declared}, combine=merge_{name})"
                merge = [
                    f"def merge_{name}(partials: DataFrame) -> DataFrame:",
                    f"    return partials.groupBy({keys}).agg(",
                    *[f"        {expr}," for expr in merges],
                    "    )",
                    "",
                    "",
                ]
        else:
            decorator = "@sf.stage()" if self.rng.random() < 0.3 else "@sf.stage"
        doc = f"Aggregates per {' and '.join(by)}."
        return StageCode(name, decorator, [(param, upstream)], body, doc, out, partition, merge=merge)

    def partition_by(self, by: list[str]) -> str:
        """``partition_by=`` for work grouped by ``by``: all of them, or only one of them (a coarser partition is
        still right: every group lies inside one value of each of its columns)."""
        if len(by) == 1:
            return f'"{by[0]}"'
        choice = self.rng.random()
        if choice < 0.5:
            self.tags.add("partition_by list")
            return "[" + ", ".join(f'"{name}"' for name in by) + "]"
        return f'"{by[0]}"' if choice < 0.8 else f'"{by[-1]}"'

    def join(self, frame: Frame, param: str, upstream: str, sides: list[SourceDecl], aggregate: bool) -> StageCode:
        rng = self.rng
        body: list[str] = []
        cols = list(frame.cols)
        unique = frame.unique
        expression = param
        for side in sides:
            how = rng.choice(("inner", "left"))
            self.tags.add(f"{how} join")
            picked = [col for col in side.frame.cols if col.name != self.key]
            if len(picked) > 2:
                picked = rng.sample(picked, rng.randint(2, len(picked)))
            selected = ", ".join(f'"{name}"' for name in [self.key, *[col.name for col in picked]])
            expression += f'.join({side.name}.select({selected}), "{self.key}", "{how}")'
            cols += picked
            if not side.key_unique:
                unique = None
        self.tags.add(f"{len(sides) + 1}-way join")
        cols = [col for col in cols if col.name == self.key] + [col for col in cols if col.name != self.key]
        out = Frame(tuple(cols), True, unique)
        if aggregate:
            body.append(f"joined = {expression}")
            exprs, made = self.aggregates(out, [self.key])
            body += [f'return joined.groupBy("{self.key}").agg(', *[f"    {expr}," for expr in exprs], ")"]
            out = Frame((replace(out.col(self.key), group=True), *made), True, (self.key,))
            self.tags.add("groupBy")
            doc = f"Joined on {self.key}, then aggregated per {self.key}."
        else:
            body.append(f"return {expression}")
            doc = f"Joined on {self.key}."
        params = [(param, upstream)] + [(side.name, side.name) for side in sides]
        decorator = f'@sf.stage(partition_by="{self.key}")'
        return StageCode(self.stage_name("joined"), decorator, params, body, doc, out, "key")

    def window(self, frame: Frame, param: str, upstream: str, by: str) -> StageCode | None:
        rng = self.rng
        order = [col for col in frame.cols if col.exact and col.kind in NUMERIC and col.name != by]
        if not order:
            return None
        col = rng.choice(order)
        direction = rng.choice(("desc", "asc"))
        self.uses_window = True
        self.tags.add("window")
        function = rng.choice(("rank", "dense_rank"))
        body = [
            f'ordered = Window.partitionBy("{by}").orderBy(F.{direction}("{col.name}"))',
            f'whole = Window.partitionBy("{by}")',
            f"out = {param}.withColumns(",
            f'    {{"{function}": F.{function}().over(ordered), "in_group": F.count("*").over(whole)}}',
            ")",
        ]
        made = [Col(function, "int", low=1, high=3), Col("in_group", "long")]
        if rng.random() < 0.5:
            total = f"{col.name}_total"
            body.append(f'out = out.withColumn("{total}", F.sum("{col.name}").over(whole))')
            kind = {"float": "float", "dec": "dec"}.get(col.kind, "long")
            made.append(Col(total, kind, exact=col.kind != "float"))
        if rng.random() < 0.5:
            body.append(f'return out.where(F.col("{function}") <= {rng.randint(1, 3)})')
            self.tags.add("top per key")
        else:
            body.append("return out")
        out = Frame(frame.cols + tuple(made), frame.has_key, frame.unique)
        name = self.stage_name("ranked")
        doc = f"Each row ranked within its {by} by {col.name}."
        return StageCode(name, f'@sf.stage(partition_by="{by}")', [(param, upstream)], body, doc, out, "key", True)

    def distinct(self, frame: Frame, param: str, upstream: str, by: str | None) -> StageCode | None:
        rng = self.rng
        exact = [col for col in frame.cols if col.exact and col.name != by]
        if not exact:
            return None
        kept = rng.sample(exact, min(len(exact), rng.randint(1, 2)))
        cols = ([frame.col(by)] if by else []) + kept
        names = ", ".join(f'"{col.name}"' for col in cols)
        body = [f"return {param}.select({names}).distinct()"]
        self.tags.add("distinct")
        out = Frame(tuple(cols), any(col.name == self.key for col in cols), tuple(col.name for col in cols))
        decorator = f'@sf.stage(partition_by="{by}")' if by else "@sf.stage"
        return StageCode(
            self.stage_name("distinct"),
            decorator,
            [(param, upstream)],
            body,
            "Distinct rows.",
            out,
            "key" if by else "whole",
        )

    def top(self, frame: Frame, param: str, upstream: str) -> StageCode | None:
        """``orderBy`` + ``limit`` over a total order of the rows (else the rows kept would be arbitrary)."""
        rng = self.rng
        exact = [col for col in frame.cols if col.exact]
        if frame.unique:
            rest = [name for name in frame.unique]
        elif len(exact) == len(frame.cols):
            rest = [col.name for col in frame.cols]
        else:
            return None
        leads = [col.name for col in exact if col.kind in NUMERIC and col.name not in rest]
        ordering: list[str] = []
        if leads and rng.random() < 0.8:
            ordering.append(f'F.{rng.choice(("desc", "asc"))}("{rng.choice(leads)}")')
        for name in rest:
            if rng.random() < 0.3:
                ordering.append(f'F.desc("{name}")')
            else:
                ordering.append(f'"{name}"')
        limit = rng.randint(1, 12)
        self.tags.add("orderBy+limit")
        body = [f"return {param}.orderBy({', '.join(ordering)}).limit({limit})"]
        decorator = rng.choice(("@sf.stage", '@sf.stage(memory="1GB")', "@sf.stage()"))
        doc = f"The first {limit} rows."
        return StageCode(self.stage_name("top"), decorator, [(param, upstream)], body, doc, frame, "whole")

    def total(self, frame: Frame, param: str, upstream: str) -> StageCode:
        exprs, made = self.aggregates(frame, [])
        self.tags.add("global aggregate")
        body = [f"return {param}.agg(", *[f"    {expr}," for expr in exprs], ")"]
        out = Frame(tuple(made), False, tuple(col.name for col in made if col.exact) or None)
        return StageCode(self.stage_name("totals"), "@sf.stage", [(param, upstream)], body, "Totals.", out, "whole")


_AGGREGATE = re.compile(r'F\.(\w+)\("([^"]+)"\)\.alias\("([^"]+)"\)')


def _merged(expr: str, made: Col) -> str | None:
    """How the partial results of aggregate ``expr`` merge (a count or a sum sums, a min or max is itself), or None
    when they do not: an average or a distinct count, and a decimal sum (whose type widens once more when summed)."""
    found = _AGGREGATE.fullmatch(expr)
    if found is None:
        return None
    func, _, alias = found.groups()
    if func in ("min", "max"):
        return f'F.{func}("{alias}").alias("{alias}")'
    if func == "count" or (func == "sum" and made.kind != "dec"):
        return f'F.sum("{alias}").alias("{alias}")'
    return None


def _extension(fmt: str) -> str:
    return {"csv": "csv", "json": "jsonl", "parquet": "parquet", "text": "txt"}[fmt]


def _text(value: Any, kind: str) -> str:
    if kind == "float":
        return repr(float(value))  # always with a fraction ("7.0"): the column is inferred as DOUBLE
    if kind == "ts":
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    if kind == "date":
        return str(value.isoformat())
    if kind == "bool":
        return "true" if value else "false"
    return str(value)  # a Decimal keeps its two places


def _json_value(value: Any, kind: str) -> Any:
    if kind in ("date", "ts"):
        return _text(value, kind)
    if kind == "dec":
        return float(value)  # a JSON number; the schema makes it a DECIMAL(10,2)
    return value


def _values_of(column: str) -> list[str]:
    return list(
        {
            "status": _STATUSES,
            "country": _COUNTRIES,
            "kind": _KINDS,
            "action": _ACTIONS,
            "band": ("high", "low", "none"),
            "word": VOCABULARY[:8],
            "day": ("2024-01-05", "2024-02-11", "2024-03-03"),
        }.get(column, ("a", "b"))
    )


def generate(seed: int, folder: Path) -> Case:
    """Write case ``seed`` into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    builder = _Builder(random.Random(seed), folder, seed)
    rng = builder.rng
    builder.setup_keys()
    family = rng.choices(("words", "logs", "tables"), (2, 2, 6))[0]
    inputs = rng.choices((1, 2, 3), (4, 4, 2))[0]
    stages_wanted = rng.choices((1, 2, 3), (2, 4, 4))[0]
    sources: list[SourceDecl] = []
    stages: list[StageCode] = []

    def fmt() -> str:
        return rng.choice(("csv", "json", "parquet"))

    def schema(chosen: str) -> bool:
        return chosen != "parquet" and rng.random() < 0.5

    if family == "words":
        book = builder.text_source("book")
        sources.append(book)
        stop = builder.text_source("stop") if inputs > 1 else None
        if stop:
            sources.append(stop)
        stages.append(builder.words(book.name, stop.name if stop else None))
        frame, upstream = stages[-1].frame, stages[-1].name
        if stages_wanted > 1:
            stages.append(builder.group(frame, "words", upstream, ["word"], "key"))
            frame, upstream = stages[-1].frame, stages[-1].name
        if stages_wanted > 2:
            final = builder.top(frame, "counts", upstream) or builder.total(frame, "counts", upstream)
            stages.append(final)
    else:
        if family == "logs":
            main = builder.text_source("logs")
            sources.append(main)
            stages.append(builder.parse(main.name))
            frame, upstream, param = stages[-1].frame, stages[-1].name, "parsed"
        else:
            chosen = fmt()
            main = builder.table_source("orders", chosen, schema(chosen))
            sources.append(main)
            frame, upstream, param = main.frame, main.name, "orders"
        sides = []
        for slot in ("customers", "events")[: inputs - 1]:
            chosen = fmt()
            sides.append(builder.table_source(slot, chosen, schema(chosen)))
        sources += sides
        # Which stage consumes the other inputs (a join on the key, or a lookup against a side input).
        join_at = rng.randint(len(stages), stages_wanted - 1) if sides and stages_wanted > len(stages) else None
        if sides and join_at is None:  # logs with one stage wanted: parse, then the join
            join_at = len(stages)
        tries = 0
        while len(stages) < max(stages_wanted, (join_at or 0) + 1):
            position = len(stages)
            last = position == max(stages_wanted, (join_at or 0) + 1) - 1
            made: StageCode | None = None
            tries += 1
            if tries > 50:  # nothing else fits this frame: end the chain with a whole stage
                stages.append(builder.total(frame, param, upstream))
                break
            if position == join_at:
                if len(sides) == 1 and rng.random() < 0.35:
                    made = builder.lookup(frame, param, upstream, sides[0])
                else:
                    made = builder.join(frame, param, upstream, sides, aggregate=rng.random() < 0.4)
            else:
                made = _next_stage(builder, frame, param, upstream, last)
            if made is None:
                continue
            stages.append(made)
            frame, upstream = made.frame, made.name
            param = rng.choice(("rows", "data", "found", "frame", upstream.split("_")[0]))
            if param in {name for name, _ in made.params} or param in builder.stage_names:
                param = "rows"
    outputs = [stages[-1].name]
    if len(stages) > 1 and rng.random() < 0.3:
        outputs.insert(0, rng.choice(stages[:-1]).name)
        builder.tags.add("two outputs")
    builder.tags.add(f"{len(stages)} stage{'s' * (len(stages) > 1)}")
    builder.tags.add(f"{len(sources)} input{'s' * (len(sources) > 1)}")
    text = _module(seed, builder, sources, stages, outputs)
    path = folder / "pipeline.py"
    path.write_text(text, encoding="utf-8")
    sizes = tuple((name, fmt, size) for name, (fmt, size) in sorted(builder.sizes.items()))
    return Case(seed, folder, path, text, tuple(outputs), frozenset(builder.tags), tuple(builder.files), sizes)


def _next_stage(builder: _Builder, frame: Frame, param: str, upstream: str, last: bool) -> StageCode | None:
    rng = builder.rng
    kinds = ["filter", "derive", "project", "group", "group2", "window", "distinct_key"]
    weights = [4, 4, 2, 4, 3, 2, 1]
    if last:
        kinds += ["top", "total", "distinct", "group_other"]
        weights += [4, 3, 2, 2]
    if frame.unique == (builder.key,):  # one row per key already: grouping or ranking by it again is pointless
        weights = [
            0 if kind in ("group", "group2", "window", "distinct_key") else weight
            for kind, weight in zip(kinds, weights, strict=True)
        ]
        kinds.append("group_other")
        weights.append(3)
    kind = rng.choices(kinds, weights)[0]
    groups = [col.name for col in frame.cols if col.group and col.exact and col.name != builder.key]
    if kind == "filter":
        return builder.filter_rows(frame, param, upstream)
    if kind == "derive":
        return builder.derive(frame, param, upstream)
    if kind == "project":
        return builder.project(frame, param, upstream)
    if kind in ("group", "group2"):
        by = [builder.key] if frame.has_key else groups[:1]
        if not by:
            return None
        others = [name for name in groups if name not in by]
        if kind == "group2" and others:
            by.append(rng.choice(others))
        return builder.group(frame, param, upstream, by, "key")
    if kind == "window":
        column = builder.key if frame.has_key else (groups[0] if groups else None)
        return builder.window(frame, param, upstream, column) if column else None
    if kind == "distinct_key":
        return builder.distinct(frame, param, upstream, builder.key) if frame.has_key else None
    if kind == "top":
        return builder.top(frame, param, upstream)
    if kind == "total":
        return builder.total(frame, param, upstream)
    if kind == "distinct":
        return builder.distinct(frame, param, upstream, None)
    if kind == "group_other" and groups:
        return builder.group(frame, param, upstream, [rng.choice(groups)], "whole")
    return None


def _module(
    seed: int, builder: _Builder, sources: list[SourceDecl], stages: list[StageCode], outputs: list[str]
) -> str:
    imports = "from pyspark.sql import DataFrame, functions as F"
    if builder.uses_window:
        imports = "from pyspark.sql import DataFrame, Window, functions as F"
    parts = [
        f'"""Oracle case {seed}: {", ".join(sorted(builder.tags))}."""',
        "",
        imports,
        "",
        "import sparkflow as sf",
        "",
        *[source.call for source in sources],
        "",
    ]
    for stage in stages:
        parts += ["", stage.text(), ""]
    body = []
    renamed = {stage.name: _var(stage) for stage in stages}
    for stage in stages:
        arguments = ", ".join(renamed.get(upstream, upstream) for _, upstream in stage.params)
        body.append(f"    {renamed[stage.name]} = {stage.name}({arguments})")
    returned = ", ".join(renamed[name] for name in outputs)
    body.append(f"    return {returned}")
    parts += ["", "@sf.pipeline", f"def oracle_{seed}():", *body, ""]
    return "\n".join(parts)


def _var(stage: StageCode) -> str:
    return f"{stage.name}_out"


def pick_seeds(required: set[str], count: int, scan: range, folder: Path) -> list[int]:
    """``count`` seeds from ``scan`` that between them cover every tag of ``required`` (greedily: the seed adding the
    most uncovered tags first, the lowest seed on ties), filled up with the lowest seeds left. Raises ValueError
    when the scanned seeds cannot cover ``required``."""
    tags = {seed: generate(seed, folder / str(seed)).tags for seed in scan}
    chosen: list[int] = []
    missing = set(required)
    while missing:
        best = max(scan, key=lambda seed: (len(tags[seed] & missing), -seed))
        if not tags[best] & missing:
            raise ValueError(f"seeds {scan.start} to {scan.stop - 1} never cover {sorted(missing)}")
        chosen.append(best)
        missing -= tags[best]
    if len(chosen) > count:
        raise ValueError(f"{len(chosen)} seeds are needed to cover {sorted(required)}, more than {count}")
    chosen += [seed for seed in scan if seed not in chosen][: count - len(chosen)]
    return sorted(chosen)
