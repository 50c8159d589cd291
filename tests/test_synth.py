"""synth_original: LAION-like shards that are deterministic, exactly typed, keyed, and realistically odd."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import mmh3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relake import synth
from relake.errors import InputError
from relake.synth import synth_original

EXPECTED_SCHEMA = [
    ("SAMPLE_ID", pa.int64()),
    ("URL", pa.string()),
    ("TEXT", pa.string()),
    ("HEIGHT", pa.int32()),
    ("WIDTH", pa.int32()),
    ("LICENSE", pa.string()),
    ("NSFW", pa.string()),
    ("similarity", pa.float64()),
    ("punsafe", pa.float32()),
    ("pwatermark", pa.float32()),
    ("hash", pa.int64()),
]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
NAME = re.compile(rf"part-(\d{{5}})-{UUID}-c000\.snappy\.parquet")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read(paths: list[Path]) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in paths)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """50k rows in 2 shards, as Python columns."""
    paths = synth_original(tmp_path_factory.mktemp("big") / "out", 50_000, 2, 11)
    columns: dict[str, list[Any]] = read(paths).to_pydict()
    return columns


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = synth_original(tmp_path / "a", 20_000, 3, 7)
    b = synth_original(tmp_path / "b", 20_000, 3, 7)
    assert [p.name for p in a] == [p.name for p in b]
    assert [sha256(p) for p in a] == [sha256(p) for p in b]


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    a = synth_original(tmp_path / "a", 5_000, 2, 7)
    b = synth_original(tmp_path / "b", 5_000, 2, 8)
    assert {p.name for p in a}.isdisjoint(p.name for p in b)
    assert {sha256(p) for p in a}.isdisjoint(sha256(p) for p in b)
    assert set(read(a)["URL"].to_pylist()).isdisjoint(read(b)["URL"].to_pylist())


def test_bytes_do_not_depend_on_threads_or_chunking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "ROW_GROUP_ROWS", 1_500)
    two = synth_original(tmp_path / "two", 7_000, 2, 3)
    monkeypatch.setattr(synth, "_WORKERS", 1)
    monkeypatch.setattr(synth, "_LOOKAHEAD", 1)
    one = synth_original(tmp_path / "one", 7_000, 2, 3)
    assert [sha256(p) for p in two] == [sha256(p) for p in one]
    meta = pq.ParquetFile(two[0]).metadata
    assert meta.num_rows == 3_500
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1_500, 1_500, 500]


def test_names_schema_and_compression(tmp_path: Path) -> None:
    paths = synth_original(tmp_path / "out", 1_000, 3, 5)
    assert [p.parent for p in paths] == [tmp_path / "out"] * 3
    assert [NAME.fullmatch(p.name).group(1) for p in paths] == ["00000", "00001", "00002"]  # type: ignore[union-attr]
    assert len({p.name.split("-", 2)[2] for p in paths}) == 1  # one job uuid, as Spark writes
    for path in paths:
        schema = pq.read_schema(path)
        assert [(f.name, f.type) for f in schema] == EXPECTED_SCHEMA
        meta = pq.ParquetFile(path).metadata
        columns = meta.row_group(0)
        assert {columns.column(i).compression for i in range(columns.num_columns)} == {"SNAPPY"}


def test_rows_split_evenly_and_progress(tmp_path: Path) -> None:
    seen: list[int] = []
    paths = synth_original(tmp_path / "out", 10, 3, 1, progress=seen.append)
    assert [pq.ParquetFile(p).metadata.num_rows for p in paths] == [4, 3, 3]
    assert seen == [4, 7, 10]


def test_zero_rows_writes_valid_empty_shards(tmp_path: Path) -> None:
    paths = synth_original(tmp_path / "out", 0, 2, 1)
    assert len(paths) == 2
    for path in paths:
        assert [(f.name, f.type) for f in pq.read_schema(path)] == EXPECTED_SCHEMA
        assert pq.read_table(path).num_rows == 0
    con = duckdb.connect()
    assert con.read_parquet([str(p) for p in paths]).aggregate("count(*)").fetchall() == [(0,)]


def test_hash_is_laions_row_key(big: dict[str, list[Any]]) -> None:
    urls, texts, hashes = big["URL"], big["TEXT"], big["hash"]
    sample = set(range(0, len(urls), 37)) | {i for i, t in enumerate(texts) if t is None or t == ""}
    assert any(texts[i] is None for i in sample) and any(texts[i] == "" for i in sample)
    for i in sample:
        key = ((urls[i] or "") + (texts[i] or "")).encode()
        assert hashes[i] == mmh3.hash64(key)[0], (urls[i], texts[i])


def test_sample_id_is_a_unique_key(tmp_path: Path) -> None:
    paths = synth_original(tmp_path / "out", 30_000, 4, 2)
    ids = read(paths)["SAMPLE_ID"].to_pylist()
    assert len(set(ids)) == len(ids) == 30_000
    assert None not in ids


def _host(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def test_odd_rows_present_at_sensible_rates(big: dict[str, list[Any]]) -> None:
    urls: list[str] = big["URL"]
    texts: list[str | None] = big["TEXT"]
    n = len(urls)
    categories: dict[str, list[Any]] = {
        "idn host": [u for u in urls if not _host(u).isascii()],
        "lower-case percent-escape": [u for u in urls if re.search(r"%(?:[a-f][0-9a-fA-F]|[0-9][a-f])", u)],
        "upper-case scheme or host": [
            u for u in urls if u.split("://")[0] != u.split("://")[0].lower() or _host(u) != _host(u).lower()
        ],
        "explicit port": [u for u in urls if re.fullmatch(r"[A-Za-z]+://[^/]+:\d+/.*", u)],
        "default port": [u for u in urls if re.match(r"(?i)(http://[^/]+:80/|https://[^/]+:443/)", u)],
        "fragment": [u for u in urls if "#" in u],
        "null caption": [t for t in texts if t is None],
        "empty caption": [t for t in texts if t == ""],
    }
    for name, rows in categories.items():
        assert 10 <= len(rows) <= 0.004 * n, (name, len(rows))
    assert any("%C3%A9" in u or "%7E" in u for u in urls)  # upper-case escapes too
    assert all(u.isprintable() and " " not in u for u in urls)

    captions: defaultdict[str, set[str | None]] = defaultdict(set)
    count: defaultdict[str, int] = defaultdict(int)
    for u, t in zip(urls, texts, strict=True):
        captions[u].add(t)
        count[u] += 1
    reused = sum(c - 1 for c in count.values())
    assert 0.008 * n <= reused <= 0.025 * n
    assert sum(1 for u, c in count.items() if c > 1 and len(captions[u]) > 1) >= 0.9 * sum(
        1 for c in count.values() if c > 1
    )
    assert any(not t.isascii() for t in texts if t)


def test_values_look_like_laion(big: dict[str, list[Any]]) -> None:
    n = len(big["URL"])
    assert all(256 <= v <= 4096 for v in big["HEIGHT"] + big["WIDTH"])
    assert set(big["NSFW"]) == {"UNLIKELY", "UNSURE", "NSFW"}
    assert big["NSFW"].count("UNLIKELY") > 0.8 * n
    assert big["LICENSE"].count("?") > 0.9 * n and len(set(big["LICENSE"])) > 3
    assert all(0.28 <= v < 0.6 for v in big["similarity"])
    punsafe = big["punsafe"]
    assert all(0.0 <= v <= 1.0 for v in punsafe + big["pwatermark"])
    assert sorted(punsafe)[n // 2] < 0.1 and sum(v > 0.9 for v in punsafe) > 0.005 * n
    domains: defaultdict[str, int] = defaultdict(int)
    for u in big["URL"]:
        domains[_host(u).lower()] += 1
    top = sorted(domains.values(), reverse=True)
    assert len(top) > 1_000 and top[0] > 10 * top[len(top) // 2]  # Zipf-like
    assert any("?" in u for u in big["URL"]) and any("/wp-content/uploads/" in u for u in big["URL"])


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    paths = synth_original(out, 100, 2, 1)
    before = [sha256(p) for p in paths]
    with pytest.raises(InputError, match="already contains 2 part-"):
        synth_original(out, 100, 2, 1)
    with pytest.raises(InputError, match="already contains"):
        synth_original(out, 100, 3, 9)
    assert [sha256(p) for p in paths] == before
    assert sorted(out.iterdir()) == sorted(paths)


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="rows must be >= 0"):
        synth_original(tmp_path / "a", -1, 1, 1)
    with pytest.raises(InputError, match="shards must be >= 1"):
        synth_original(tmp_path / "a", 10, 0, 1)
    with pytest.raises(InputError, match="seed must be >= 0"):
        synth_original(tmp_path / "a", 10, 1, -5)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        synth_original(tmp_path / "file", 10, 1, 1)
    assert not (tmp_path / "a").exists()


def test_failure_removes_its_partial_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real_chunk = synth._chunk

    def flaky(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk on fire")
        return real_chunk(*args)

    monkeypatch.setattr(synth, "_chunk", flaky)
    monkeypatch.setattr(synth, "_WORKERS", 1)
    monkeypatch.setattr(synth, "_LOOKAHEAD", 1)
    with pytest.raises(RuntimeError, match="disk on fire"):
        synth_original(tmp_path / "out", 10, 4, 1)
    assert list((tmp_path / "out").iterdir()) == []
