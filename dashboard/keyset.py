"""Lists paged by keyset: a page is the rows after a cursor (a moment and a pk) in the list's order, so it
is one indexed query however many rows there are and however deep it goes. There are no page numbers,
only next and previous. The generation log and the payments page page this way."""

from datetime import UTC, datetime, timedelta

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def cursor(row, field):
    return f"{(getattr(row, field) - EPOCH) // MICROSECOND}_{row.pk}"


def parse_cursor(value):
    """(moment, pk) from a cursor, or None when it is missing or malformed."""
    moment, _sep, pk = (value or "").partition("_")
    try:
        return EPOCH + int(moment) * MICROSECOND, int(pk)
    except (ValueError, OverflowError):
        return None


def older(rows, cursor, field):
    moment, pk = cursor
    return rows.filter(**{f"{field}__lte": moment}).exclude(**{field: moment, "pk__gte": pk})


def newer(rows, cursor, field):
    moment, pk = cursor
    return rows.filter(**{f"{field}__gte": moment}).exclude(**{field: moment, "pk__lte": pk})


def order(newest, field):
    return (f"-{field}", "-pk") if newest else (field, "pk")


def page_of(rows, field, before=None, after=None, newest=True):
    """Up to PAGE_SIZE of `rows` older than `before` or newer than `after` (cursors) by `field`, newest or
    oldest first; with whether there are more to either side (previous, next)."""
    onward, back = (before, after) if newest else (after, before)
    following, preceding = (older, newer) if newest else (newer, older)
    if back:
        page = list(preceding(rows, back, field).order_by(*order(not newest, field))[: PAGE_SIZE + 1])
        if page:
            return page[:PAGE_SIZE][::-1], len(page) > PAGE_SIZE, True
    if onward:
        rows = following(rows, onward, field)
    page = list(rows.order_by(*order(newest, field))[: PAGE_SIZE + 1])
    return page[:PAGE_SIZE], bool(onward), len(page) > PAGE_SIZE


def query(request, **changes):
    """The list's query string without its page cursors, with `changes`."""
    params = request.GET.copy()
    for name in ("before", "after"):
        params.pop(name, None)
    params.update(changes)
    return params.urlencode()


def paged(request, rows, field, newest=True):
    """The page of `rows` the request's cursors ask for, and the links to the pages either side (None
    where there is none): (page, previous, next)."""
    before, after = parse_cursor(request.GET.get("before")), parse_cursor(request.GET.get("after"))
    page, has_previous, has_next = page_of(rows, field, before=before, after=after, newest=newest)
    back, onward = ("after", "before") if newest else ("before", "after")  # the cursors are named by time
    previous = "?" + query(request, **{back: cursor(page[0], field)}) if has_previous and page else None
    following = "?" + query(request, **{onward: cursor(page[-1], field)}) if has_next and page else None
    return page, previous, following
