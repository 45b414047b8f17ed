"""Issue 23 item 6: a wide CSV is read in linear time; weights downloads have timeouts, a deadline
and a size cap, and a failed download leaves nothing in the cache (local server, 127.0.0.1 only)."""
from __future__ import annotations

import hashlib
import http.server
import threading
import time

import numpy as np
import pytest

from ecg_keras import zoo
from ecg_keras.datasets.base import DataError
from ecg_keras.io.records import read_any


def test_wide_csv_is_read_in_linear_time(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(",".join(f"{v:.3f}" for v in row) for row in rng.normal(size=(3, 20_000))) + "\n")
    start = time.perf_counter()
    with pytest.raises(DataError, match="20000 columns and no lead names"):
        read_any(path, fs=500)
    text = tmp_path / "text.csv"
    cells = rng.normal(size=(3, 20_000)).round(3).astype(str)
    cells[2, 7] = "abc"
    text.write_text("\n".join(",".join(row) for row in cells) + "\n")
    with pytest.raises(DataError, match=r"row 3, column '7': 'abc' is not a number"):
        read_any(text, fs=500)
    # the per-column loop took ~80 s on these two files (> 400 s at 100,000 columns)
    assert time.perf_counter() - start < 15


def test_wide_transposed_csv_with_leads_still_reads(tmp_path):
    x = np.random.default_rng(1).normal(size=(12, 2500))
    path = tmp_path / "t.csv"
    path.write_text("\n".join(",".join(f"{v:.4f}" for v in row) for row in x) + "\n")
    rec = read_any(path, fs=500, leads="I II III aVR aVL aVF V1 V2 V3 V4 V5 V6".split())
    np.testing.assert_allclose(rec.signal, x.T, atol=1e-4)


BODY = bytes(range(256)) * 64
SHA = hashlib.sha256(BODY).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        kind = self.path.strip("/")
        self.send_response(200)
        if kind == "huge":
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
            self.wfile.write(b"x")
        elif kind == "trickle":  # no length, one byte every 0.2 s
            self.end_headers()
            for _ in range(50):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
        elif kind == "stall":
            self.send_header("Content-Length", "100")
            self.end_headers()
            time.sleep(3)
        elif kind == "truncated":
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:100])
        else:
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY if kind == "ok" else BODY[:-1] + b"!")


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.mark.parametrize("kind, match", [("huge", "announces 1000000000000 bytes"), ("trickle", "not complete after"),
                                         ("stall", "timed out|download failed"), ("truncated", "truncated|failed"),
                                         ("bad", "sha256")])
def test_failed_downloads_leave_nothing_and_say_why(tmp_path, server, kind, match):
    start = time.perf_counter()
    with pytest.raises((zoo.DownloadError, zoo.ChecksumError), match=match):
        zoo.download(f"{server}/{kind}", tmp_path / "cache" / "w.keras", SHA, timeout=0.5, deadline=1.0)
    assert time.perf_counter() - start < 6
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_writes_the_file_and_refuses_other_schemes(tmp_path, server):
    path = zoo.download(f"{server}/ok", tmp_path / "w.keras", SHA, timeout=2)
    assert path.read_bytes() == BODY
    with pytest.raises(zoo.DownloadError, match="only http"):
        zoo.download("file:///etc/passwd", tmp_path / "x", None)


def test_pretrained_download_failure_caches_nothing(tmp_path, server, monkeypatch, trained_run):
    from ecg_keras.export.release import release_run

    entry = release_run(trained_run, "demo", models_directory=tmp_path / "release")
    client = tmp_path / "client"
    client.mkdir()
    (client / zoo.MANIFEST).write_bytes((tmp_path / "release" / zoo.MANIFEST).read_bytes())
    monkeypatch.setattr(zoo, "DOWNLOAD_TIMEOUT", 0.5)
    monkeypatch.setattr(zoo, "DOWNLOAD_DEADLINE", 1.0)
    with pytest.raises(zoo.DownloadError, match="announces"):
        zoo.resolve_weights({**entry, "url": f"{server}/huge"}, client, cache_dir=tmp_path / "cache")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


@pytest.mark.parametrize("kind, match", [("huge", "announces 1000000000000 bytes"), ("trickle", "not complete after"),
                                         ("stall", "timed out|download failed")])
def test_dataset_downloads_are_bounded_too_and_leave_nothing(tmp_path, server, monkeypatch, kind, match):
    """The public datasets go through the same bounded download as the weights (ecg_keras.net)."""
    import importlib

    from ecg_keras.datasets import DataError

    dl = importlib.import_module("ecg_keras.datasets.download")  # the module (the package exports its function)

    monkeypatch.setattr(dl, "DOWNLOAD_TIMEOUT", 0.5)
    monkeypatch.setattr(dl, "DOWNLOAD_DEADLINE", 1.0)
    monkeypatch.setitem(dl.SOURCES, "ptbxl", dl.Source(server + "/", (dl.RemoteFile(kind, "ptbxl", extract=True),),
                                                       marker="ptbxl_database.csv", licence="test"))
    start = time.perf_counter()
    with pytest.raises(DataError, match=match):
        dl.download("ptbxl", tmp_path / "dest")
    assert time.perf_counter() - start < 6
    assert list((tmp_path / "dest").iterdir()) == []
