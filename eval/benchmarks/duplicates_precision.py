"""Precision of the duplicate grouping (recommender/duplicates.py) on a read sample of bdci2019 pairs.

    python -m eval.benchmarks.duplicates_precision --print > /tmp/pairs.tsv   # the sample with titles, to read
    python -m eval.benchmarks.duplicates_precision                            # precision from the judgements

The sample is drawn with a fixed seed from the groups built over ``../shared/data/bdci2019/results.jsonl``,
stratified because the strata fail differently:

* ``exact-short`` / ``exact-long``: one pair per group of equal normalised titles, titles of at most / more
  than 8 characters (a short generic title is where two different works could share a name);
* ``near``: every pair joined by bigram Jaccard >= the threshold but with different titles (all of them: there
  are few);
* ``below-0.7`` / ``below-0.6``: pairs *not* grouped, Jaccard in [0.7, 0.8) / [0.6, 0.7), MinHash LSH candidates
  at the lower threshold: what lowering the threshold would add, read to decide whether it should move.

``duplicates_judged.tsv`` (beside this script) holds, per pair, the stratum, the two ids, the reader's
judgement (``same``: one piece of work; ``different``; ``unsure``) and a short reason, never the titles (the data
stays in ../shared). Precision is the share judged ``same`` among grouped pairs, ``unsure`` counted as not the
same (the conservative reading), with a Wilson 95% interval (scipy).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
import sys
from pathlib import Path

from scipy.stats import binomtest

from recommender.duplicates import MIN_CHARS, THRESHOLD, DuplicateGroups, bigrams, normalise_title

HERE = Path(__file__).resolve().parent
JUDGED = HERE / "duplicates_judged.tsv"
RESULTS = HERE.parents[1].parent / "shared" / "data" / "bdci2019" / "results.jsonl"
GROUPED = ("exact-short", "exact-long", "near")
SAMPLE = {"exact-short": 40, "exact-long": 40, "below-0.7": 30, "below-0.6": 15}
SEED = 21
READ_THRESHOLD = 0.8  # the near threshold when the sample was drawn and read (the shipped one is THRESHOLD)


def _jaccard(a: str, b: str) -> float:
    x, y = bigrams(normalise_title(a)), bigrams(normalise_title(b))
    return len(x & y) / len(x | y) if x and y else 0.0


def sample_pairs(titles: dict[str, str]) -> list[tuple[str, str, str, float]]:
    """(stratum, id a, id b, Jaccard) for the read sample, in a fixed order."""
    rng = random.Random(SEED)
    groups = DuplicateGroups(threshold=READ_THRESHOLD, min_chars=0)  # the grouping as it was when read
    groups.build(titles.items())
    near = set(groups.near_pairs())
    exact: dict[str, list[tuple[str, str]]] = {"exact-short": [], "exact-long": []}
    for members in sorted(groups.groups()):
        same = [(a, b) for a, b in itertools.combinations(members, 2) if (a, b) not in near]
        if same:
            pair = rng.choice(same)
            exact["exact-short" if len(normalise_title(titles[pair[0]])) <= 8 else "exact-long"].append(pair)
    out: list[tuple[str, str, str, float]] = []
    for stratum, pairs in exact.items():
        for a, b in sorted(rng.sample(pairs, min(SAMPLE[stratum], len(pairs)))):
            out.append((stratum, a, b, 1.0))
    out += [("near", a, b, _jaccard(titles[a], titles[b])) for a, b in sorted(near)]
    lower = DuplicateGroups(threshold=0.6, min_chars=0)
    lower.build(titles.items())
    bands: dict[str, list[tuple[str, str]]] = {"below-0.7": [], "below-0.6": []}
    for a, b in lower.near_pairs():
        j = _jaccard(titles[a], titles[b])
        if 0.7 <= j < READ_THRESHOLD:
            bands["below-0.7"].append((a, b))
        elif 0.6 <= j < 0.7:
            bands["below-0.6"].append((a, b))
    for stratum, pairs in bands.items():
        for a, b in sorted(rng.sample(pairs, min(SAMPLE[stratum], len(pairs)))):
            out.append((stratum, a, b, _jaccard(titles[a], titles[b])))
    return out


def wilson(k: int, n: int) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def read_judged(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def shipped(row: dict[str, str]) -> bool:
    """Whether the shipped rule (THRESHOLD, MIN_CHARS) groups this read pair."""
    return int(row["chars"]) >= MIN_CHARS and float(row["jaccard"]) >= THRESHOLD


def report(rows: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    """Per stratum, over the pairs grouped as read (Jaccard >= 0.8, any length) and over the pairs the shipped
    rule groups: pairs, judged same, unsure, precision and its interval."""
    strata = sorted({r["stratum"] for r in rows}, key=lambda s: (s not in GROUPED, s))
    selections = {name: [r for r in rows if r["stratum"] == name] for name in strata}
    selections["grouped as read (all)"] = [r for r in rows if r["stratum"] in GROUPED]
    selections[f"grouped as shipped (Jaccard >= {THRESHOLD}, >= {MIN_CHARS} chars)"] = [r for r in rows if shipped(r)]
    out: dict[str, dict[str, float]] = {}
    for name, chosen in selections.items():
        n = len(chosen)
        same = sum(r["judgement"] == "same" for r in chosen)
        unsure = sum(r["judgement"] == "unsure" for r in chosen)
        low, high = wilson(same, n) if n else (0.0, 0.0)
        out[name] = {"pairs": n, "same": same, "unsure": unsure, "precision": same / n if n else 0.0,
                     "ci_low": low, "ci_high": high}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--judged", type=Path, default=JUDGED)
    parser.add_argument("--print", dest="show", action="store_true", help="print the sample with titles to read")
    args = parser.parse_args(argv)
    if args.show:
        if not args.results.exists():
            print(f"error: {args.results} not found (the shared bdci2019 data is needed to print titles)",
                  file=sys.stderr)
            return 2
        titles = {r["id"]: r["title"] for r in map(json.loads, args.results.open(encoding="utf-8"))}
        print("stratum\tid_a\tid_b\tjaccard\tchars\ttitle_a\ttitle_b")
        for stratum, a, b, j in sample_pairs(titles):
            chars = min(len(normalise_title(titles[a])), len(normalise_title(titles[b])))
            print(f"{stratum}\t{a}\t{b}\t{j:.3f}\t{chars}\t{titles[a]}\t{titles[b]}")
        return 0
    table = report(read_judged(args.judged))
    print("| stratum | pairs | same | unsure | different | precision (same / pairs) | Wilson 95% |")
    print("|---|---|---|---|---|---|---|")
    for name, f in table.items():
        different = f["pairs"] - f["same"] - f["unsure"]
        print(f"| {name} | {f['pairs']} | {f['same']} | {f['unsure']} | {different} | {f['precision']:.3f} | "
              f"{f['ci_low']:.3f}-{f['ci_high']:.3f} |")
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
