"""What every CSV export writes: English headers and plain numbers for scripts, a byte order mark so Excel
reads UTF-8 (else it uses the system's code page and garbles non-Latin names), and user text that a
spreadsheet would run as a formula neutralised."""

import csv
import io
from decimal import ROUND_HALF_UP, Decimal

BOM = "\ufeff"
CENT, PER_IMAGE = Decimal("0.01"), Decimal("0.0001")


def text(value):
    """User text a spreadsheet would take for a formula gets a leading apostrophe."""
    value = str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def usd(value, places=CENT):
    """Spend to the cent; the price of one image to 4 places (PER_IMAGE), as providers price them."""
    return "" if value is None else str(Decimal(value).quantize(places, ROUND_HALF_UP))


def encoded(rows, first=False):
    """`rows` as CSV bytes; the first chunk of a file starts with the BOM."""
    buffer = io.StringIO()
    if first:
        buffer.write(BOM)
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()
