"""Check and clean downstream copies: img2dataset output folders, by removal manifest or release.

A *copy* is a folder as img2dataset writes it: per shard ``NNNNN.parquet`` (a row for every input sample,
failures included: ``url``, ``caption``, saved extra columns, ``key``, ``status``, ``error_message``, sizes,
``exif`` and an image hash column ``md5``/``sha256``/``sha1``), ``NNNNN_stats.json``, and the samples' bytes as
its layout keeps them (``relake.copies.layouts``: ``NNNNN.tar`` in the webdataset layout, a ``NNNNN/`` folder in
the files layout, ``NNNNN.tfrecord`` in the tfrecord layout, a ``jpg`` column in the parquet layout). Copies are
re-sharded and re-ordered relative to the release, and ``key`` is positional, so rows are matched by content only:

- **manifest mode** (``manifest_dir``): a public removal manifest folder (``removed.parquet`` with
  ``url_sha256``, ``category`` and optionally ``image_md5``/``image_sha256``/``image_sha1``, plus
  ``manifest.json``). A copy row is affected when an entry matches it at the entry's level (its canonical URL;
  URL and caption; or URL, caption and the base's id: see ``relake.publish``), reported as ``url``, or its
  image hash is listed under the same algorithm (``image``), or both (``both``). A copy without the caption
  (id) column is matched by URL (URL and caption) alone, and the rows so matched are counted.
- **allowlist mode** (``keep_only``): a release (lake version, version folder or parquet files). A copy row is
  affected when its (canonical URL, caption) pair is not in the release (NULL caption equals NULL caption).

Both modes may be combined (a row is affected when either says so). Reports carry shards, keys, positions and
counts, never a URL or caption of an affected row (they may be harmful links).

Modules: ``open`` (a copy folder's layout, shards and rows), ``manifest``, ``check``, ``clean`` (with ``resume``,
its record of finished units, and ``write``), ``layout`` and ``layouts`` (one module per img2dataset output
format, and the registry), ``tar`` and ``tfrecord`` (byte-exact readers and filters), ``keys`` (how a parquet
key and a member's name are compared) and ``samples`` (a shard's side against its parquet keys: orphans).
"""

from relake.copies.check import AffectedRow, CheckReport, ShardCheck, check_copy
from relake.copies.clean import CleanPlan, CleanReport, clean_copy, dry_run_report, prepare_clean, run_clean
from relake.copies.keys import SampleKeys, member_key, normal_key
from relake.copies.layout import Layout, LayoutName, Sample, Written
from relake.copies.layouts import LAYOUTS
from relake.copies.manifest import resolve_manifest
from relake.copies.open import CopyLayout, CopyShard, open_copy
from relake.copies.resume import RECORD_NAME
from relake.copies.tar import TarMember, filter_tar, scan_tar
from relake.copies.tfrecord import example_key, filter_tfrecord, masked_crc32c

__all__ = [
    "LAYOUTS",
    "RECORD_NAME",
    "AffectedRow",
    "CheckReport",
    "CleanPlan",
    "CleanReport",
    "CopyLayout",
    "CopyShard",
    "Layout",
    "LayoutName",
    "Sample",
    "SampleKeys",
    "ShardCheck",
    "TarMember",
    "Written",
    "check_copy",
    "clean_copy",
    "dry_run_report",
    "example_key",
    "filter_tar",
    "filter_tfrecord",
    "masked_crc32c",
    "member_key",
    "normal_key",
    "open_copy",
    "prepare_clean",
    "resolve_manifest",
    "run_clean",
    "scan_tar",
]
