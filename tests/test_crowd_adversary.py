"""The crowd rule against the adversary of issue #15: someone holding the original, every release and public
manifest this lake published, and the spec's public parts (its non-sensitive `where` and domain rules).

One test per attack of the issue ((a) a crowd a public `where` explains, (b) generations set against each other,
(d) the pair manifest check/clean make), each asserting the refusal, its message and that nothing was written;
then the adversary itself: a plain duckdb script over the original's shards and the published folders tries
every set operation between the publications, per category, with and without every public predicate, and must
isolate no sensitive URL in a crowd smaller than K (the test knows which URLs are sensitive because it planted
them). The same script run on a publication forced through with ``--min-crowd 0`` finds them: it can fail."""

from __future__ import annotations

import hashlib
import itertools
import json
import stat
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from helpers import fails, ok, snapshot, snapshot_diff, write_table
from relake.cli import app

K = 100
N = 2000
BAD_DOMAIN = "bad.example"


def punsafe(i: int) -> float:
    return (i * 37 % 1000) / 1000


def url_of(i: int) -> str:  # canonical already, one row per URL: every manifest entry is match='url'
    return f"https://cdn.{BAD_DOMAIN}/{i}.jpg" if i % 100 == 7 else f"https://img{i % 7}.example.com/a/{i}.jpg"


def public_explains(i: int) -> bool:
    return punsafe(i) > 0.9 or i % 100 == 7


# rows nothing public explains (and no later public predicate matches: punsafe <= 0.5), in disjoint groups
PLAIN = [i for i in range(N) if not public_explains(i) and punsafe(i) <= 0.5]
S1, S2, B1, B2, B3 = PLAIN[:5], PLAIN[5:10], PLAIN[10:310], PLAIN[310:610], PLAIN[610:640]
SENSITIVE = set(S1) | set(S2)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run(lake: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(app, ["--lake", str(lake), *map(str, args)])




def rule(rid: str, category: str, *, blocklist: str | None = None, where: str | None = None,
         sensitive: bool = False) -> str:
    how = f'blocklist = "{blocklist}"' if blocklist else f'where = "{where}"'
    return f'[[rule]]\nid = "{rid}"\n{how}\ncategory = "{category}"\nsensitive = {str(sensitive).lower()}\n'


def spec(name: str, base: str, *rules: str) -> str:
    return f'name = "{name}"\nbase = "{base}"\nmin_crowd = {K}\n' + "".join(rules)


def make_lake(root: Path) -> Path:
    """``orig`` and the blocklists: sensitive URL lists s1, s2; benign key lists b1, b2, b3; domain list bad."""
    lake = root / "lake"
    table = pa.table({"SAMPLE_ID": pa.array(range(N), pa.int64()), "URL": [url_of(i) for i in range(N)],
                      "TEXT": [f"caption {i}" for i in range(N)], "punsafe": [punsafe(i) for i in range(N)]})
    src = root / "src"
    write_table(table.slice(0, N // 2), src / "part-00000.parquet")
    write_table(table.slice(N // 2), src / "part-00001.parquet")
    ok(run(lake, "ingest", "orig", src))
    lists = {"s1": ("url", [url_of(i) for i in S1]), "s2": ("url", [url_of(i) for i in S2]),
             "b1": ("key", [str(i) for i in B1]), "b2": ("key", [str(i) for i in B2]),
             "b3": ("key", [str(i) for i in B3]), "bad": ("domain", [BAD_DOMAIN])}
    for name, (kind, lines) in lists.items():
        path = root / "bl" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
        ok(run(lake, "blocklist", "add", name, path, "--kind", kind))
    return lake


def build(root: Path, lake: Path, name: str, text: str) -> None:
    path = root / "specs" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    ok(run(lake, "build", name, "--spec", path))


def assert_refused_and_unchanged(lake: Path, out: Path, args: tuple[str | Path, ...],
                                 *needles: str) -> str:
    lake_before, out_before = snapshot(lake), snapshot(out)
    line = fails(run(lake, *args))
    assert line.startswith("Error: crowd rule: category 'safety'"), line
    for needle in needles:
        assert needle in line, (needle, line)
    assert snapshot_diff(lake_before, snapshot(lake)) == {}
    assert snapshot_diff(out_before, snapshot(out)) == {}
    return line


# --- (a) a crowd a public rule explains is no crowd ------------------------------------------------------


def test_a_where_explained_crowd_does_not_hide_a_sensitive_removal(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    build(tmp_path, lake, "v", spec("v", "orig", rule("partner", "safety", blocklist="s1", sensitive=True),
                                    rule("unsafe", "safety", where="punsafe > 0.9"),
                                    rule("domains", "safety", blocklist="bad")))
    explained = sum(1 for i in range(N) if public_explains(i))
    assert explained >= 2 * K  # before: a crowd of 200+, and the publication went through
    out = tmp_path / "out"
    out.mkdir()
    for args in (("manifest", "orig", "v", "--out", out / "m"), ("publish", "v", out / "rel")):
        line = assert_refused_and_unchanged(lake, out, args, "5 removal(s) by sensitive rule(s) partner",
                                            "only 0 removal(s) that no public rule explains", f"crowd of {K}",
                                            "Merge the sensitive rule", "benign filter that no public rule explains")
        assert "nothing was written" in line
    # the fix the message names: a crowd no public rule explains, in the same category
    build(tmp_path, lake, "w", spec("w", "orig", rule("partner", "safety", blocklist="s1", sensitive=True),
                                    rule("unsafe", "safety", where="punsafe > 0.9"),
                                    rule("reports", "safety", blocklist="b1")))
    ok(run(lake, "manifest", "orig", "w", "--out", out / "w"))


# --- (b) generations: no set difference may isolate them -------------------------------------------------


def generations(root: Path, *, benign_with_sensitive: bool = False) -> Path:
    """v1 = orig minus B1 (benign); v2 = v1 minus S2 (sensitive) (and B2 when ``benign_with_sensitive``)."""
    lake = make_lake(root)
    build(root, lake, "v1", spec("v1", "orig", rule("reports", "safety", blocklist="b1")))
    extra = (rule("reports", "safety", blocklist="b2"),) if benign_with_sensitive else ()
    build(root, lake, "v2", spec("v2", "v1", rule("partner", "safety", blocklist="s2", sensitive=True), *extra))
    return lake


def test_b_a_later_generation_cannot_be_set_against_an_earlier_publication(tmp_path: Path) -> None:
    lake = generations(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    ok(run(lake, "publish", "v1", out / "rel1"))
    # before: `manifest orig v2` passed (v1's 300 removals counted as its crowd), and its difference with the
    # published orig..v1 was exactly the sensitive hashes
    for args in (("manifest", "orig", "v2", "--out", out / "m2"), ("publish", "v2", out / "rel2"),
                 ("publish", "v2", out / "rel2-since", "--since", "v1")):
        line = assert_refused_and_unchanged(lake, out, args, "5 removal(s) by sensitive rule(s) partner",
                                            "only 0 removal(s)", f"but not in the release orig..v1 published to "
                                            f"{(out / 'rel1').absolute()}", "cannot be taken back: add non-sensitive "
                                            "removals that no `where` or domain rule explains to category 'safety'",
                                            "publish from another ancestor", "or hold the release")
        assert "nothing was written" in line


def test_b_an_earlier_generation_cannot_be_set_against_a_later_publication(tmp_path: Path) -> None:
    lake = generations(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    ok(run(lake, "manifest", "orig", "v2", "--out", out / "m2"))  # 300 benign + 5 sensitive: a crowd
    assert_refused_and_unchanged(lake, out, ("manifest", "orig", "v1", "--out", out / "m1"),
                                 "5 removal(s) by sensitive rule(s) partner", "only 0 removal(s)",
                                 f"the rows in the manifest orig..v2 published to {(out / 'm2').absolute()} but "
                                 "not in this manifest orig..v1")


def test_b_a_generation_with_its_own_crowd_publishes(tmp_path: Path) -> None:
    lake = generations(tmp_path, benign_with_sensitive=True)
    out = tmp_path / "out"
    out.mkdir()
    ok(run(lake, "publish", "v1", out / "rel1"))
    ok(run(lake, "publish", "v2", out / "rel2"))
    ok(run(lake, "manifest", "v1", "v2", "--out", out / "m12"))


# --- (d) the pair manifest check/clean make stays private ----------------------------------------------


def test_d_the_pair_manifest_of_a_refused_pair_stays_in_the_private_area(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    build(tmp_path, lake, "lone", spec("lone", "orig", rule("partner", "safety", blocklist="s1", sensitive=True)))
    out = tmp_path / "out"
    out.mkdir()
    assert_refused_and_unchanged(lake, out, ("manifest", "orig", "lone", "--out", out / "m"), "only 0 removal(s)")
    ok(run(lake, "synth-copy", "orig", tmp_path / "copy", "--shard-size", "500"))
    before = snapshot(lake)
    r = run(lake, "check", tmp_path / "copy", "--manifest", "orig..lone")
    assert r.exit_code == 1, (r.stdout, r.stderr)  # the copy holds the removed rows: found
    assert not any(sha(url_of(i)) in r.stdout + r.stderr for i in S1)
    changed = snapshot_diff(before, snapshot(lake))
    assert changed and all(p.startswith("private/pairs") or p == "private" for p in changed), changed
    assert not (lake / "cache").exists()
    for p in [lake / "private", *(lake / "private").rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    assert snapshot(out) == {}
    assert not (lake / "private" / "published").exists()  # the pair manifest was never published


# --- the adversary -------------------------------------------------------------------------------------


def adversary(orig: Path, published: list[Path]) -> list[tuple[str, int, int]]:
    """What someone holding the original and the published folders finds, in plain duckdb: every set they can
    form (each publication's removed URLs: a manifest's entries, a release's original-minus-data; all their
    atoms, pairwise differences and intersections; each per category; each intersected with every public
    predicate of the specs and its complement) that holds a URL the test planted as sensitive, as (how, the
    sensitive URLs in it, the other URLs in it)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE orig AS SELECT sha256(URL) AS h, URL AS url, punsafe FROM read_parquet(?)",
                [sorted(str(p) for p in orig.glob("*.parquet"))])
    con.execute("CREATE TABLE sens AS SELECT unnest(?) AS h", [[sha(url_of(i)) for i in SENSITIVE]])
    sets: dict[str, set[str]] = {}
    category: dict[str, str] = {}
    for folder in published:
        manifest = folder / "manifest" if (folder / "manifest").is_dir() else folder
        if (manifest / "removed.parquet").is_file():
            rows = con.execute("SELECT url_sha256, category FROM read_parquet(?)",
                               [str(manifest / "removed.parquet")]).fetchall()
            sets[f"manifest {folder.name}"] = {h for h, _ in rows}
            category.update(dict(rows))
        if (folder / "data").is_dir():
            kept = {h for (h,) in con.execute("SELECT sha256(URL) FROM read_parquet(?)",
                                              [sorted(str(p) for p in (folder / "data").glob("*.parquet"))]).fetchall()}
            sets[f"data {folder.name}"] = {h for (h,) in con.execute("SELECT h FROM orig").fetchall()} - kept
    names = sorted(sets)
    candidates: dict[str, set[str]] = dict(sets)
    for a, b in itertools.permutations(names, 2):
        candidates[f"{a} - {b}"] = sets[a] - sets[b]
        candidates[f"{a} & {b}"] = sets[a] & sets[b]
    every = set().union(*sets.values()) if sets else set()
    for h in every:  # atoms: the rows held by exactly the same publications
        sig = tuple(n for n in names if h in sets[n])
        candidates.setdefault("atom " + " & ".join(sig), set()).add(h)
    for cat in sorted(set(category.values())):
        for name, s in list(candidates.items()):
            candidates[f"{name} [{cat}]"] = {h for h in s if category.get(h) == cat}
    predicates: dict[str, Callable[[str, float], bool]] = {  # the specs' public rules, recomputed
        "punsafe > 0.9": lambda url, p: p > 0.9,
        "punsafe > 0.5": lambda url, p: p > 0.5,
        f"domain {BAD_DOMAIN}": lambda url, p: url.split("/")[2].endswith(BAD_DOMAIN),
    }
    row = {h: (url, p) for h, url, p in con.execute("SELECT h, url, punsafe FROM orig").fetchall()}
    for name, s in list(candidates.items()):
        for pname, pred in predicates.items():
            candidates[f"{name} where {pname}"] = {h for h in s if pred(*row[h])}
            candidates[f"{name} where not {pname}"] = {h for h in s if not pred(*row[h])}
        candidates[f"{name} where no public rule"] = {h for h in s if not any(pr(*row[h])
                                                                            for pr in predicates.values())}
    sensitive = {h for (h,) in con.execute("SELECT h FROM sens").fetchall()}
    return [(name, len(s & sensitive), len(s - sensitive)) for name, s in candidates.items() if s & sensitive]


def isolated(found: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    return [f for f in found if f[2] < K]


def test_the_adversary_isolates_no_sensitive_url_in_what_relake_published(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    build(tmp_path, lake, "v1", spec("v1", "orig", rule("partner", "safety", blocklist="s1", sensitive=True),
                                     rule("reports", "safety", blocklist="b1"),
                                     rule("unsafe", "safety", where="punsafe > 0.9"),
                                     rule("domains", "legal", blocklist="bad"),
                                     rule("takedowns", "legal", blocklist="b3")))
    build(tmp_path, lake, "v2", spec("v2", "v1", rule("partner", "safety", blocklist="s2", sensitive=True),
                                     rule("reports", "safety", blocklist="b2"),
                                     rule("borderline", "nsfw", where="punsafe > 0.5")))
    out = tmp_path / "out"
    out.mkdir()
    ok(run(lake, "publish", "v1", out / "rel1"))
    ok(run(lake, "publish", "v2", out / "rel2"))
    ok(run(lake, "manifest", "v1", "v2", "--out", out / "m12"))
    ok(run(lake, "manifest", "orig", "v1", "--out", out / "m01"))
    # what relake refuses (the attacks) leaves nothing for the adversary; tried here too
    fails(run(lake, "publish", "v2", out / "rel2-bad", "--min-crowd", str(10 * K)))
    build(tmp_path, lake, "v3", spec("v3", "v1", rule("partner", "safety", blocklist="s2", sensitive=True)))
    fails(run(lake, "manifest", "orig", "v3", "--out", out / "m03"))
    published = sorted(p for p in out.iterdir())
    assert [p.name for p in published] == ["m01", "m12", "rel1", "rel2"]
    found = adversary(tmp_path / "src", published)
    assert found  # the sensitive URLs are published (hashed), in crowds
    assert isolated(found) == [], isolated(found)[:5]
    assert min(benign for _, _, benign in found) >= K


def test_the_adversary_finds_what_a_forced_publication_exposes(tmp_path: Path) -> None:
    """The same script on attacks (a) and (b) forced through with --min-crowd 0: it isolates them (so the test
    above can fail)."""
    lake = generations(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    ok(run(lake, "publish", "v1", out / "rel1"))
    ok(run(lake, "manifest", "orig", "v2", "--out", out / "m2", "--min-crowd", "0"))
    found = isolated(adversary(tmp_path / "src", [out / "rel1", out / "m2"]))
    assert ("manifest m2 - data rel1", len(S2), 0) in found
    lake_a = make_lake(tmp_path / "a")
    build(tmp_path / "a", lake_a, "v", spec("v", "orig", rule("partner", "safety", blocklist="s1", sensitive=True),
                                            rule("unsafe", "safety", where="punsafe > 0.9")))
    ok(run(lake_a, "manifest", "orig", "v", "--out", out / "ma", "--min-crowd", "0"))
    found = isolated(adversary(tmp_path / "a" / "src", [out / "ma"]))
    assert ("manifest ma where not punsafe > 0.9", len(S1), 0) in found


def test_the_publication_log_is_private_and_names_no_url(tmp_path: Path) -> None:
    lake = generations(tmp_path, benign_with_sensitive=True)
    out = tmp_path / "out"
    out.mkdir()
    ok(run(lake, "publish", "v2", out / "rel2", "--since", "v1"))  # logs the manifest and the release's data
    log = lake / "private" / "published"
    metas = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(log.glob("*.json"))]
    assert sorted((m["what"], m["from"], m["to"]) for m in metas) == [("release", "v1", "v2"),
                                                                       ("release data", "orig", "v2")]
    for p in [lake / "private", *(lake / "private").rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p
    text = b"".join(p.read_bytes() for p in log.iterdir())
    assert not any(url_of(i).encode() in text for i in SENSITIVE)


@pytest.mark.parametrize("where", ["punsafe > 0.9", None])
def test_a_domain_or_where_rule_is_explained_only_when_not_sensitive(tmp_path: Path, where: str | None) -> None:
    """A sensitive `where` is not public: its matches are sensitive (not explained), and need a crowd."""
    lake = make_lake(tmp_path)
    rules = [rule("partner", "safety", where=where, sensitive=True) if where else
             rule("partner", "safety", blocklist="bad", sensitive=True), rule("reports", "safety", blocklist="b1")]
    build(tmp_path, lake, "v", spec("v", "orig", *rules))
    ok(run(lake, "manifest", "orig", "v", "--out", tmp_path / "m"))  # 300 benign hide them
    build(tmp_path, lake, "lone", spec("lone", "orig", rules[0]))
    line = fails(run(lake, "manifest", "orig", "lone", "--out", tmp_path / "m2"))
    assert "only 0 removal(s)" in line
