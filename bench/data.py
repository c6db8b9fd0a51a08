"""Deterministic Contact-like CSV data: generation, external-id numbers for inserts and upserts."""

from __future__ import annotations

import csv
import io
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import CHUNK_ROWS, COLUMNS

FIRST_NAMES = (
    "Ada", "José", "Zoë", "Jürgen", "Hélène", "Li", "Mei", "Søren", "Émile", "Ana", "John",
    "Mary", "Kenji", "Yuki", "Olga", "Raúl", "François", "Björn", "Inès", "Omar", "太郎",
    "花子", "Chloé", "Łukasz", "Priya", "Noël", "Agnieszka", "Grace", "Ümit", "Sven",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "García", "Müller", "Dupont", "O'Brien", "Nakamura", "山田", "Smith",
    "Østergaard", "Kowalski", "Nguyen", "Silva", "Brontë", "van der Berg", "Schäfer", "佐藤",
    "Hopper", "Fernández", "Dubois", "Johansson", "Wójcik", "Rossi", "Patel", "Lefèvre",
)  # fmt: skip
TITLES = (
    "Chief Executive Officer", "VP, Sales", "Directeur Général", "Ingénieur logiciel",
    "Head of R&D", "Senior Engineer, Platform", "営業部長", "Account Manager",
    "Geschäftsführer", "Buyer", "Procurement Lead, EMEA", "CTO",
)  # fmt: skip
DEPARTMENTS = (
    "Sales", "Marketing", "Finance", "R&D", "Support", "Opérations", "Legal", "IT", "経理",
    "Einkauf", "Customer Success",
)  # fmt: skip
STREETS = (
    "Rue de la Paix", "Hauptstraße", "Main St", "銀座通り", "Calle Mayor", "Market Street",
    "Bahnhofstrasse", "Avenue des Champs-Élysées", "Königsallee", "Rua Augusta",
)  # fmt: skip
PLACES = (  # city, state, country
    ("Paris", "Île-de-France", "France"),
    ("München", "Bayern", "Deutschland"),
    ("東京", "東京都", "日本"),
    ("São Paulo", "SP", "Brasil"),
    ("Zürich", "ZH", "Schweiz"),
    ("New York", "NY", "United States"),
    ("Montréal", "QC", "Canada"),
    ("Kraków", "Małopolskie", "Polska"),
    ("San Francisco", "CA", "United States"),
    ("Köln", "Nordrhein-Westfalen", "Deutschland"),
)
DESCRIPTIONS = (
    'Met at "Dreamforce"', "VIP, renewal Q3", "Kunde seit 2019", "Décideur", "日本語のメモ",
    "Call back\nafter 5pm", "Referred, partner", "Prefers email", "Budget validé", "Trial user",
)  # fmt: skip


def _ascii_slug(text: str, fallback: str) -> str:
    slug = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = "".join(ch for ch in slug if ch.isalnum())
    return slug or fallback


FIRST_SLUGS = tuple(_ascii_slug(n, "user") for n in FIRST_NAMES)
LAST_SLUGS = tuple(_ascii_slug(n, "contact") for n in LAST_NAMES)


def ext_id(number: int) -> str:
    return f"EXT-{number:07d}"


def contact_row(bits: int, ext: str) -> list[str]:
    """One Contact row (13 values, COLUMNS order) drawn from 128 random bits."""
    r = bits
    f, r = r % len(FIRST_NAMES), r // len(FIRST_NAMES)
    ln, r = r % len(LAST_NAMES), r // len(LAST_NAMES)
    title, r = r % len(TITLES), r // len(TITLES)
    dept, r = r % len(DEPARTMENTS), r // len(DEPARTMENTS)
    street, r = r % len(STREETS), r // len(STREETS)
    city, state, country = PLACES[r % len(PLACES)]
    r //= len(PLACES)
    desc, r = r % len(DESCRIPTIONS), r // len(DESCRIPTIONS)
    num, r = r % 400 + 1, r // 400
    phone, r = r % 10_000_000, r // 10_000_000
    postal, r = r % 90_000 + 10_000, r // 90_000
    if r % 5 == 0:  # ~20%: a comma and an embedded newline, as in a two-line address
        address = f"{num} {STREETS[street]}, Apt {r % 97 + 1}\nBât. {'ABCDEF'[r % 6]}"
    else:
        address = f"{num} {STREETS[street]}"
    return [
        FIRST_NAMES[f],
        LAST_NAMES[ln],
        f"{FIRST_SLUGS[f]}.{LAST_SLUGS[ln]}{r % 100}@example.com",
        f"+1 415-{phone // 10_000:03d}-{phone % 10_000:04d}",
        TITLES[title],
        DEPARTMENTS[dept],
        address,
        city,
        state,
        str(postal),
        country,
        DESCRIPTIONS[desc],
        ext,
    ]


@dataclass(frozen=True)
class CsvFile:
    """A generated CSV file; `offsets[k]` is the byte offset of row k*CHUNK_ROWS."""

    path: Path
    rows: int
    offsets: tuple[int, ...]  # offsets[0] = end of header, offsets[-1] = file size

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def header(self) -> bytes:
        with self.path.open("rb") as f:
            return f.read(self.offsets[0])


def write_contacts(path: Path, ext_numbers: Sequence[int], seed: int) -> CsvFile:
    """Write one row per external-id number, in the given order (LF line endings, UTF-8)."""
    rng = random.Random(seed)
    offsets: list[int] = []
    with path.open("wb") as out:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        out.write(buf.getvalue().encode())
        offsets.append(out.tell())
        for start in range(0, len(ext_numbers), CHUNK_ROWS):
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            getrandbits = rng.getrandbits
            writer.writerows(
                contact_row(getrandbits(128), ext_id(n))
                for n in ext_numbers[start : start + CHUNK_ROWS]
            )
            out.write(buf.getvalue().encode())
            offsets.append(out.tell())
    return CsvFile(path, len(ext_numbers), tuple(offsets))


def insert_numbers(n: int, seed: int, ordered: bool) -> list[int]:
    numbers = list(range(1, n + 1))
    if not ordered:
        random.Random(seed).shuffle(numbers)
    return numbers


def upsert_numbers(m: int, n: int, seed: int) -> tuple[list[int], int]:
    """M external-id numbers: half already loaded (updates), half new. Returns (numbers, updates)."""
    rng = random.Random(seed)
    updates = min(m // 2, n)
    numbers = rng.sample(range(1, n + 1), updates) + list(range(n + 1, n + 1 + m - updates))
    rng.shuffle(numbers)
    return numbers, updates
