"""Regenerate the genuine img2dataset border-mode fixture in this folder (run with a Python that has img2dataset).

    python3 -m venv /tmp/i2d-venv && /tmp/i2d-venv/bin/pip install img2dataset==1.47.0 pillow
    cd tests/data/img2dataset-border && /tmp/i2d-venv/bin/python make.py .

Writes into OUT: ``originals/NN.jpg`` (the served images: crops and resizes of Meta's PDQ test photos in
``tests/data/pdq``, landscape, portrait, square and small), ``input.parquet`` (SAMPLE_ID, URL, TEXT) and
``webdataset/``: img2dataset's output with its **default** resizing (``image_size=256``,
``resize_mode="border"``: longest side to 256, padded to 256x256 with a white border, JPEG quality 95),
downloaded from a ``python -m http.server`` on 127.0.0.1:PORT serving ``originals/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
from img2dataset import download

PORT = 47614
PDQ = Path(__file__).resolve().parent.parent / "pdq"


def originals() -> list[Image.Image]:
    bridge = Image.open(PDQ / "bridge-800.jpg").convert("RGB")
    photos = {n: Image.open(PDQ / f"{n}.jpg").convert("RGB") for n in ("q0291", "q0746", "q1050", "q2821")}
    return [
        bridge.resize((400, 251), Image.BOX),  # landscape, larger than 256: downscaled, padded top and bottom
        bridge.crop((250, 0, 551, 502)).resize((180, 300), Image.BOX),  # portrait: padded left and right
        photos["q0291"].crop((0, 43, 256, 213)),  # 256x170
        photos["q0746"].crop((0, 30, 256, 200)),
        photos["q1050"].crop((43, 0, 213, 256)),  # 170x256 portrait
        photos["q2821"].crop((0, 40, 256, 210)).resize((120, 80), Image.BOX),  # small: upscaled, then padded
        photos["q1050"],  # square: resized only, no border
    ]


def wait_for_port(port: int) -> None:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"http.server did not start on port {port}")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent).absolute()
    for name in ("originals", "webdataset"):
        shutil.rmtree(out / name, ignore_errors=True)
    (out / "originals").mkdir(parents=True)
    rows = []
    for i, im in enumerate(originals()):
        im.save(out / "originals" / f"{i:02d}.jpg", quality=90)
        rows.append({"SAMPLE_ID": 2000 + i, "URL": f"http://127.0.0.1:{PORT}/{i:02d}.jpg", "TEXT": f"photo {i}"})
    pq.write_table(pa.Table.from_pylist(rows), out / "input.parquet")
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1",
                               "--directory", str(out / "originals")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(PORT)
        download(url_list=str(out / "input.parquet"), output_folder=str(out / "webdataset"), input_format="parquet",
                 url_col="URL", caption_col="TEXT", save_additional_columns=["SAMPLE_ID"],
                 output_format="webdataset", processes_count=1, thread_count=2, number_sample_per_shard=4,
                 timeout=5)  # image_size=256, resize_mode="border": img2dataset's defaults
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
