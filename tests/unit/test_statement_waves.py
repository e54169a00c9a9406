"""A batch's events split into waves of one per key, each key's events in order (statements.py)."""

from projections.statements import waves


def test_each_wave_holds_one_item_per_key_in_order():
    items = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 3), ("b", 2)]
    assert waves(items, key=lambda i: i[0]) == [
        [("a", 1), ("b", 1), ("c", 1)],
        [("a", 2), ("b", 2)],
        [("a", 3)],
    ]


def test_no_items_no_waves():
    assert waves([], key=lambda i: i) == []
