"""``ecg-keras data {download,synthetic,summary} ...``: datasets from the command line.

    ecg-keras data download ptbxl --dest DIR [--base-url URL] [--hash NAME=SHA256]
    ecg-keras data synthetic --dest DIR [--n-records N] [--seed S]
    ecg-keras data summary PATH [--sampling-rate HZ] [--cache-dir DIR | --no-cache]
"""
from __future__ import annotations

import argparse
import sys

from ecg_keras.cli import command


@command
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ecg-keras data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="download and extract a public dataset")
    d.add_argument("name", choices=["ptbxl", "icbeb2018"])
    d.add_argument("--dest", default=None, help="target folder (default: $ECG_KERAS_DATA/<name>)")
    d.add_argument("--base-url", default=None, help="mirror base URL (default: the official source)")
    d.add_argument("--hash", action="append", default=[], metavar="FILE=SHA256",
                   help="expected hash of a remote file (repeatable)")
    d.add_argument("--no-verify", action="store_true",
                   help="accept data that cannot be verified (no SHA256SUMS.txt and no --hash)")
    d.add_argument("--force", action="store_true", help="download again even if present")
    s = sub.add_parser("synthetic", help="write a synthetic PTB-XL-layout dataset (labelled SYNTHETIC)")
    s.add_argument("--dest", required=True)
    s.add_argument("--n-records", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("summary", help="print a summary of a dataset folder")
    m.add_argument("path")
    m.add_argument("--sampling-rate", type=int, default=None)
    m.add_argument("--cache-dir", default=None, help="signal cache folder (default: under $ECG_KERAS_DATA)")
    m.add_argument("--no-cache", action="store_true", help="do not read or write the signal cache")
    args = parser.parse_args(argv)

    if args.command == "download":
        from ecg_keras.datasets.download import download

        hashes = {}
        for item in args.hash:
            file, sep, digest = item.partition("=")
            if not sep:
                parser.error(f"--hash expects FILE=SHA256, got {item!r}")
            hashes[file] = digest
        root = download(args.name, args.dest, base_url=args.base_url, file_hashes=hashes, force=args.force,
                        verify=not args.no_verify)
        print(root)
    elif args.command == "synthetic":
        from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

        kwargs = {"seed": args.seed}
        if args.n_records is not None:
            kwargs["n_records"] = args.n_records
        print(generate_synthetic_ptbxl(args.dest, **kwargs))
    else:
        from ecg_keras.datasets import load
        from ecg_keras.datasets.summary import summarize

        records = load(args.path, sampling_rate=args.sampling_rate,
                       cache_dir=False if args.no_cache else args.cache_dir)
        print(summarize(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
