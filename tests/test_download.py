"""Download + extraction + checksums against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import functools
import hashlib
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from ecg_keras.datasets import DataError, load_icbeb2018, load_ptbxl
from ecg_keras.cli.data import main
from ecg_keras.datasets.download import PTBXL_ZIP, download, find_root

sys.path.insert(0, str(Path(__file__).parent))
from ptbxl_fixture import write_ptbxl_fixture  # noqa: E402

TOP = PTBXL_ZIP[:-4]  # the zip's top-level folder, as in the real archive


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, base URL) of a real http.server in a thread."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("ECG_KERAS_DATA", str(tmp_path / "data_root"))
    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _zip_tree(src: Path, archive: Path, top: str) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                z.write(f, f"{top}/{f.relative_to(src).as_posix()}")


@pytest.fixture
def ptbxl_zip(server, tmp_path, scp_statements_csv):
    """Serve a small PTB-XL zip (with a PhysioNet-style SHA256SUMS.txt); returns (sha256, base URL)."""
    served, url = server
    src = write_ptbxl_fixture(tmp_path / "src", scp_statements_csv, n_records=5, sampling_rates=(100,), n_unlabeled=0)
    lines = [f"{_sha256(f)} {f.relative_to(src).as_posix()}" for f in sorted(src.rglob("*")) if f.is_file()]
    (src / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    _zip_tree(src, served / PTBXL_ZIP, TOP)
    return _sha256(served / PTBXL_ZIP), url


def test_download_extract_checksum(ptbxl_zip, tmp_path):
    digest, url = ptbxl_zip
    dest = tmp_path / "dest"
    root = download("ptbxl", dest, base_url=url, file_hashes={PTBXL_ZIP: digest})
    assert root == dest.resolve() / "ptbxl" / TOP
    assert (root / "ptbxl_database.csv").is_file() and (root / "records100/00000/00005_lr.dat").is_file()
    assert not list(dest.glob("*_archive"))  # the archive is removed after extraction
    records = load_ptbxl(root, cache_dir=False)
    assert records.signals.shape == (5, 1000, 12) and records.name == "ptbxl"
    # present already: no network needed
    assert download("ptbxl", dest, base_url="http://127.0.0.1:9/") == root


def test_download_wrong_checksum(ptbxl_zip, tmp_path):
    _, url = ptbxl_zip
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="checksum mismatch"):
        download("ptbxl", dest, base_url=url, file_hashes={PTBXL_ZIP: "0" * 64})
    assert list(dest.iterdir()) == []  # neither the archive nor an extracted tree
    assert find_root(dest, "ptbxl_database.csv") is None


def test_download_verifies_sha256sums(ptbxl_zip, server, tmp_path):
    served, url = server
    archive = served / PTBXL_ZIP
    with zipfile.ZipFile(archive) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files[f"{TOP}/ptbxl_database.csv"] += b"\n"  # contents no longer match SHA256SUMS.txt
    with zipfile.ZipFile(archive, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    with pytest.raises(DataError, match=r"ptbxl_database.csv: sha256 differs from .*SHA256SUMS.txt"):
        download("ptbxl", tmp_path / "dest", base_url=url)


def test_download_errors(server, tmp_path):
    _, url = server
    with pytest.raises(DataError, match="download failed.*404"):
        download("ptbxl", tmp_path / "dest", base_url=url)
    with pytest.raises(ValueError, match="unknown dataset"):
        download("mitbih", tmp_path / "dest")


@pytest.mark.parametrize("member", ["../outside.txt", "/abs.txt", "a/../../outside.txt"])
def test_download_refuses_a_zip_member_outside_its_folder(server, tmp_path, member):
    served, url = server
    with zipfile.ZipFile(served / PTBXL_ZIP, "w") as z:
        z.writestr(f"{TOP}/ptbxl_database.csv", "ecg_id\n")
        z.writestr(member, "escaped")
    dest = tmp_path / "d" / "dest"
    with pytest.raises(DataError, match="not an archive that could be extracted"):
        download("ptbxl", dest, base_url=url, verify=False)
    assert list(dest.iterdir()) == [] and not list(tmp_path.rglob("outside.txt"))
    assert not (tmp_path / "abs.txt").exists()


def test_download_cli_env_base_url(ptbxl_zip, tmp_path, monkeypatch, capsys):
    digest, url = ptbxl_zip
    monkeypatch.setenv("ECG_KERAS_DOWNLOAD_URL", url)
    dest = tmp_path / "cli"
    assert main(["download", "ptbxl", "--dest", str(dest), "--hash", f"{PTBXL_ZIP}={digest}"]) == 0
    assert capsys.readouterr().out.strip().endswith(TOP)
    assert main(["download", "ptbxl", "--dest", str(tmp_path / "bad"), "--hash", f"{PTBXL_ZIP}={'1' * 64}"]) == 1


def test_download_icbeb2018(server, tmp_path):
    served, url = server
    rows = []
    for part in (1, 2, 3):
        src = tmp_path / f"TrainingSet{part}"
        src.mkdir()
        for k in range(3):
            name = f"A{part * 10 + k:04d}"
            data = np.random.default_rng(part * 10 + k).normal(0, 0.2, (12, 3000))
            scipy.io.savemat(src / f"{name}.mat", {"ECG": {"sex": "Male", "age": 60, "data": data}})
            rows.append([name, (part * 3 + k) % 9 + 1])
        _zip_tree(src, served / f"TrainingSet{part}.zip", f"TrainingSet{part}")
    pd.DataFrame(rows, columns=["Recording", "First_label"]).to_csv(served / "REFERENCE.csv", index=False)
    hashes = {f: _sha256(served / f) for f in ("REFERENCE.csv", "TrainingSet1.zip", "TrainingSet2.zip",
                                               "TrainingSet3.zip")}
    # ICBEB publishes no hashes: without --hash the download is refused unless verification is waived
    with pytest.raises(DataError, match="cannot be verified.*TrainingSet3.zip.*--no-verify"):
        download("icbeb2018", tmp_path / "unverified", base_url=url, file_hashes={k: v for k, v in hashes.items()
                                                                                 if k != "TrainingSet3.zip"})
    with pytest.raises(DataError, match="cannot be verified"):  # nor is the unverified tree reused silently
        download("icbeb2018", tmp_path / "unverified", base_url="http://127.0.0.1:9/")
    assert download("icbeb2018", tmp_path / "unverified", base_url=url, verify=False).is_dir()
    root = download("icbeb2018", tmp_path / "icbeb", base_url=url, file_hashes=hashes)
    records = load_icbeb2018(root, cache_dir=False)
    assert len(records) == 9 and [len(s) for s in records.signals] == [600] * 9


def test_synthetic_cli(tmp_path):
    dest = tmp_path / "syn"
    assert main(["synthetic", "--dest", str(dest), "--n-records", "30", "--seed", "1"]) == 0
    records = load_ptbxl(dest, cache_dir=False)
    assert records.name == "ptbxl-synthetic" and records.synthetic and len(records) == 30
