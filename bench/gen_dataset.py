#!/usr/bin/env python3
"""Deterministic ~1 GiB mixed dataset for bench/engine.sh.

~44k source-like text files (1-40 KB), ~40 incompressible binaries
(1-32 MB) and duplicated copies of some of both, from a fixed seed: the
same bytes on every machine.

usage: gen_dataset.py DIR            create the dataset
       gen_dataset.py DIR --change   modify 1 % of the files in place
"""
import os
import random
import sys

SEED = 20261121
WORDS = ("fn let mut struct impl pub use match if else return for while loop self Some None Ok Err "
         "value index buffer error result config path file repository snapshot chunk pack tree node "
         "read write open close flush sync len push pop insert remove get set new default clone "
         "String Vec HashMap Option Result u8 u32 u64 usize i64 bool true false").split()


def text_corpus(rng, lines=200_000):
    out = []
    for _ in range(lines):
        indent = "    " * rng.randint(0, 3)
        words = rng.choices(WORDS, k=rng.randint(2, 12))
        out.append(indent + " ".join(words) + (";" if rng.random() < 0.6 else " {") + "\n")
    return out


def create(root):
    rng = random.Random(SEED)
    corpus = text_corpus(rng)
    files = 0
    total = 0
    # Source-like text: 44,000 files in nested directories.
    for i in range(44_000):
        d = os.path.join(root, "src", f"mod{i // 400:03d}", f"sub{(i // 40) % 10}")
        os.makedirs(d, exist_ok=True)
        target = rng.randint(1_000, 14_000) if rng.random() < 0.9 else rng.randint(14_000, 40_000)
        start = rng.randrange(len(corpus))
        body = "".join(corpus[(start + k) % len(corpus)] for k in range(target // 40))
        with open(os.path.join(d, f"file{i}.rs"), "w") as f:
            f.write(body)
        files += 1
        total += len(body)
    # Incompressible binaries, 1-32 MB.
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    sizes = [rng.randint(1, 32) * 1_000_000 + rng.randint(0, 999_999) for _ in range(36)]
    for i, size in enumerate(sizes):
        with open(os.path.join(root, "bin", f"blob{i:02d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))
        files += 1
        total += size
    # Duplicates: copies of some binaries and one text directory.
    dup = os.path.join(root, "dup")
    os.makedirs(dup, exist_ok=True)
    for i in range(0, 36, 6):
        src = os.path.join(root, "bin", f"blob{i:02d}.bin")
        with open(src, "rb") as s, open(os.path.join(dup, f"copy{i:02d}.bin"), "wb") as d:
            data = s.read()
            d.write(data)
            total += len(data)
        files += 1
    text_src = os.path.join(root, "src", "mod000")
    for dirpath, _, names in os.walk(text_src):
        rel = os.path.relpath(dirpath, text_src)
        os.makedirs(os.path.join(dup, "mod000", rel), exist_ok=True)
        for n in names:
            with open(os.path.join(dirpath, n), "rb") as s, open(os.path.join(dup, "mod000", rel, n), "wb") as d:
                data = s.read()
                d.write(data)
                total += len(data)
            files += 1
    print(f"{files} files, {total / 1e6:.1f} MB")


def change(root):
    rng = random.Random(SEED + 1)
    paths = sorted(os.path.join(dp, n) for dp, _, ns in os.walk(root) for n in ns)
    changed = 0
    for p in paths[::100]:
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            if p.endswith(".bin") and size > 8192:
                f.seek(size // 2)
                f.write(rng.randbytes(4096))
            else:
                f.seek(0, os.SEEK_END)
                f.write(b"// changed\n")
        changed += 1
    print(f"changed {changed} of {len(paths)} files")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if "--change" in sys.argv:
        change(sys.argv[1])
    else:
        create(sys.argv[1])
