"""Speed of the static word-vector embedder against e5-small, and indexing the demo world's full abstracts with it.

    techmatch distil-static                                   # once: the model in ~/.local/share/techmatch
    techmatch demo-world --out /tmp/world                     # the 30,000-result demo world
    python -m eval.benchmarks.static_speed --world /tmp/world [--texts 400] [--json]

1. Texts per second, one process, the same texts for both: the first ``--texts`` demo results' full texts
   (title, keywords and abstract: what the static signal embeds) and their titles (what the dense signal
   embeds), passage role, e5-small on PyTorch (float32, the batch commands' runtime) without its cache.
2. Building a static-only index (``--signals static``: full texts, exact FAISS) over all the world's results,
   and the same with the default lexical signals beside it (static + bm25 + char), wall time.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Annotated

import typer

from embeddings.factory import create_embedder
from recommender.pipeline import new_index
from recommender.records import load_results
from recommender.settings import PipelineSettings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _rate(embedder, texts: list[str]) -> tuple[float, float]:
    embedder.embed_passages(texts[:8], progress=False)  # one-off costs (tracing, first allocation) excluded
    start = time.perf_counter()
    embedder.embed_passages(texts, progress=False)
    seconds = time.perf_counter() - start
    return round(len(texts) / seconds, 1), round(seconds, 2)


@app.command()
def main(
    world: Annotated[Path, typer.Option("--world", help="a folder written by 'techmatch demo-world'")],
    texts: Annotated[int, typer.Option("--texts", min=10, help="texts timed with both embedders")] = 400,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Texts/s of the static embedder and of e5-small on the same texts; a static index of the whole world."""
    settings = PipelineSettings()
    results = load_results(world / "results.jsonl")
    sample = results[:texts]
    full = [r.as_passage().text for r in sample]
    titles = [r.as_passage().dense_text for r in sample]
    static = create_embedder(f"static:{settings.static_model}")
    e5 = create_embedder("e5-small", None, "torch")
    figures: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        "texts": len(sample), "mean_chars_full": round(sum(map(len, full)) / len(full)),
        "mean_chars_title": round(sum(map(len, titles)) / len(titles)),
    }
    for name, embedder in (("static", static), ("e5", e5)):
        for kind, batch in (("full", full), ("title", titles)):
            rate, seconds = _rate(embedder, batch)
            figures[f"{name}_{kind}_texts_per_s"] = rate
            figures[f"{name}_{kind}_seconds"] = seconds
    figures["speedup_full"] = round(figures["static_full_texts_per_s"] / figures["e5_full_texts_per_s"], 1)
    figures["speedup_title"] = round(figures["static_title_texts_per_s"] / figures["e5_title_texts_per_s"], 1)
    for signals in (["static"], ["static", "bm25", "char"]):
        index = new_index("result", settings.model_copy(update={"signals": signals}))
        start = time.perf_counter()
        index.build(results)
        figures[f"index_{'+'.join(signals)}_{len(results)}_seconds"] = round(time.perf_counter() - start, 1)
        figures[f"index_{'+'.join(signals)}_timings"] = {k: round(v, 1) for k, v in index.timings.items()}
    typer.echo(json.dumps(figures, ensure_ascii=False) if as_json else json.dumps(figures, ensure_ascii=False,
                                                                                   indent=1))


if __name__ == "__main__":
    app()
