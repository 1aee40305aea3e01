#!/usr/bin/python3
"""Builds the Hugging Face-layout test fixtures of QuantSharp's LLM loader, independently of the C# code.

    /usr/bin/python3 make_hf_fixtures.py                      # writes gpt2-tiny/ and llama-tiny/ beside this script
    /usr/bin/python3 make_hf_fixtures.py --stories260k SRC OUT # converts llama2.c stories260K to a Hugging Face directory

Everything is written by hand here: safetensors files (8-byte little-endian header length, JSON header, raw data),
config.json, tokenizer.json (a small byte-level BPE for GPT-2, a SentencePiece-style BPE with byte fallback for Llama,
both trained on a few sentences below), and reference logits from a plain PyTorch implementation of each model
(float64, whole sequence at once with a causal mask, Hugging Face's rotate-half RoPE on the Hugging Face q/k layout).
Needs numpy; the fixtures also need torch (Debian's python3-torch). No transformers package is used.
"""
import json
import os
import struct
import sys
import unicodedata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

CORPUS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun.",
    "One day, she saw a big red ball in the park. She wanted to play with it, but it was too high.",
    "Tom and his dog went to the store. They bought some milk and bread for their mother.",
    "The little bird sang a happy song. It was the best day ever!",
    "\"Can I play too?\" asked the cat. The girl said yes, and they played all day.",
    "In 2023 the town had 42 trees, 7 lakes and 1,000 happy people.",
]

# Strings whose token ids the C# tokenizers must reproduce (spaces, digits, punctuation, unseen and non-ASCII text).
TOKENIZER_CASES = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the sun.",
    "  two  spaces and\ttabs\nnew lines\n\n",
    "It's 2024: they'll pay $3.50 for 12 apples, won't they?",
    "Zebras quizzically juxtapose vexing kiwis.",
    "café naïve Ünïcödé — 日本語 🙂!",
    " leading space",
    "x",
]


# ----------------------------------------------------------------------------- safetensors

def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype str, numpy array already in that storage form: float32, float16 or uint16 for BF16)."""
    header = {}
    offset = 0
    blobs = []
    for name, dtype, arr in tensors:
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # the format allows trailing spaces; 8-byte alignment of the data
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def to_bf16(x):
    """float32 → bfloat16 bits, rounding to nearest even (the upper 16 bits of the float32 after rounding)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bf16(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


# ----------------------------------------------------------------------------- GPT-2 byte-level BPE

def byte_table():
    """GPT-2's byte → character map: printable bytes keep their code, the other 68 get 256, 257, … in byte order."""
    keep = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def is_letter(c):
    return unicodedata.category(c).startswith("L")


def is_number(c):
    return unicodedata.category(c).startswith("N")


def is_space(c):
    return c.isspace()


def gpt2_pretokenize(text):
    """A hand-written scanner equivalent to GPT-2's pattern
    's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?[^\\sLN]+|\\s+(?!\\S)|\\s+ (alternatives tried in that order)."""
    out, i, n = [], 0, len(text)

    def run(j, pred):
        while j < n and pred(text[j]):
            j += 1
        return j

    other = lambda c: not (is_space(c) or is_letter(c) or is_number(c))
    while i < n:
        c = text[i]
        if c == "'":
            hit = None
            for s in ("s", "t", "re", "ve", "m", "ll", "d"):
                if text.startswith(s, i + 1):
                    hit = s
                    break
            if hit is not None:
                out.append(text[i:i + 1 + len(hit)])
                i += 1 + len(hit)
                continue
        start = i + 1 if (c == " " and i + 1 < n) else i
        matched = False
        for pred in (is_letter, is_number, other):
            if start < n and pred(text[start]):
                j = run(start, pred)
                out.append(text[i:j])
                i = j
                matched = True
                break
        if matched:
            continue
        # whitespace: the longest run not followed by a non-space; else the whole run
        j = run(i, is_space)
        if j < n and j - i >= 2:
            j -= 1
        out.append(text[i:j])
        i = j
    return out


def bpe_train(words, merges_wanted, allowed=lambda a, b: True):
    """Classic BPE training: words is a list of (symbol list, count); merges the most frequent pair (ties: smallest pair)."""
    words = [(list(w), c) for w, c in words]
    merges = []
    for _ in range(merges_wanted):
        counts = {}
        for w, c in words:
            for a, b in zip(w, w[1:]):
                if allowed(a, b):
                    counts[(a, b)] = counts.get((a, b), 0) + c
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        if counts[best] < 2:
            break
        merges.append(best)
        for w, _ in words:
            k = 0
            while k < len(w) - 1:
                if (w[k], w[k + 1]) == best:
                    w[k:k + 2] = [w[k] + w[k + 1]]
                k += 1
    return merges


def bpe_apply(symbols, ranks):
    """Reference BPE encoding: repeatedly take the lowest-ranked adjacent pair and merge its occurrences left to right."""
    symbols = list(symbols)
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b)), k) for k, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        pairs = [(r, k) for r, k in pairs if r is not None]
        if not pairs:
            break
        r, _ = min(pairs)
        a, b = [p for p, rr in ranks.items() if rr == r][0]
        k, out = 0, []
        while k < len(symbols):
            if k < len(symbols) - 1 and symbols[k] == a and symbols[k + 1] == b:
                out.append(a + b)
                k += 2
            else:
                out.append(symbols[k])
                k += 1
        symbols = out
    return symbols


def build_gpt2_tokenizer(merges_wanted=40):
    table = byte_table()
    counts = {}
    for line in CORPUS:
        for piece in gpt2_pretokenize(line):
            key = "".join(table[b] for b in piece.encode("utf-8"))
            counts[key] = counts.get(key, 0) + 1
    merges = bpe_train([(list(k), v) for k, v in sorted(counts.items())], merges_wanted)
    vocab = {}
    for b in range(256):
        vocab[table[b]] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    eot = len(vocab)
    vocab["<|endoftext|>"] = eot
    ranks = {m: r for r, m in enumerate(merges)}

    def encode(text):
        ids = []
        for piece in gpt2_pretokenize(text):
            syms = [table[b] for b in piece.encode("utf-8")]
            ids.extend(vocab[s] for s in bpe_apply(syms, ranks))
        return ids

    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": True, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    return tok, vocab, merges, encode, eot


# ----------------------------------------------------------------------------- Llama SentencePiece-style BPE

SPACE = "\u2581"


def build_llama_tokenizer(merges_wanted=60):
    # Characters left out of the vocabulary on purpose, so byte fallback is exercised: z, q, x, j, digits, non-ASCII.
    left_out = set("zqxjZQXJ0123456789")
    normalized = [SPACE + line.replace(" ", SPACE) for line in CORPUS]
    chars = sorted({c for s in normalized for c in s if c not in left_out and ord(c) < 128 or c == SPACE})
    words = {}
    for s in normalized:
        # training only: pieces stay inside a word (a word starts at ▁)
        for w in s.replace(SPACE, "\n" + SPACE).split("\n"):
            if w:
                key = tuple(c for c in w)
                words[key] = words.get(key, 0) + 1
    merges = bpe_train(sorted(words.items()), merges_wanted, allowed=lambda a, b: SPACE not in b and all(c in chars for c in a + b))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    ranks = {m: r for r, m in enumerate(merges)}

    def encode(text):
        s = SPACE + text.replace(" ", SPACE)
        syms = []
        for c in s:
            if c in vocab and c not in ("<unk>", "<s>", "</s>"):
                syms.append(c)
            else:
                syms.extend(f"<0x{b:02X}>" for b in c.encode("utf-8"))
        return [vocab[t] for t in bpe_apply(syms, ranks)]

    tok = sentencepiece_tokenizer_json(vocab, merges)
    return tok, vocab, merges, encode


def sentencepiece_tokenizer_json(vocab, merges):
    special = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
               for i, c in ((0, "<unk>"), (1, "<s>"), (2, "</s>"))]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": SPACE},
                                                          {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": SPACE}, "content": " "}, {"type": "ByteFallback"},
                                                      {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }


# ----------------------------------------------------------------------------- reference models (PyTorch, float64)

def gpt2_reference(w, cfg, tokens):
    import torch
    t = lambda k: torch.tensor(w[k], dtype=torch.float64)
    d, nh = cfg["n_embd"], cfg["n_head"]
    hs = d // nh
    T = len(tokens)
    x = t("transformer.wte.weight")[tokens] + t("transformer.wpe.weight")[:T]
    mask = torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), 1)

    def ln(v, p):
        return torch.nn.functional.layer_norm(v, (d,), t(p + ".weight"), t(p + ".bias"), cfg["layer_norm_epsilon"])

    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = ln(x, p + "ln_1")
        qkv = h @ t(p + "attn.c_attn.weight") + t(p + "attn.c_attn.bias")  # Conv1D: x·W, W is [in, out]
        q, k, v = qkv.split(d, dim=1)
        q, k, v = (z.view(T, nh, hs).transpose(0, 1) for z in (q, k, v))
        a = torch.softmax(q @ k.transpose(1, 2) / hs ** 0.5 + mask, dim=-1) @ v
        a = a.transpose(0, 1).reshape(T, d)
        x = x + a @ t(p + "attn.c_proj.weight") + t(p + "attn.c_proj.bias")
        h = ln(x, p + "ln_2")
        f = h @ t(p + "mlp.c_fc.weight") + t(p + "mlp.c_fc.bias")
        f = 0.5 * f * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (f + 0.044715 * f ** 3)))
        x = x + f @ t(p + "mlp.c_proj.weight") + t(p + "mlp.c_proj.bias")
    x = ln(x, "transformer.ln_f")
    return (x @ t("transformer.wte.weight").T).numpy()


def llama_reference(w, cfg, tokens):
    """Hugging Face's formulation: q/k in the rotate-half layout, RoPE pairs element i with i + head_size/2."""
    import torch
    t = lambda k: torch.tensor(w[k], dtype=torch.float64)
    d, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hs = d // nh
    T = len(tokens)
    eps = cfg["rms_norm_eps"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hs, 2, dtype=torch.float64) / hs))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rot(z):  # z: [heads, T, hs]
        z1, z2 = z[..., : hs // 2], z[..., hs // 2:]
        return z * cos + torch.cat([-z2, z1], -1) * sin

    def rms(v, p):
        return v / torch.sqrt((v * v).mean(-1, keepdim=True) + eps) * t(p)

    mask = torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), 1)
    x = t("model.embed_tokens.weight")[tokens]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, p + "input_layernorm.weight")
        q = (h @ t(p + "self_attn.q_proj.weight").T).view(T, nh, hs).transpose(0, 1)
        k = (h @ t(p + "self_attn.k_proj.weight").T).view(T, nkv, hs).transpose(0, 1)
        v = (h @ t(p + "self_attn.v_proj.weight").T).view(T, nkv, hs).transpose(0, 1)
        q, k = rot(q), rot(k)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        a = torch.softmax(q @ k.transpose(1, 2) / hs ** 0.5 + mask, dim=-1) @ v
        x = x + a.transpose(0, 1).reshape(T, d) @ t(p + "self_attn.o_proj.weight").T
        h = rms(x, p + "post_attention_layernorm.weight")
        g = h @ t(p + "mlp.gate_proj.weight").T
        x = x + ((g * torch.sigmoid(g)) * (h @ t(p + "mlp.up_proj.weight").T)) @ t(p + "mlp.down_proj.weight").T
    x = rms(x, "model.norm.weight")
    head = "lm_head.weight" if "lm_head.weight" in w else "model.embed_tokens.weight"
    return (x @ t(head).T).numpy()


# ----------------------------------------------------------------------------- fixtures

def write_json(path, obj, indent=1):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def make_gpt2(out):
    os.makedirs(out, exist_ok=True)
    tok, vocab, merges, encode, eot = build_gpt2_tokenizer()
    V = max(vocab.values()) + 1
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new", "n_embd": 32, "n_layer": 2,
           "n_head": 4, "n_positions": 32, "n_ctx": 32, "n_inner": 64, "vocab_size": V, "layer_norm_epsilon": 1e-5,
           "bos_token_id": eot, "eos_token_id": eot, "tie_word_embeddings": True, "torch_dtype": "float16"}
    rng = np.random.default_rng(1234)
    d, L = cfg["n_embd"], cfg["n_layer"]
    hid = cfg["n_inner"]
    shapes = [("transformer.wte.weight", (V, d), 0.5), ("transformer.wpe.weight", (cfg["n_positions"], d), 0.3)]
    for i in range(L):
        p = f"transformer.h.{i}."
        shapes += [(p + "ln_1.weight", (d,), "gain"), (p + "ln_1.bias", (d,), 0.1),
                   (p + "attn.c_attn.weight", (d, 3 * d), 0.3), (p + "attn.c_attn.bias", (3 * d,), 0.1),
                   (p + "attn.c_proj.weight", (d, d), 0.2), (p + "attn.c_proj.bias", (d,), 0.1),
                   (p + "ln_2.weight", (d,), "gain"), (p + "ln_2.bias", (d,), 0.1),
                   (p + "mlp.c_fc.weight", (d, hid), 0.3), (p + "mlp.c_fc.bias", (hid,), 0.1),
                   (p + "mlp.c_proj.weight", (hid, d), 0.2), (p + "mlp.c_proj.bias", (d,), 0.1)]
    shapes += [("transformer.ln_f.weight", (d,), "gain"), ("transformer.ln_f.bias", (d,), 0.1)]
    w, stored = {}, []
    for name, shape, std in shapes:
        v = 1 + 0.1 * rng.standard_normal(shape) if std == "gain" else std * rng.standard_normal(shape)
        h = v.astype(np.float16)
        w[name] = h.astype(np.float64)
        stored.append((name, "F16", h))
    write_safetensors(os.path.join(out, "model.safetensors"), stored, {"format": "pt"})
    write_json(os.path.join(out, "config.json"), cfg)
    write_json(os.path.join(out, "tokenizer.json"), tok, indent=None)
    # GPT-2's original tokenizer files, for the vocab.json + merges.txt path.
    write_json(os.path.join(out, "vocab.json"), vocab)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    text = CORPUS[0]
    tokens = encode(text)[:16]
    logits = gpt2_reference(w, cfg, tokens)
    logits.astype("<f4").tofile(os.path.join(out, "reference_logits.f32"))
    write_json(os.path.join(out, "reference.json"), {
        "text": text, "tokens": tokens, "logits_shape": list(logits.shape), "logits_file": "reference_logits.f32",
        "tokenizer_cases": [{"text": s, "ids": encode(s)} for s in TOKENIZER_CASES]}, indent=None)


def make_llama(out):
    os.makedirs(out, exist_ok=True)
    tok, vocab, merges, encode = build_llama_tokenizer()
    V = max(vocab.values()) + 1
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", "hidden_size": 32, "intermediate_size": 40,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32, "vocab_size": V,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
           "torch_dtype": "bfloat16"}
    rng = np.random.default_rng(4321)
    d, h, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    kv = d * cfg["num_key_value_heads"] // cfg["num_attention_heads"]
    shapes = [("model.embed_tokens.weight", (V, d), 0.5)]
    for i in range(L):
        p = f"model.layers.{i}."
        shapes += [(p + "input_layernorm.weight", (d,), "gain"), (p + "self_attn.q_proj.weight", (d, d), 0.4),
                   (p + "self_attn.k_proj.weight", (kv, d), 0.4), (p + "self_attn.v_proj.weight", (kv, d), 0.3),
                   (p + "self_attn.o_proj.weight", (d, d), 0.2), (p + "post_attention_layernorm.weight", (d,), "gain"),
                   (p + "mlp.gate_proj.weight", (h, d), 0.3), (p + "mlp.up_proj.weight", (h, d), 0.3), (p + "mlp.down_proj.weight", (d, h), 0.2)]
    shapes += [("model.norm.weight", (d,), "gain"), ("lm_head.weight", (V, d), 0.3)]
    w, stored = {}, []
    for name, shape, std in shapes:
        v = 1 + 0.1 * rng.standard_normal(shape) if std == "gain" else std * rng.standard_normal(shape)
        bits = to_bf16(v)
        w[name] = from_bf16(bits).astype(np.float64)
        stored.append((name, "BF16", bits))
    # Two shards and an index, as save_pretrained writes large models.
    half = len(stored) // 2
    shards = [("model-00001-of-00002.safetensors", stored[:half]), ("model-00002-of-00002.safetensors", stored[half:])]
    weight_map = {}
    for fname, part in shards:
        write_safetensors(os.path.join(out, fname), part, {"format": "pt"})
        for name, _, _ in part:
            weight_map[name] = fname
    total = sum(a.nbytes for _, _, a in stored)
    write_json(os.path.join(out, "model.safetensors.index.json"), {"metadata": {"total_size": total}, "weight_map": weight_map})
    write_json(os.path.join(out, "config.json"), cfg)
    write_json(os.path.join(out, "tokenizer.json"), tok, indent=None)
    text = CORPUS[2]
    tokens = ([1] + encode(text))[:16]
    logits = llama_reference(w, cfg, tokens)
    logits.astype("<f4").tofile(os.path.join(out, "reference_logits.f32"))
    write_json(os.path.join(out, "reference.json"), {
        "text": text, "tokens": tokens, "logits_shape": list(logits.shape), "logits_file": "reference_logits.f32",
        "tokenizer_cases": [{"text": s, "ids": encode(s)} for s in TOKENIZER_CASES]}, indent=None)


# ----------------------------------------------------------------------------- stories260K → Hugging Face layout

def hf_permute(w, heads):
    """Meta/llama2.c (adjacent RoPE pairs) → Hugging Face rotate-half rows, as the Hugging Face conversion script does:
    within each head, row 2i+t moves to t·hs/2 + i."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def convert_stories260k(src, out):
    os.makedirs(out, exist_ok=True)
    raw = open(os.path.join(src, "stories260K.bin"), "rb").read()
    dim, hidden, L, nh, nkv, vocab, seq = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    f = np.frombuffer(raw, dtype="<f4", offset=28)
    kv = dim * nkv // nh
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = f[pos:pos + n].reshape(shape)
        pos += n
        return a

    emb = take(vocab, dim)
    rms_att, wq, wk, wv, wo = take(L, dim), take(L, dim, dim), take(L, kv, dim), take(L, kv, dim), take(L, dim, dim)
    rms_ffn, w1, w2, w3 = take(L, dim), take(L, hidden, dim), take(L, dim, hidden), take(L, hidden, dim)
    rms_final = take(dim)
    tensors = [("model.embed_tokens.weight", "F32", emb)]
    for i in range(L):
        p = f"model.layers.{i}."
        tensors += [(p + "input_layernorm.weight", "F32", rms_att[i]),
                    (p + "self_attn.q_proj.weight", "F32", hf_permute(wq[i], nh)),
                    (p + "self_attn.k_proj.weight", "F32", hf_permute(wk[i], nkv)),
                    (p + "self_attn.v_proj.weight", "F32", wv[i]), (p + "self_attn.o_proj.weight", "F32", wo[i]),
                    (p + "post_attention_layernorm.weight", "F32", rms_ffn[i]),
                    (p + "mlp.gate_proj.weight", "F32", w1[i]), (p + "mlp.down_proj.weight", "F32", w2[i]),
                    (p + "mlp.up_proj.weight", "F32", w3[i])]
    tensors.append(("model.norm.weight", "F32", rms_final))
    if not shared:
        pos += seq * (dim // nh)  # freq_cis tables
        tensors.append(("lm_head.weight", "F32", take(vocab, dim)))
    write_safetensors(os.path.join(out, "model.safetensors"), tensors, {"format": "pt"})
    write_json(os.path.join(out, "config.json"), {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", "hidden_size": dim, "intermediate_size": hidden,
        "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv, "max_position_embeddings": seq, "vocab_size": vocab,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": shared, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"})

    # tok512.bin → tokenizer.json: pieces with "▁" for spaces; merges = every split of a piece into two vocabulary pieces,
    # ordered by the piece's score (highest first), which is how SentencePiece BPE vocabularies are turned into merges.
    tb = open(os.path.join(src, "tok512.bin"), "rb").read()
    k = 4
    pieces, scores = [], []
    for _ in range(vocab):
        score, n = struct.unpack("<fi", tb[k:k + 8])
        k += 8
        pieces.append(tb[k:k + n].decode("utf-8"))
        scores.append(score)
        k += n
    pieces[0], pieces[1], pieces[2] = "<unk>", "<s>", "</s>"
    pieces = [p.replace(" ", SPACE) for p in pieces]
    vmap = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i in sorted(range(3, vocab), key=lambda i: (-scores[i], i)):
        p = pieces[i]
        if p.startswith("<0x"):
            continue
        for cut in range(1, len(p)):
            a, b = p[:cut], p[cut:]
            if a in vmap and b in vmap and vmap[a] > 2 and vmap[b] > 2:
                merges.append((a, b))
    write_json(os.path.join(out, "tokenizer.json"), sentencepiece_tokenizer_json(vmap, merges))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--stories260k":
        convert_stories260k(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    make_gpt2(os.path.join(HERE, "gpt2-tiny"))
    make_llama(os.path.join(HERE, "llama-tiny"))


if __name__ == "__main__":
    main()
