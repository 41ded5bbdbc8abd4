#!/usr/bin/env python3
"""PyTorch reference timing for the ArcFace head, forward + backward.

Same problem as BenchmarkArcFaceHead: N embeddings of D against C classes,
s = 64, m = 0.5, insightface's threshold fallback, float32, on CPU.

    /usr/bin/python3 bench/pytorch_arcface.py --threads 1 --n 256 --d 512 --c 10000

Prints the BLAS library torch loaded (and OpenBLAS's core, which on this
CPU must be forced: OPENBLAS_CORETYPE=Cooperlake, because OpenBLAS 0.3.21
misdetects it as Prescott), one line per run and the median in ms. Debian's
torch calls whatever libblas.so.3 the alternatives system points to: with
only the reference BLAS installed it is ~15x slower, so install
libopenblas0-pthread first. Run it right after the Go benchmark on the same
machine and compare as a ratio:

    OPENBLAS_CORETYPE=Cooperlake /usr/bin/python3 bench/pytorch_arcface.py --threads 1
"""
import argparse
import ctypes
import math
import re
import statistics
import time

import torch
import torch.nn.functional as F


def arcface(x, w, labels, s=64.0, m=0.5):
    cos = F.linear(F.normalize(x), F.normalize(w))
    sin = torch.sqrt((1.0 - cos * cos).clamp(0, 1))
    phi = cos * math.cos(m) - sin * math.sin(m)
    phi = torch.where(cos > math.cos(math.pi - m), phi, cos - math.sin(math.pi - m) * m)
    onehot = torch.zeros_like(cos).scatter_(1, labels.view(-1, 1), 1.0)
    logits = s * torch.where(onehot.bool(), phi, cos)
    return F.cross_entropy(logits, labels)


def blas_info():
    """The BLAS shared library mapped into this process, and OpenBLAS's core."""
    libs = sorted(set(re.findall(r"/\S*blas\S*\.so[.\d]*", open("/proc/self/maps").read())))
    core = "n/a"
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            fn = lib.openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        core = fn().decode()
    return libs, core


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--c", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(a.n, a.d, generator=g, requires_grad=True)
    w = torch.randn(a.c, a.d, generator=g, requires_grad=True)
    labels = torch.randint(0, a.c, (a.n,), generator=g)
    arcface(x, w, labels).backward()  # loads the BLAS
    libs, core = blas_info()
    print(f"blas: {', '.join(libs) or 'none mapped'}; openblas core: {core}")
    times = []
    for r in range(a.runs + 1):
        x.grad = w.grad = None
        t0 = time.perf_counter()
        arcface(x, w, labels).backward()
        dt = (time.perf_counter() - t0) * 1e3
        if r > 0:  # first run warms up
            times.append(dt)
            print(f"run {r}: {dt:.1f} ms")
    print(f"pytorch {torch.__version__} threads={a.threads} N={a.n} D={a.d} C={a.c}: median {statistics.median(times):.1f} ms")


if __name__ == "__main__":
    main()
