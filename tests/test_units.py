import pytest

from datakiln.errors import InvalidArgumentError
from datakiln.units import format_bytes, parse_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1GB", 10**9), ("512MB", 512 * 10**6), ("2GiB", 2 * 1024**3), ("1.5 gb", 1_500_000_000),
     (4096, 4096), ("100", 100), (None, None)],
)
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["lots", "1XB", "-5MB", 0, "", True])
def test_parse_bytes_rejects_nonsense(bad):
    with pytest.raises(InvalidArgumentError, match="memory_budget"):
        parse_bytes(bad)


def test_format_bytes():
    assert format_bytes(1_500_000) == "1.5 MB"
    assert format_bytes(999) == "999 B"
