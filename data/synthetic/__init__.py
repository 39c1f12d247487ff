"""Seeded, deterministic synthetic "demo world" for techmatch.

Why: a fresh clone must be able to demo and test the matchmaking recommender without any external
data.  The world reproduces a university technology-transfer harbour at scale: 30,000 research
results (patents, papers, prototypes), ~4.7% of them transferable, 241 partner enterprises posing
2,500 technical needs (企业出题), and 204 seed/angel funds, plus graded ground truth.

    from data.synthetic import generate_world, write_world
    world = generate_world(seed=7)              # ~3 s
    write_world(world, Path("var/demo"))        # results.jsonl, needs.jsonl, qrels.txt, ...

    from data.synthetic import iter_results, write_results
    write_results(Path("var/results_800k.jsonl.gz"), seed=7, n=800_000)   # streamed, bounded memory

Command line: ``python -m data.synthetic world --out var/demo`` and
``python -m data.synthetic results --out var/r.jsonl --n 800000``.
"""

from .vocabulary import Vocabulary, load_vocabulary
from .world import TRANSFERABLE_RATE, World, generate_world, iter_results
from .writer import write_jsonl, write_qrels, write_results, write_world

__all__ = [
    "TRANSFERABLE_RATE",
    "Vocabulary",
    "World",
    "generate_world",
    "iter_results",
    "load_vocabulary",
    "write_jsonl",
    "write_qrels",
    "write_results",
    "write_world",
]
