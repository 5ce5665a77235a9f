"""Which kind of statement a parsed SQL statement is, for the local engine.

The local engine reads the lake and never changes it. A statement is one of:

- a **query** (``SELECT``, ``WITH``, ``VALUES``, set operations), run on DuckDB;
- one of Athena's **metadata statements**, answered from the lake's Iceberg catalog:
  ``SHOW TABLES [IN db] ['pattern']``, ``SHOW {DATABASES | SCHEMAS} [LIKE 'pattern']``,
  ``SHOW COLUMNS {IN | FROM} [db.]t [{IN | FROM} db]``, ``SHOW PARTITIONS [db.]t``,
  ``SHOW CREATE TABLE [db.]t`` and ``DESCRIBE [FORMATTED] [db.]t``;
- a **write** (``CREATE``, ``INSERT``, ``UPDATE``, ``DELETE``, ``MERGE``, ``DROP``, ``ALTER``,
  ``OPTIMIZE``, ``VACUUM``, ``MSCK REPAIR``, ``UNLOAD``, ...), refused: the pipeline writes the
  lake, and Athena runs such statements on AWS;
- anything else (``EXPLAIN``, ``USE``, ``PREPARE``, ``SHOW VIEWS``, ...), refused as not run
  locally.

sqlglot parses Athena's ``SHOW`` statements as opaque commands; their text is tokenized here
with sqlglot's Hive tokenizer (Athena's DDL is Hive's: backquoted names, quoted patterns).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from pipelines_local.query.errors import QueryError


@dataclass(frozen=True, slots=True)
class ShowTables:
    database: str | None = None
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class ShowDatabases:
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class ShowColumns:
    table: str
    database: str | None = None


@dataclass(frozen=True, slots=True)
class ShowPartitions:
    table: str
    database: str | None = None


@dataclass(frozen=True, slots=True)
class ShowCreateTable:
    table: str
    database: str | None = None


@dataclass(frozen=True, slots=True)
class DescribeTable:
    table: str
    database: str | None = None
    formatted: bool = False


MetadataStatement = (
    ShowTables | ShowDatabases | ShowColumns | ShowPartitions | ShowCreateTable | DescribeTable
)

ANSWERED = (
    "queries (SELECT, WITH, VALUES), SHOW TABLES, SHOW DATABASES, SHOW COLUMNS, "
    "SHOW PARTITIONS, SHOW CREATE TABLE and DESCRIBE"
)

# Statements that change tables, databases or their data, by sqlglot's node type ...
_WRITES: tuple[type[exp.Expr], ...] = (
    exp.DDL,  # CREATE (tables, CTAS, views, databases), INSERT
    exp.DML,  # UPDATE, DELETE, MERGE
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Comment,
    exp.Grant,
    exp.Revoke,
    exp.Analyze,
    exp.Refresh,
    exp.LoadData,
)
# ... and by the first keyword of a statement sqlglot keeps as an opaque command.
_WRITE_COMMANDS = frozenset(
    {
        "ALTER",
        "ANALYZE",
        "CALL",
        "COMMENT",
        "CREATE",
        "DELETE",
        "DROP",
        "GRANT",
        "INSERT",
        "MERGE",
        "MSCK",
        "OPTIMIZE",
        "REFRESH",
        "REPLACE",
        "REVOKE",
        "TRUNCATE",
        "UNLOAD",
        "UPDATE",
        "VACUUM",
    }
)
_KEYWORDS = {"TruncateTable": "TRUNCATE TABLE", "LoadData": "LOAD DATA"}
_MAINTENANCE = frozenset({"OPTIMIZE", "VACUUM"})  # what `pipeline lake compact` does


def classify(tree: exp.Expr) -> exp.Expr | MetadataStatement:
    """``tree`` itself if it is a query, the metadata statement it is, or a QueryError saying
    why the local engine does not run it."""
    if isinstance(tree, exp.Query | exp.Values):
        return tree
    if isinstance(tree, exp.Describe):
        return _describe(tree)
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "SHOW":
        return parse_show(str(tree.expression.name if tree.expression else ""))
    kind = statement_kind(tree)
    if _is_write(tree):
        raise QueryError(_read_only_message(kind))
    raise QueryError(
        f"the local engine does not run {kind} statements: it answers {ANSWERED}; "
        f"run {kind} on AWS with --engine athena"
    )


def statement_kind(tree: exp.Expr) -> str:
    """What a statement is called in SQL: ``DROP TABLE``, ``CREATE TABLE AS SELECT``, ..."""
    if isinstance(tree, exp.Command):
        return " ".join(str(tree.this).upper().split())
    keyword = _KEYWORDS.get(type(tree).__name__, type(tree).__name__.upper())
    kind = tree.args.get("kind")
    if isinstance(tree, exp.Create | exp.Drop | exp.Alter) and kind:
        keyword = f"{keyword} {str(kind).upper()}"
    if keyword == "CREATE TABLE" and isinstance(tree.args.get("expression"), exp.Query):
        keyword += " AS SELECT"
    return keyword


def _is_write(tree: exp.Expr) -> bool:
    if isinstance(tree, exp.Command):
        return str(tree.this).upper().split()[0] in _WRITE_COMMANDS
    return isinstance(tree, _WRITES)


def _read_only_message(kind: str) -> str:
    message = (
        f"the local engine is read-only and does not run {kind}: the lake's tables are "
        "written only by the pipeline (its lake writer and compactor)"
    )
    first = kind.split()[0]
    if first in _MAINTENANCE:
        return f"{message}; compact them and expire their snapshots with `pipeline lake compact`"
    if first == "MSCK":
        return f"{message}; Iceberg tables need no {kind}: each commit makes its partitions visible"
    return f"{message}; to change the tables in AWS, run {kind} there with --engine athena"


def _describe(tree: exp.Describe) -> DescribeTable:
    table = tree.this
    if not isinstance(table, exp.Table) or not table.name:
        raise QueryError("the local engine describes tables only: DESCRIBE [FORMATTED] [db.]table")
    style = str(tree.args.get("style") or "").upper()
    if style and style != "FORMATTED":
        raise QueryError(f"DESCRIBE {style} is not Athena SQL: DESCRIBE [FORMATTED] [db.]table")
    return DescribeTable(table.name, table.db or None, formatted=style == "FORMATTED")


# --- SHOW ---------------------------------------------------------------------------------

_SYNOPSES = {
    "TABLES": "SHOW TABLES [IN database] ['pattern']",
    "DATABASES": "SHOW {DATABASES | SCHEMAS} [LIKE 'pattern']",
    "COLUMNS": "SHOW COLUMNS {IN | FROM} [database.]table [{IN | FROM} database]",
    "PARTITIONS": "SHOW PARTITIONS [database.]table",
    "CREATE": "SHOW CREATE TABLE [database.]table",
}


def parse_show(text: str) -> MetadataStatement:
    """The metadata statement of ``SHOW <text>``."""
    try:
        tokens = Dialect.get_or_raise("hive").tokenize(text)
    except SqlglotError as exc:
        raise QueryError(f"invalid SQL: SHOW {text}: {exc}") from exc
    tokens = [t for t in tokens if t.token_type != TokenType.SEMICOLON]
    reader = _Tokens(tokens, text)
    what = reader.word()
    if what == "SCHEMAS":
        what = "DATABASES"
    if what not in _SYNOPSES:
        shown = f"SHOW {what}" if what else "SHOW"
        raise QueryError(
            f"the local engine does not run {shown} statements: it answers {ANSWERED}; "
            f"run {shown} on AWS with --engine athena"
        )
    reader.synopsis = _SYNOPSES[what]
    statement: MetadataStatement
    if what == "TABLES":
        database = reader.name() if reader.keyword("IN", "FROM") else None
        statement = ShowTables(database, reader.string())
    elif what == "DATABASES":
        statement = ShowDatabases(reader.string(after="LIKE"))
    elif what == "COLUMNS":
        reader.expect("IN", "FROM")
        database, table = reader.qualified_name()
        if reader.keyword("IN", "FROM"):
            database = reader.name()
        statement = ShowColumns(table, database)
    elif what == "PARTITIONS":
        database, table = reader.qualified_name()
        statement = ShowPartitions(table, database)
    else:
        reader.expect("TABLE")
        database, table = reader.qualified_name()
        statement = ShowCreateTable(table, database)
    reader.end()
    return statement


class _Tokens:
    """A cursor over the tokens of a ``SHOW`` statement's text."""

    def __init__(self, tokens: list[Token], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0
        self.synopsis = ""

    def _peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _fail(self, problem: str) -> QueryError:
        return QueryError(f"invalid SQL: SHOW {self.text.strip()}: {problem}; use {self.synopsis}")

    def word(self) -> str:
        token = self._peek()
        if token is None or token.token_type == TokenType.STRING:
            return ""
        self.position += 1
        return token.text.upper()

    def keyword(self, *words: str) -> bool:
        token = self._peek()
        if (
            token is not None
            and token.token_type != TokenType.STRING
            and token.text.upper() in words
        ):
            self.position += 1
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.keyword(*words):
            raise self._fail(f"expected {' or '.join(words)}")

    def name(self) -> str:
        token = self._peek()
        if token is None or token.token_type in (TokenType.STRING, TokenType.DOT):
            raise self._fail("expected a name")
        self.position += 1
        # Athena's names are lowercase; a backquoted one is taken as written.
        return token.text if token.token_type == TokenType.IDENTIFIER else token.text.lower()

    def qualified_name(self) -> tuple[str | None, str]:
        first = self.name()
        token = self._peek()
        if token is not None and token.token_type == TokenType.DOT:
            self.position += 1
            return first, self.name()
        return None, first

    def string(self, *, after: str | None = None) -> str | None:
        if after is not None and not self.keyword(after):
            return None
        token = self._peek()
        if token is None:
            if after is not None:
                raise self._fail(f"expected a quoted pattern after {after}")
            return None
        if token.token_type != TokenType.STRING:
            raise self._fail(f"unexpected {token.text!r}")
        self.position += 1
        return token.text

    def end(self) -> None:
        token = self._peek()
        if token is not None:
            raise self._fail(f"unexpected {token.text!r}")
