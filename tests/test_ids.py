"""Salesforce Ids (spec §7, checklist ID-*)."""

from __future__ import annotations

import random

from bulkforce.engine import ids


def test_id_01_known_checksum() -> None:
    assert ids.to18("001D000000ISUr3") == "001D000000ISUr3IAH"


def test_known_real_ids_validate() -> None:
    for real in ("750D00000004SkLIAU", "751D0000000004rIAA", "005D0000001b0fFIAQ"):
        assert ids.normalize(real) == real
        assert ids.normalize(real[:15]) == real  # ID-03: 15 and 18 interchangeable


def test_id_04_wrong_suffix_is_malformed() -> None:
    assert ids.normalize("001D000000ISUr3IAA") is None
    assert ids.normalize("001D000000ISUr") is None
    assert ids.normalize("001D000000ISUr3-AH") is None


def test_suffix_is_case_insensitive_on_input() -> None:
    assert ids.normalize("001D000000ISUr3iah") == "001D000000ISUr3IAH"


def test_bulk_generation_matches_single_generation() -> None:
    rng = random.Random(7)
    for _ in range(20):
        start = rng.randrange(0, 62**8)
        assert ids.make_ids("a0B", start, 500) == [
            ids.make_id("a0B", s) for s in range(start, start + 500)
        ]


def test_id_02_generated_ids_pass_checksum_and_sort_in_creation_order() -> None:
    made = ids.make_ids("003", 3840, 10_000)
    assert all(len(i) == 18 and ids.normalize(i) == i and i.startswith("003") for i in made)
    assert made == sorted(made)
    assert len(set(made)) == len(made)
