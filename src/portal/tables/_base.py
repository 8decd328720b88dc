"""What every table shares: the engine it runs on and a UUID primary key."""

from piccolo.columns import UUID, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.db import ENGINE


class Base(Table, db=ENGINE):
    id = UUID(primary_key=True)
    created_at = Timestamptz(default=TimestamptzNow())


def one_of(column: str, values: list[str]) -> str:
    """A CHECK condition ``column IN (...)`` as SQL text (Piccolo serialises text reliably)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f'"{column}" IN ({quoted})'
