"""`relake head` and `relake sql` (issue 18): a first look at versions, sandboxed as build rules are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click import Command
from typer.main import get_command
from typer.testing import CliRunner

from helpers import Cli, fails, ok, read_rows
from relake.cli import app
from relake.cli.app import PANELS


@pytest.fixture
def two(cli: Cli, src: list[Path]) -> list[dict[str, object]]:
    """orig (300 rows) and v-1.0 (a name that is no plain identifier) without every 10th SAMPLE_ID."""
    ok(cli("ingest", "orig", *src))
    ok(cli("build", "v-1.0", "--base", "orig", "--where", "SAMPLE_ID % 10 = 0"))
    return read_rows(src)


def test_head_prints_the_first_rows_in_file_order(cli: Cli, two: list[dict[str, object]]) -> None:
    data = json.loads(ok(cli("head", "orig", "-n", "3", "--json")).stdout)
    assert [c["name"] for c in data["columns"]] == ["SAMPLE_ID", "URL", "TEXT", "punsafe"]
    assert data["rows"] == [list(r.values()) for r in two[:3]] and data["count"] == 3
    screen = ok(cli("head", "orig", "-n", "2")).stdout
    assert str(two[1]["URL"]) in screen and str(two[2]["URL"]) not in screen


def test_head_where_picks_rows_like_a_rule(cli: Cli, two: list[dict[str, object]]) -> None:
    data = json.loads(ok(cli("head", "v-1.0", "-n", "4", "--where", "SAMPLE_ID > 100", "--json")).stdout)
    want = [r for r in two if int(str(r["SAMPLE_ID"])) > 100 and int(str(r["SAMPLE_ID"])) % 10][:4]
    assert data["rows"] == [list(r.values()) for r in want]


@pytest.mark.parametrize(("where", "says"), [
    ("(SELECT 1) = 1", "subquery"),
    ("getenv('HOME') = ''", "getenv()"),
    ("1", "must be a boolean"),
    ("no_such_column > 1", "no_such_column"),
])
def test_head_where_is_vetted(cli: Cli, two: object, where: str, says: str) -> None:
    assert says in fails(cli("head", "orig", "--where", where))


def test_sql_sees_every_version_as_a_view(cli: Cli, two: list[dict[str, object]]) -> None:
    q = 'SELECT count(*) AS n FROM orig ANTI JOIN "v-1.0" USING (SAMPLE_ID)'
    data = json.loads(ok(cli("sql", q, "--json")).stdout)
    assert data["columns"] == [{"name": "n", "type": "BIGINT"}] and data["rows"] == [[30]]
    screen = ok(cli("sql", 'SELECT SAMPLE_ID FROM "v-1.0" ORDER BY 1 LIMIT 3')).stdout
    assert re.findall(r"\b\d+\b", screen) == ["1", "2", "3"]


def test_sql_limit_says_it_cut(cli: Cli, two: object) -> None:
    r = ok(cli("sql", "SELECT * FROM orig", "--limit", "5", "--json"))
    data = json.loads(r.stdout)
    assert data["count"] == 5 and data["truncated"] is True


@pytest.mark.parametrize(("text", "says"), [
    ("SELECT * FROM nope", "no version named 'nope'"),
    ("SELECT * FROM read_parquet('x.parquet')", "read_parquet() (a table function)"),
    ("SELECT * FROM 'x.parquet'", "no version named 'x.parquet'"),
    ("SELECT * FROM main.orig", "without a schema"),
    ("COPY orig TO 'x.csv'", "one SELECT statement"),
    ("ATTACH 'x.db'", "one SELECT statement"),
    ("PRAGMA version", "one SELECT statement"),
    ("SELECT 1; SELECT 2", "not several"),
    ("SELECT current_setting('threads')", "current_setting()"),
    ("SELEC 1", "does not parse"),
    ("SELECT no_such_column FROM orig", "no_such_column"),
])
def test_sql_refuses_anything_but_a_select_over_versions(cli: Cli, two: object, text: str, says: str) -> None:
    assert says in fails(cli("sql", text))


def test_sql_cannot_read_files_even_through_a_view_of_a_path(cli: Cli, two: object, tmp_path: Path) -> None:
    """The sandbox: a removed.parquet in the version's own folder is unreadable by name or table function."""
    removed = next((tmp_path / "lake").rglob("removed.parquet"))
    assert pq.read_metadata(removed).num_rows == 30
    quoted = "'" + str(removed) + "'"
    assert "table function" in fails(cli("sql", "SELECT * FROM parquet_scan(%s)" % quoted))  # noqa: S608, UP031
    assert "no version named" in fails(cli("sql", "SELECT * FROM %s" % quoted))  # noqa: S608, UP031


def _commands(cmd: Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Command]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        return [c for n, s in subs.items() for c in _commands(s, (*path, n))]
    return [(path, cmd)]


def test_help_shows_metavars_never_python_types() -> None:
    for path, _ in [((), None), *_commands(get_command(app))]:
        text = CliRunner().invoke(app, [*path, "--help"]).stdout
        assert not re.search(r"<(str|int|float|bool|list\[\w+\]|Path|path)>", text), (path, text)


def test_help_groups_commands_as_the_readme_does() -> None:
    text = CliRunner().invoke(app, ["--help"]).stdout
    heads = [ln[:-1] for ln in text.splitlines() if ln.endswith(":") and not ln.startswith(" ")]
    assert heads == ["Options", *PANELS]
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert [p for p in PANELS if f"# {p}\n" in readme or f"\n{p}:" in readme] == list(PANELS)


def test_a_cte_named_as_a_file_in_one_branch_does_not_let_another_branch_read_that_file(
        cli: Cli, two: list[dict[str, object]], lake_root: Path) -> None:
    """A CTE is in scope only where it is defined: a file name used as a table in another branch is a table
    reference like any other, refused unless it is a version; and the query's connection can read the versions'
    shards and deletion vectors only, never the folder beside them (removed.parquet, version.json)."""
    removed = lake_root / "versions" / "v-1.0" / "removed.parquet"
    assert removed.is_file()
    secret = str(pq.read_table(removed).column("url")[0])
    text = (f'SELECT url FROM "{removed}" WHERE (SELECT count(*) FROM "v-1.0") > 0 '  # noqa: S608 (the attack)
            f'UNION ALL (WITH "{removed}" AS (SELECT 1 AS a) SELECT * FROM "{removed}" WHERE false)')
    r = cli("sql", text)
    assert r.exit_code == 2 and secret not in r.stdout + r.stderr, r.stdout
    assert fails(r).startswith(f"Error: no version named {str(removed)!r}")
    ok(cli("sql", 'WITH x AS (SELECT SAMPLE_ID FROM "v-1.0") SELECT count(*) FROM x, (SELECT 1 FROM x LIMIT 1)'))


@pytest.mark.parametrize("name", ["removed.parquet", "version.json"])
def test_the_sql_sandbox_reads_no_file_beside_a_versions_data(cli: Cli, two: list[dict[str, object]],
                                                               lake_root: Path, name: str) -> None:
    """Even with the query check bypassed, the connection (db.connect readable_files) refuses the files a vector
    version's folder holds beside its deletion vector."""
    from relake.db import connect
    from relake.explore import _files
    from relake.lake import Lake
    from relake.sources import resolve_side
    lake = Lake.at(lake_root)
    with connect(None) as probe:
        side = resolve_side(lake, probe, "v-1.0")
    with connect(lake, readable=[], readable_files=_files([side])) as db:
        assert db.con.execute("SELECT count(*) FROM read_parquet($f)", {"f": str(side.paths[0])}).fetchone()
        with pytest.raises(Exception, match=r"(?i)permission"):
            db.con.execute("SELECT * FROM read_text($f)", {"f": str(lake_root / "versions" / "v-1.0" / name)})


@pytest.mark.parametrize(("args", "says"), [(("head", "orig", "-n", "99999999999999999999"), "-n"),
                                            (("sql", "SELECT 1", "--limit", "99999999999999999999"), "--limit"),
                                            (("sql", ""), "empty")])
def test_out_of_range_counts_and_an_empty_query_are_one_error_line(cli: Cli, two: object, args: tuple[str, ...],
                                                                    says: str) -> None:
    assert says in fails(cli(*args))


def test_head_and_diff_refuse_the_lakes_private_files_given_as_paths(cli: Cli, two: list[dict[str, object]],
                                                                     lake_root: Path) -> None:
    """removed.parquet lists removed rows' URLs and captions, the URL cache every row's host: named as files they
    are refused like any private part of the lake; a version's own data folder still reads."""
    removed = lake_root / "versions" / "v-1.0" / "removed.parquet"
    secret = str(pq.read_table(removed).column("url")[0])
    caches = sorted((lake_root / "url-cache").rglob("*.parquet"))
    assert caches
    for target in (removed, caches[0], lake_root / "versions" / "v-1.0" / "deletes.parquet"):
        for args in (("head", str(target)), ("diff", str(target), "orig")):
            r = cli(*args)
            assert r.exit_code == 2 and secret not in r.stdout + r.stderr
            assert "a private part of the lake" in fails(r), (args, r.stderr)
    ok(cli("head", str(lake_root / "versions" / "orig")))
