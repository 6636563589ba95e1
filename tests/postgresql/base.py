"""PostgreSQL for the test suite: a transactional test's tables are emptied by DELETE, not TRUNCATE.

TRUNCATE makes new files for every table and index (~0.45 s a test here, most of a bot story's time), while
a test leaves a few rows in a few tables. Foreign keys are checked at commit (Django makes them deferrable),
and the flush is one transaction, so the order of the DELETEs doesn't matter."""

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade:
            return super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
