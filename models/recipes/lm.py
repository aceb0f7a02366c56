"""Train and export the bundled GPT-style language models (kjv-gpt, tiny-lm) as ONNX.

What it does
  1. Extracts the King James Bible from the Debian package bible-kjv
     (`bible -f Gen1:1-Rev22:21` prints all 31,102 verses, one per line,
     "Ge1:1 In the beginning ..."); the reference is stripped, so one document
     is the text of one verse.  Every 50th verse (index % 50 == 49, 622 verses)
     is held out for evaluation, the rest (30,480) is the training set.
  2. Trains a byte-level BPE tokenizer in pure Python, GPT-2 style: GPT-2's
     pre-tokenisation regex and bytes-to-unicode map, merges learned from the
     training verses' word frequencies with incremental pair-count updates.
     Ids: 0..255 byte tokens (in byte order), then one id per merge, then
     "<|endoftext|>" as the last id.  Saved as a Hugging Face tokenizer.json
     (ByteLevel pre-tokenizer/post-processor/decoder, BPE model, merges as
     [a, b] pairs) that @huggingface/tokenizers (JS) loads and encodes
     identically.
  3. Trains a decoder-only transformer (pre-LayerNorm, learned absolute
     position embeddings, grouped-query attention, GELU MLP 4x, tied
     input/output embeddings, no dropout) on the training verses joined by "<|endoftext|>", with random
     context-length windows, AdamW and a warm-up + cosine schedule for a fixed
     number of steps.  Prints the held-out per-token perplexity (each held-out
     verse scored as <|endoftext|> verse <|endoftext|>, predicting everything
     after the first token), samples at temperature 0.8 and the fraction of
     generated words (alphabetic, lowercased) found in /usr/share/dict/words.
  4. Exports ONNX (opset 17, ir_version 8) in the Hugging Face Optimum
     convention for decoder models with past key values
     (text-generation-with-past):
       inputs   input_ids        int64   [batch_size, sequence_length]
                attention_mask   int64   [batch_size, past_sequence_length + sequence_length]
                position_ids     int64   [batch_size, sequence_length]
                past_key_values.{i}.key / .value
                                 float32 [batch_size, n_kv_head, past_sequence_length, head_dim]
       outputs  logits           float32 [batch_size, sequence_length, vocab_size]
                present.{i}.key / .value
                                 float32 [batch_size, n_kv_head, past_sequence_length + sequence_length, head_dim]
     Query i (absolute key index P+i, P = past length) attends to key j iff
     j <= P+i and attention_mask[b, j] == 1; masked scores are set to
     float32 min (finite, so fully masked pad rows give no NaN).  Positions
     come only from position_ids, so a left-padded row gives the logits of
     the unpadded row.  past_sequence_length may be 0.
  5. Writes model.onnx, tokenizer.json and model.json for
       * kjv-gpt  -> models/kjv-gpt/          (4 layers, 4 query heads sharing
                                               1 key/value head, d_model 192,
                                               vocab 4096, context 256)
       * tiny-lm  -> tests/fixtures/tiny-lm/  (2 layers, 2 heads each with its
                                               own key/value head, d_model 64,
                                               vocab 512, context 64, a few
                                               hundred steps; quality is not
                                               the point, its shapes are)

How to run (from the repository root)
  /usr/bin/python3 models/recipes/lm.py                 # both models
  /usr/bin/python3 models/recipes/lm.py --only tiny     # just tests/fixtures/tiny-lm
  /usr/bin/python3 models/recipes/lm.py --only kjv      # just models/kjv-gpt
  Optional: --ref-dir DIR writes DIR/<name>.ref.json (prompt ids, torch
  logits, greedy continuation, tokenizer test cases) for cross-checking the
  ONNX model and tokenizer from JavaScript.

Requirements
  Debian 12's interpreter /usr/bin/python3 and packages
    bible-kjv (text), wamerican (/usr/share/dict/words),
    python3-torch, python3-onnx, python3-numpy, python3-regex
  (apt-get install bible-kjv wamerican python3-torch python3-onnx
   python3-numpy python3-regex).  Uses at most 2 CPU threads.

Run time (2 CPU threads)
  Extraction and each tokenizer take a few seconds.  kjv-gpt trains 700 steps
  of 16 x 256 tokens (~2.9M tokens, ~2.8 epochs): 1.76 s/step on an idle
  2-core machine, i.e. ~21 min, plus ~1 min for evaluation, sampling and
  export (the committed run took 47 min because the machine was shared with
  other jobs, load 4-10).  tiny-lm: ~25 s in all.  Seeds are fixed; with the
  same package versions and thread count the run is reproducible (only
  train_seconds in model.json varies).
"""

import argparse
import heapq
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict

import numpy as np
import onnx
import regex
import torch
import torch.nn as nn
import torch.nn.functional as F

RECIPE = "models/recipes/lm.py"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EOS = "<|endoftext|>"
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
HOLDOUT_EVERY = 50
N_VERSES = 31102
DICT_PATH = "/usr/share/dict/words"
OPSET = 17
IR_VERSION = 8
THREADS = 2

CONFIGS = {
    "kjv": dict(
        name="kjv-gpt",
        out_dir="models/kjv-gpt",
        description="A small GPT-style language model trained on the King James Bible (Debian package bible-kjv).",
        vocab_size=4096, n_layer=4, n_head=4, n_kv_head=1, d_model=192, context=256,
        steps=700, batch_size=16, lr=2e-3, min_lr_frac=0.1, warmup=50, weight_decay=0.1,
        seed=1611, n_samples=40, sample_tokens=80,
    ),
    "tiny": dict(
        name="tiny-lm",
        out_dir="tests/fixtures/tiny-lm",
        description="A tiny GPT-style test fixture (differently shaped from kjv-gpt) trained briefly on the King James Bible (Debian package bible-kjv).",
        vocab_size=512, n_layer=2, n_head=2, n_kv_head=2, d_model=64, context=64,
        steps=300, batch_size=16, lr=3e-3, min_lr_frac=0.1, warmup=30, weight_decay=0.1,
        seed=7, n_samples=8, sample_tokens=40,
    ),
}

TOKENIZER_TEST_TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    "Ézéchiel — 3:16, naïve café; 1234567 apples & 89 pears!?",
    "Line one\nLine two\n\n  indented\tand tabbed   trailing  ",
    "The LORD's servants don't, won't, can't; they'll say \"Amen\" (verily).",
    "日本語のテキスト and emoji 🙂 mixed with ASCII.",
    "And it came to pass<|endoftext|>Jesus wept.",
]


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def load_kjv():
    """All verses of the KJV, in canonical order, without references."""
    out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], stdin=subprocess.DEVNULL,
                         capture_output=True, check=True).stdout.decode("utf-8")
    ref = re.compile(r"^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ (.*)$")
    verses = []
    for line in out.split("\n"):
        if not line.strip():
            continue
        m = ref.match(line)
        if not m:
            raise RuntimeError(f"unexpected line from bible: {line!r}")
        verses.append(" ".join(m.group(1).split()))
    if len(verses) != N_VERSES:
        raise RuntimeError(f"expected {N_VERSES} verses, got {len(verses)}")
    train = [v for i, v in enumerate(verses) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
    held = [v for i, v in enumerate(verses) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    return train, held


def package_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                              check=True).stdout.decode().strip()
    except Exception:
        return "unknown"


# --------------------------------------------------------------------------
# Byte-level BPE tokenizer
# --------------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}
PAT = regex.compile(GPT2_PATTERN)


def pretokenize(text):
    return ["".join(BYTE_ENCODER[b] for b in piece.encode("utf-8")) for piece in PAT.findall(text)]


def train_bpe(texts, vocab_size):
    """Learn merges until there are vocab_size - 1 tokens (+ EOS = vocab_size).

    Pair counts are updated incrementally: only words containing the merged
    pair are revisited; the best pair comes from a lazy max-heap (ties broken
    by the smaller token ids, so the result is deterministic)."""
    word_counts = Counter()
    for t in texts:
        word_counts.update(pretokenize(t))
    tokens = [BYTE_ENCODER[b] for b in range(256)]
    tok2id = {t: i for i, t in enumerate(tokens)}
    words, counts = [], []
    for w, c in sorted(word_counts.items()):
        words.append([tok2id[ch] for ch in w])
        counts.append(c)
    pair_counts = defaultdict(int)
    pair_where = defaultdict(set)
    for wi, syms in enumerate(words):
        c = counts[wi]
        for p in zip(syms, syms[1:]):
            pair_counts[p] += c
            pair_where[p].add(wi)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(tokens) < vocab_size - 1 and heap:
        negc, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negc or negc == 0:
            continue  # stale heap entry
        a, b = pair
        new_str = tokens[a] + tokens[b]
        if new_str in tok2id:  # same string reachable by another split: no new token
            new_id = tok2id[new_str]
        else:
            new_id = len(tokens)
            tokens.append(new_str)
            tok2id[new_str] = new_id
        merges.append((tokens[a], tokens[b]))
        changed = set()
        for wi in sorted(pair_where.pop(pair)):
            syms = words[wi]
            out, i, n = [], 0, len(syms)
            while i < n:
                if i < n - 1 and syms[i] == a and syms[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            if len(out) == n:
                continue
            c = counts[wi]
            for p in zip(syms, syms[1:]):
                pair_counts[p] -= c
                changed.add(p)
            for p in zip(out, out[1:]):
                pair_counts[p] += c
                pair_where[p].add(wi)
                changed.add(p)
            words[wi] = out
        pair_counts.pop(pair, None)
        changed.discard(pair)
        for p in changed:
            c = pair_counts[p]
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_counts.pop(p, None)
    vocab = {t: i for i, t in enumerate(tokens)}
    vocab[EOS] = len(tokens)
    return vocab, merges


class BPETokenizer:
    """Encoder/decoder equivalent to HF tokenizers' ByteLevel + BPE pipeline."""

    def __init__(self, vocab, merges):
        self.vocab = dict(vocab)
        self.inv = {i: t for t, i in self.vocab.items()}
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: r for r, m in enumerate(self.merges)}
        self.eos_id = self.vocab[EOS]
        self.cache = {}

    @classmethod
    def from_file(cls, path):
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        vocab = dict(j["model"]["vocab"])
        for t in j["added_tokens"]:
            vocab[t["content"]] = t["id"]
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in j["model"]["merges"]]
        return cls(vocab, merges)

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        syms = list(word)
        while len(syms) > 1:
            best, best_rank = None, None
            for p in zip(syms, syms[1:]):
                r = self.ranks.get(p)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = p, r
            if best is None:
                break
            out, i = [], 0
            while i < len(syms):
                if i < len(syms) - 1 and syms[i] == best[0] and syms[i + 1] == best[1]:
                    out.append(syms[i] + syms[i + 1])
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            syms = out
        ids = [self.vocab[s] for s in syms]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for k, part in enumerate(text.split(EOS)):
            if k:
                ids.append(self.eos_id)
            for w in pretokenize(part):
                ids.extend(self._bpe(w))
        return ids

    def decode(self, ids):
        out, buf = [], []
        for i in ids:
            if i == self.eos_id:
                out.append(bytes(buf).decode("utf-8", errors="replace"))
                out.append(EOS)
                buf = []
            else:
                buf.extend(BYTE_DECODER[ch] for ch in self.inv[i])
        out.append(bytes(buf).decode("utf-8", errors="replace"))
        return "".join(out)

    def to_hf_json(self):
        base = {k: v for k, v in self.vocab.items() if k != EOS}
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [{"id": self.eos_id, "content": EOS, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                              "use_regex": True},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                               "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False,
                      "vocab": dict(sorted(base.items(), key=lambda kv: kv[1])),
                      "merges": [list(m) for m in self.merges]},
        }


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

NEG = torch.finfo(torch.float32).min


class Block(nn.Module):
    """Pre-LN transformer block.  Attention has n_head query heads sharing n_kv_head key/value heads
    (grouped-query attention; n_kv_head == 1 is multi-query, n_kv_head == n_head the classic form).
    Fewer key/value heads shrink the KV cache that every decode step reads and writes, which is what
    makes batched decoding cheap."""

    def __init__(self, d, h, kvh):
        super().__init__()
        assert h % kvh == 0
        self.h, self.kvh, self.hd = h, kvh, d // h
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, d + 2 * kvh * self.hd)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x, allowed, past_k=None, past_v=None):
        """allowed: bool [B or 1, 1, S, K] (K = past + S).  Returns x, k, v (k, v: [B, kvh, K, hd])."""
        B, S, D = x.shape
        kvh, g, hd = self.kvh, self.h // self.kvh, self.hd
        q, k, v = self.qkv(self.ln1(x)).split([D, kvh * hd, kvh * hd], dim=2)
        # query head j*g + i uses key/value head j: group the g query heads of each kv head as extra rows
        q = q.view(B, S, kvh, g, hd).permute(0, 2, 3, 1, 4).reshape(B, kvh, g * S, hd)
        k = k.view(B, S, kvh, hd).transpose(1, 2)
        v = v.view(B, S, kvh, hd).transpose(1, 2)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # [B, kvh, g * S, K]
        att = att.view(B, kvh, g, S, -1).masked_fill(~allowed.unsqueeze(1), NEG)  # finite, so fully masked rows stay NaN-free
        att = torch.softmax(att, dim=-1).view(B, kvh, g * S, -1)
        y = torch.matmul(att, v).view(B, kvh, g, S, hd).permute(0, 3, 1, 2, 4).reshape(B, S, D)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc(self.ln2(x))))
        return x, k, v


class GPT(nn.Module):
    def __init__(self, vocab_size, n_layer, n_head, n_kv_head, d_model, context):
        super().__init__()
        self.vocab_size, self.n_layer, self.n_head, self.n_kv_head, self.d_model, self.context = \
            vocab_size, n_layer, n_head, n_kv_head, d_model, context
        self.head_dim = d_model // n_head
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList([Block(d_model, n_head, n_kv_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)
        self.apply(self._init)
        for b in self.blocks:  # GPT-2 scaled init of residual projections
            nn.init.normal_(b.proj.weight, std=0.02 / math.sqrt(2 * n_layer))
            nn.init.normal_(b.fc2.weight, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    def _logits(self, x):
        # tied output embedding
        return torch.matmul(self.ln_f(x), self.wte.weight.t())

    def forward(self, idx):
        """Training / scoring path: full causal attention, positions 0..S-1."""
        B, S = idx.shape
        pos = torch.arange(S, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)[None]
        allowed = torch.ones(S, S, dtype=torch.bool).tril()[None, None]
        for blk in self.blocks:
            x, _, _ = blk(x, allowed)
        return self._logits(x)

    def forward_kv(self, input_ids, attention_mask, position_ids, past):
        """Optimum-style step: past is a list of (key, value), each [B, H, P, hd]."""
        S = input_ids.shape[1]
        K = attention_mask.shape[1]  # = P + S
        x = self.wte(input_ids) + self.wpe(position_ids)
        qpos = torch.arange(S, dtype=torch.int64).unsqueeze(1) + (K - S)  # absolute index of each query
        kpos = torch.arange(K, dtype=torch.int64).unsqueeze(0)
        causal = (kpos <= qpos).unsqueeze(0).unsqueeze(0)  # [1, 1, S, K]
        allowed = causal & (attention_mask == 1).unsqueeze(1).unsqueeze(2)  # [B, 1, S, K]
        presents = []
        for blk, (pk, pv) in zip(self.blocks, past):
            x, k, v = blk(x, allowed, pk, pv)
            presents.append((k, v))
        return self._logits(x), presents

    def empty_past(self, batch):
        z = torch.zeros(batch, self.n_kv_head, 0, self.head_dim)
        return [(z, z) for _ in range(self.n_layer)]


class OnnxWrapper(nn.Module):
    def __init__(self, gpt):
        super().__init__()
        self.gpt = gpt

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(self.gpt.n_layer)]
        logits, presents = self.gpt.forward_kv(input_ids, attention_mask, position_ids, past)
        out = [logits]
        for k, v in presents:
            out += [k, v]
        return tuple(out)


# --------------------------------------------------------------------------
# Training, evaluation, sampling
# --------------------------------------------------------------------------

def lr_at(step, cfg):
    if step < cfg["warmup"]:
        return cfg["lr"] * (step + 1) / cfg["warmup"]
    t = (step - cfg["warmup"]) / max(1, cfg["steps"] - cfg["warmup"])
    lo = cfg["lr"] * cfg["min_lr_frac"]
    return lo + 0.5 * (cfg["lr"] - lo) * (1 + math.cos(math.pi * t))


def make_optimizer(model, cfg):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg["lr"], betas=(0.9, 0.95), eps=1e-8)


def train(model, stream, cfg, steps, log_every=100):
    ctx, bs = cfg["context"], cfg["batch_size"]
    data = torch.from_numpy(stream)
    gen = torch.Generator().manual_seed(cfg["seed"] + 1)
    opt = make_optimizer(model, cfg)
    model.train()
    t0 = time.time()
    run_loss = None
    for step in range(steps):
        lr = lr_at(step, dict(cfg, steps=steps))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(stream) - ctx - 1, (bs,), generator=gen)
        batch = torch.stack([data[s:s + ctx + 1] for s in starts.tolist()])
        x, y = batch[:, :-1], batch[:, 1:]
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss = loss.item() if run_loss is None else 0.95 * run_loss + 0.05 * loss.item()
        if (step + 1) % log_every == 0 or step == 0 or step + 1 == steps:
            el = time.time() - t0
            print(f"  step {step + 1}/{steps}  loss {loss.item():.3f} (ema {run_loss:.3f})  lr {lr:.2e}  "
                  f"{el:.0f}s ({el / (step + 1):.3f}s/step)", flush=True)
    model.eval()
    return time.time() - t0


@torch.no_grad()
def heldout_perplexity(model, tok, held, batch=32):
    seqs = [[tok.eos_id] + tok.encode(v)[: model.context - 2] + [tok.eos_id] for v in held]
    nll, n = 0.0, 0
    for i in range(0, len(seqs), batch):
        chunk = seqs[i:i + batch]
        L = max(len(s) for s in chunk)
        x = torch.full((len(chunk), L), tok.eos_id, dtype=torch.long)
        y = torch.full((len(chunk), L), -100, dtype=torch.long)
        for r, s in enumerate(chunk):
            x[r, :len(s)] = torch.tensor(s)
            y[r, :len(s) - 1] = torch.tensor(s[1:])
        logits = model(x)
        nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=-100, reduction="sum").item()
        n += int((y != -100).sum())
    return math.exp(nll / n), n


@torch.no_grad()
def sample(model, prompt_ids, max_new, temperature, gen, eos_id):
    """KV-cached sampling through forward_kv (the exported code path)."""
    ids = list(prompt_ids)
    x = torch.tensor([ids])
    mask = torch.ones(1, len(ids), dtype=torch.long)
    pos = torch.arange(len(ids))[None]
    past = model.empty_past(1)
    out = []
    for _ in range(max_new):
        if mask.shape[1] > model.context:
            break
        logits, past = model.forward_kv(x, mask, pos, past)
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1)
        nxt = int(torch.multinomial(probs, 1, generator=gen))
        if nxt == eos_id:
            break
        out.append(nxt)
        x = torch.tensor([[nxt]])
        pos = torch.tensor([[mask.shape[1]]])
        mask = torch.ones(1, mask.shape[1] + 1, dtype=torch.long)
    return out


@torch.no_grad()
def greedy_full(model, prompt_ids, n):
    """Greedy continuation recomputing the whole sequence each step (no cache)."""
    ids = list(prompt_ids)
    out = []
    for _ in range(n):
        nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
        out.append(nxt)
        ids.append(nxt)
    return out


def load_dictionary():
    with open(DICT_PATH, encoding="utf-8", errors="replace") as f:
        return {w.strip().lower() for w in f if w.strip()}


WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------

def export_onnx(model, path):
    model.eval()
    wrapper = OnnxWrapper(model).eval()
    B, S, P = 2, 3, 4
    input_ids = torch.randint(0, model.vocab_size, (B, S), generator=torch.Generator().manual_seed(0))
    attention_mask = torch.ones(B, P + S, dtype=torch.long)
    position_ids = torch.arange(P, P + S)[None].repeat(B, 1)
    past = []
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    for i in range(model.n_layer):
        for kind in ("key", "value"):
            past.append(torch.zeros(B, model.n_kv_head, P, model.head_dim))
            n = f"past_key_values.{i}.{kind}"
            in_names.append(n)
            dyn[n] = {0: "batch_size", 2: "past_sequence_length"}
    for i in range(model.n_layer):
        for kind in ("key", "value"):
            n = f"present.{i}.{kind}"
            out_names.append(n)
            dyn[n] = {0: "batch_size", 2: "past_sequence_length + sequence_length"}
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(wrapper, (input_ids, attention_mask, position_ids, *past), tmp,
                          input_names=in_names, output_names=out_names, dynamic_axes=dyn,
                          opset_version=OPSET, do_constant_folding=False,
                          export_params=True)
    m = onnx.load(tmp)
    os.remove(tmp)
    # ir_version pinned for older runtimes
    m.ir_version = min(m.ir_version, IR_VERSION)
    m.producer_name = "models/recipes/lm.py"
    m.doc_string = "GPT-style decoder with past key values (Optimum text-generation-with-past convention)"
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def build(key, train_verses, held_verses, dict_words, ref_dir=None, steps_override=None):
    cfg = dict(CONFIGS[key])
    if steps_override:
        cfg["steps"] = steps_override
    out_dir = os.path.join(REPO_ROOT, cfg["out_dir"])
    os.makedirs(out_dir, exist_ok=True)
    print(f"== {cfg['name']} -> {cfg['out_dir']}", flush=True)
    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"])

    t0 = time.time()
    vocab, merges = train_bpe(train_verses, cfg["vocab_size"])
    tok = BPETokenizer(vocab, merges)
    assert len(tok.vocab) == cfg["vocab_size"] and tok.eos_id == cfg["vocab_size"] - 1
    tok_json = tok.to_hf_json()
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok_json, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    tok = BPETokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    for t in TOKENIZER_TEST_TEXTS:
        assert tok.decode(tok.encode(t)) == t, t
    print(f"  tokenizer: {len(tok.vocab)} tokens, {len(merges)} merges, {time.time() - t0:.0f}s", flush=True)

    t0 = time.time()
    stream = []
    for v in train_verses:
        stream.extend(tok.encode(v))
        stream.append(tok.eos_id)
    stream = np.asarray(stream, dtype=np.int64)
    n_words = sum(len(v.split()) for v in train_verses)
    print(f"  training stream: {len(stream)} tokens ({len(stream) / n_words:.2f} per word), "
          f"{time.time() - t0:.0f}s", flush=True)

    torch.manual_seed(cfg["seed"])
    model = GPT(cfg["vocab_size"], cfg["n_layer"], cfg["n_head"], cfg["n_kv_head"], cfg["d_model"], cfg["context"])
    n_params = model.n_params()
    print(f"  model: {cfg['n_layer']} layers, {cfg['n_head']} heads ({cfg['n_kv_head']} key/value), d_model {cfg['d_model']}, "
          f"{n_params} parameters", flush=True)
    train_seconds = train(model, stream, cfg, cfg["steps"], log_every=100 if key == "kjv" else 50)
    epochs = cfg["steps"] * cfg["batch_size"] * cfg["context"] / len(stream)
    print(f"  trained {cfg['steps']} steps in {train_seconds:.0f}s ({epochs:.2f} epochs)", flush=True)

    ppl, n_tok = heldout_perplexity(model, tok, held_verses)
    print(f"  held-out perplexity: {ppl:.3f} per token ({len(held_verses)} verses, {n_tok} tokens)", flush=True)

    gen = torch.Generator().manual_seed(cfg["seed"] + 2)
    prompts = ["", "And God said", "In the beginning", "The LORD is", "Blessed are the", "And Jesus"]
    known = total = 0
    shown = []
    for i in range(cfg["n_samples"]):
        p = prompts[i % len(prompts)]
        pids = [tok.eos_id] + tok.encode(p)
        cont = sample(model, pids, cfg["sample_tokens"], 0.8, gen, tok.eos_id)
        text = p + tok.decode(cont)
        for w in WORD_RE.findall(text):
            total += 1
            known += w.lower() in dict_words
        if i < len(prompts):
            shown.append(text)
    rate = known / max(1, total)
    print("  samples (temperature 0.8):")
    for s in shown:
        print("    " + repr(s))
    print(f"  dictionary word rate: {rate:.4f} ({known}/{total} words in {DICT_PATH})", flush=True)

    onnx_path = os.path.join(out_dir, "model.onnx")
    export_onnx(model, onnx_path)
    size = os.path.getsize(onnx_path)
    print(f"  model.onnx: {size} bytes", flush=True)

    manifest = {
        "name": cfg["name"],
        "version": "1.0.0",
        "task": "text-generation",
        "description": cfg["description"],
        "tokenizer": "tokenizer.json",
        "context_length": cfg["context"],
        "eos_token": EOS,
        "architecture": {"n_layer": cfg["n_layer"], "n_head": cfg["n_head"], "n_kv_head": cfg["n_kv_head"],
                         "head_dim": cfg["d_model"] // cfg["n_head"], "d_model": cfg["d_model"],
                         "vocab_size": cfg["vocab_size"], "parameters": n_params},
        "training": {
            "recipe": RECIPE,
            "dataset": f"King James Version, Debian package bible-kjv-text {package_version('bible-kjv-text')}: "
                       f"{len(train_verses)} training verses, {len(held_verses)} held out (every "
                       f"{HOLDOUT_EVERY}th verse)",
            "steps": cfg["steps"],
            "batch_size": cfg["batch_size"],
            "tokens_seen": cfg["steps"] * cfg["batch_size"] * cfg["context"],
            "heldout_perplexity": round(ppl, 3),
            "dictionary_word_rate": round(rate, 4),
            "train_seconds": int(round(train_seconds)),
        },
    }
    with open(os.path.join(out_dir, "model.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")

    if ref_dir:
        os.makedirs(ref_dir, exist_ok=True)
        prompt = [tok.eos_id] + tok.encode("And God said unto Moses, I AM THAT I AM: and he said,")
        short = tok.encode("Jesus wept.")
        with torch.no_grad():
            ref = {
                "name": cfg["name"],
                "dir": out_dir,
                "prompt_ids": prompt,
                "prompt_last_logits": model(torch.tensor([prompt]))[0, -1].tolist(),
                "greedy_ids": greedy_full(model, prompt, 20),
                "short_ids": short,
                "short_last_logits": model(torch.tensor([short]))[0, -1].tolist(),
                "tokenizer_cases": [{"text": t, "ids": tok.encode(t)} for t in TOKENIZER_TEST_TEXTS],
            }
        with open(os.path.join(ref_dir, f"{cfg['name']}.ref.json"), "w", encoding="utf-8") as f:
            json.dump(ref, f, ensure_ascii=False)
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["kjv", "tiny"], help="build just one of the two models")
    ap.add_argument("--steps", type=int, help="override the number of training steps (for experiments)")
    ap.add_argument("--ref-dir", help="write <name>.ref.json cross-check references here")
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    train_verses, held_verses = load_kjv()
    print(f"KJV: {len(train_verses)} training verses, {len(held_verses)} held-out verses", flush=True)
    dict_words = load_dictionary()
    keys = [args.only] if args.only else ["tiny", "kjv"]
    for k in keys:
        build(k, train_verses, held_verses, dict_words, args.ref_dir, args.steps)


if __name__ == "__main__":
    main()
