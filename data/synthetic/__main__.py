"""Command line: ``python -m data.synthetic world|results ...`` (writes files, prints their paths)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .world import generate_world
from .writer import write_results, write_world


def main(argv: list[str] | None = None) -> int:
    """Entry point; kept dependency-free (argparse) so the data package stands alone."""
    ap = argparse.ArgumentParser(prog="python -m data.synthetic", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("world", help="generate the demo world into a directory")
    w.add_argument("--out", type=Path, required=True)
    w.add_argument("--seed", type=int, default=7)
    w.add_argument("--results", type=int, default=30000)
    w.add_argument("--needs", type=int, default=2500)
    w.add_argument("--enterprises", type=int, default=241)
    w.add_argument("--funds", type=int, default=204)
    r = sub.add_parser("results", help="stream a large result corpus to JSONL (.gz allowed)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--n", type=int, default=800000)
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.cmd == "world":
        world = generate_world(args.seed, args.results, args.needs, args.enterprises, args.funds)
        paths = write_world(world, args.out)
        for kind, path in paths.items():
            print(f"{kind}\t{path}")
    else:
        print(write_results(args.out, args.seed, args.n, progress=not args.quiet))
    print(f"done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
