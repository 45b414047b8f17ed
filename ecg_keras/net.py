"""Bounded HTTP downloads, below every layer that fetches something (released weights in
:mod:`ecg_keras.zoo`, the public datasets in :mod:`ecg_keras.datasets.download`): connect and read
timeouts, an overall deadline, a size cap, an optional sha256, and a temporary file renamed into
place only when all of them hold, so a failed download leaves nothing behind."""
from __future__ import annotations

from pathlib import Path

from ecg_keras.errors import ECGKerasError


class ChecksumError(ECGKerasError, ValueError):
    """A file does not have the sha256 its manifest entry (or caller) states."""


class DownloadError(ECGKerasError, OSError):
    """A download failed (unreachable, timed out, too large, truncated); nothing was kept."""


def download(url: str, dest: str | Path, sha256_hex: str | None = None, *, timeout: float, deadline: float,
             max_bytes: int) -> Path:
    """``url`` (http or https) into ``dest``, written to a temporary file beside it and renamed only
    when complete (and, with ``sha256_hex``, matching): any failure leaves ``dest`` as it was.

    ``timeout`` bounds the connection and every read, ``deadline`` the whole download (a server
    trickling bytes), ``max_bytes`` its size, announced or received; each caller states its own.
    Failures are :class:`DownloadError` (a wrong sha256: :class:`ChecksumError`), naming the URL.
    """
    import hashlib
    import time
    import urllib.error
    import urllib.request

    from ecg_keras.files import atomic_path

    if not url.lower().startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http(s) URLs are downloaded")
    dest = Path(dest)
    start = time.monotonic()
    digest = hashlib.sha256()
    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            if announced is not None and announced.isdigit() and int(announced) > max_bytes:
                raise DownloadError(f"{url}: the server announces {int(announced)} bytes, more than the "
                                    f"{max_bytes} accepted; nothing was kept")
            received = 0
            with open(tmp, "wb") as f:
                while chunk := response.read1(1 << 16):  # what has arrived: the deadline is checked per chunk
                    received += len(chunk)
                    if received > max_bytes:
                        raise DownloadError(f"{url}: more than {max_bytes} bytes; nothing was kept")
                    if time.monotonic() - start > deadline:
                        raise DownloadError(f"{url}: not complete after {deadline:g} s ({received} bytes); "
                                            "nothing was kept")
                    digest.update(chunk)
                    f.write(chunk)
            if announced is not None and announced.isdigit() and received != int(announced):
                raise DownloadError(f"{url}: truncated download ({received} of {announced} bytes); nothing was kept")
            if sha256_hex is not None and digest.hexdigest() != sha256_hex:
                raise ChecksumError(f"{url}: downloaded file has sha256 {digest.hexdigest()}, expected "
                                    f"{sha256_hex} (file modified or corrupted); nothing was kept")
    except (DownloadError, ChecksumError):
        raise
    except (urllib.error.URLError, OSError, ValueError) as err:  # incl. timeouts, resets, IncompleteRead
        reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", None) or err
        raise DownloadError(f"{url}: download failed ({type(err).__name__}: {reason}); nothing was kept") from None
    except Exception as err:  # noqa: BLE001 - http.client raises its own (e.g. IncompleteRead, BadStatusLine)
        raise DownloadError(f"{url}: download failed ({type(err).__name__}: {err}); nothing was kept") from None
    return dest
