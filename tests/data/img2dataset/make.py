"""Regenerate the genuine img2dataset fixtures in this folder (run with a Python that has img2dataset).

    python3 -m venv /tmp/i2d-venv && /tmp/i2d-venv/bin/pip install img2dataset==1.47.0
    /tmp/i2d-venv/bin/python tests/data/img2dataset/make.py tests/data/img2dataset

Writes into OUT (the argument; default: this folder): ``input.parquet`` (LAION columns URL, TEXT, SAMPLE_ID,
punsafe, sha256), ``blocklist.txt`` and one genuine img2dataset output folder per format (``webdataset/``,
``parquet/``, ``files/``, ``tfrecord/``), downloaded from a ``python -m http.server`` on 127.0.0.1:PORT
serving a temporary folder (server and folder are removed at the end). The URLs embed PORT, so keep the default
to reproduce the fixtures' URLs. The output folders are exactly as img2dataset wrote them (it removes its own
``_tmp``); timings and tar mtimes differ from run to run, and rows within a shard may come in another order (4
download threads), so tests must not pin the fixtures' bytes.

``tfrecord`` needs tensorflow and tensorflow_io in the same venv (``pip install tensorflow-cpu tensorflow-io``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2  # img2dataset's own image library (opencv)
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # img2dataset imports albumentations, which phones home
from img2dataset import download

PORT = 47613
FORMATS = ("webdataset", "parquet", "files", "tfrecord")
ROWS = 20
PER_SHARD = 5
MISSING = {5, 14}  # 404: failed_to_download
BROKEN = {12}  # served, not an image: failed_to_resize
PNG = {9}  # served as PNG, re-encoded to jpg by img2dataset
DUP_OF = {17: 3}  # row 17's image has the same bytes as row 3's, at another URL
NO_CAPTION = {11}  # TEXT NULL: img2dataset writes no .txt member
URL_FORMS = {8: "/img/%30%38.jpg", 16: "/img/16.jpg#frag"}  # raw forms whose canonical URL is /img/NN.jpg
UNSAFE = {18}  # punsafe 0.99
BLOCKLIST = [  # one URL a line, forms differing from the input on purpose
    "/img/02.jpg",
    "/img/03.jpg",  # its image also sits at row 17's URL
    "/img/missing-05.jpg",
    "/img/12.jpg",
    "HTTP://127.0.0.1:{port}/img/07.jpg",  # upper-case scheme
    "/img/08.jpg",  # input has percent-escaped unreserved characters
    "/img/16.jpg",  # input has a fragment
    "/img/not-in-input.jpg",
]


def pixels(i: int) -> np.ndarray:
    return np.full((8, 8, 3), ((i * 53) % 256, (i * 97) % 256, (i * 191) % 256), dtype=np.uint8)


def jpeg(i: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", pixels(i), [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert ok
    return buf.tobytes()


def png(i: int) -> bytes:
    ok, buf = cv2.imencode(".png", pixels(i))
    assert ok
    return buf.tobytes()


def make_site(out: Path, root: Path) -> pa.Table:
    """Write the served files under ``root/img`` and ``input.parquet`` and ``blocklist.txt`` into ``out``."""
    site = root / "img"
    site.mkdir(parents=True)
    base = f"http://127.0.0.1:{PORT}"
    rows = []
    for i in range(ROWS):
        path = f"/img/{i:02d}.jpg"
        data: bytes | None
        if i in MISSING:
            path, data = f"/img/missing-{i:02d}.jpg", None
        elif i in BROKEN:
            data = b"this is not an image\n"
        elif i in PNG:
            path, data = f"/img/{i:02d}.png", png(i)
        elif i in DUP_OF:
            path, data = f"/img/dup-of-{DUP_OF[i]:02d}.jpg", jpeg(DUP_OF[i])
        else:
            data = jpeg(i)
        if data is not None:
            (site / Path(path).name).write_bytes(data)
        rows.append({
            "SAMPLE_ID": 1000 + i,
            "URL": base + URL_FORMS.get(i, path),
            "TEXT": None if i in NO_CAPTION else f"tiny image {i} – ünïcödé",
            "punsafe": 0.99 if i in UNSAFE else round(i / 100, 2),
            "sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
        })
    schema = pa.schema([("SAMPLE_ID", pa.int64()), ("URL", pa.string()), ("TEXT", pa.string()),
                        ("punsafe", pa.float64()), ("sha256", pa.string())])
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, out / "input.parquet")
    lines = [b.format(port=PORT) if b.startswith("HTTP") else base + b for b in BLOCKLIST]
    (out / "blocklist.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return table


def wait_for_port(port: int) -> None:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"http.server did not start on port {port}")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent).absolute()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("input.parquet", "blocklist.txt", *FORMATS):
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    site = Path(tempfile.mkdtemp(prefix="i2d-site-"))
    make_site(out, site)
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1",
                               "--directory", str(site)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(PORT)
        for fmt in FORMATS:
            download(
                url_list=str(out / "input.parquet"),
                output_folder=str(out / fmt),
                input_format="parquet",
                url_col="URL",
                caption_col="TEXT",
                save_additional_columns=["SAMPLE_ID", "punsafe"],
                output_format=fmt,
                processes_count=1,
                thread_count=4,
                number_sample_per_shard=PER_SHARD,
                resize_mode="no",
                skip_reencode=True,
                timeout=5,
            )
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(site)


if __name__ == "__main__":
    main()
