#!/usr/bin/env python3
"""PyTorch reference for `go run ./bench`: the same heads, the same JSON.

Runs the margin heads (ArcFace(64,0.5), CosFace(64,0.35),
CombinedMargin(64,1,0.3,0.2), SphereFace(4,0), LargeMargin(4,0)), the
softmax focal loss (gamma 2) and center loss (alpha 0.5), forward and
backward in float32 on the CPU, at N=256, D=512, C in {1k, 10k, 100k}, on one
thread and on all of them, and OpenBLAS's sgemm at the head's per-tile GEMM
shapes on one thread. It writes the JSON schema of the Go command
(marginloss-bench version 1, see bench/main.go) with machine.backend
"pytorch <version>", so that the Go command compares us against it:

    /usr/bin/python3 bench/pytorch_ref.py --json torch.json      # about a minute
    go run ./bench -json go.json
    go run ./bench -compare torch.json go.json
    /usr/bin/python3 bench/pytorch_ref.py --quick --json q.json  # tiny sizes, seconds

The heads are written as PyTorch training code writes them (insightface's
arcface_torch for the margins): F.linear builds the N x C logits, the margin
is applied to the N target logits only, then F.cross_entropy (mean) and
autograd. Focal is log_softmax, gather and the (1-p)^gamma weight over N x C
logits that require grad; center loss is the mean squared distance to the
label's center with x's gradient, then the paper's update of the centers
(Update in loss/center.go) over the labels present. The timing matches the
Go command's: a warm-up call, then calls until about 0.3 s has passed (at
least one), the fastest counts; gflops counts 6*N*D*C for the margin heads.
extra_mib is the peak RSS over the first call (VmHWM after resetting it
through /proc/self/clear_refs; the ru_maxrss delta where that fails) less
the RSS before it and less the gradient tensors the call returns (x.grad,
w.grad: the caller's dx, dw in Go), so the two rows state the same scratch,
one as heap allocation and one as resident memory.

Threads: torch.set_num_threads(t) for torch's own kernels and
openblas_set_num_threads(t) through ctypes for the BLAS (Debian's torch calls
whatever libblas.so.3 the alternatives system points to, OpenBLAS's pthread
build having its own pool). Install libopenblas0-pthread first: the reference
BLAS is ~15x slower.

OpenBLAS core: before importing torch the script loads libblas.so.3, asks
OpenBLAS for the core it picked and, when that is a generic pre-AVX2 core
(0.3.21 misdetects some AVX-512 CPUs as Prescott) on a CPU whose
/proc/cpuinfo lists avx512f, re-executes itself with
OPENBLAS_CORETYPE=Cooperlake (SkylakeX when the CPU lacks avx512_bf16),
in its own process only. A user-set OPENBLAS_CORETYPE is kept; --coretype
NAME forces one. The BLAS, the core and OpenBLAS's config are printed and
kept in machine.extra.
"""
import argparse
import ctypes
import ctypes.util
import datetime
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import time

# OpenBLAS cores without AVX2/FMA: on an AVX-512 CPU they mean OpenBLAS did
# not recognise it and fell back.
GENERIC_CORES = {
    "prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn",
    "dunnington", "nehalem", "atom", "opteron", "opteron_sse3", "barcelona",
    "bobcat", "athlon", "generic", "sandybridge", "bulldozer", "piledriver",
}

# /proc/cpuinfo flags and the names klauspost/cpuid gives them (the Go file's
# machine.features).
FEATURES = [
    ("avx", "AVX"), ("avx2", "AVX2"), ("fma", "FMA3"),
    ("avx512f", "AVX512F"), ("avx512cd", "AVX512CD"), ("avx512bw", "AVX512BW"),
    ("avx512dq", "AVX512DQ"), ("avx512vl", "AVX512VL"), ("avx512ifma", "AVX512IFMA"),
    ("avx512vbmi", "AVX512VBMI"), ("avx512_vbmi2", "AVX512VBMI2"), ("avx512_vnni", "AVX512VNNI"),
    ("avx512_bitalg", "AVX512BITALG"), ("avx512_vpopcntdq", "AVX512VPOPCNTDQ"),
    ("avx512_bf16", "AVX512BF16"), ("avx512_fp16", "AVX512FP16"),
    ("asimd", "ASIMD"), ("fp", "FP"), ("fphp", "FPHP"), ("asimdhp", "ASIMDHP"),
    ("asimddp", "ASIMDDP"), ("sve", "SVE"), ("sve2", "SVE2"),
]


def cpuinfo():
    """The CPU's model line and its flags, from /proc/cpuinfo."""
    model, flags = "unknown", set()
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or model, flags
    for key in ("model name", "Hardware", "CPU part"):
        m = re.search(r"^%s\s*:\s*(.+)$" % key, text, re.M)
        if m:
            model = m.group(1).strip()
            break
    m = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    if m:
        flags = set(m.group(1).split())
    return model, flags


def openblas_lib(path=None):
    """ctypes handle of the OpenBLAS behind libblas.so.3 (or path), or None."""
    for p in [path] if path else ["libblas.so.3", ctypes.util.find_library("blas"), ctypes.util.find_library("openblas")]:
        if not p:
            continue
        try:
            lib = ctypes.CDLL(p)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return lib
        except (OSError, AttributeError):
            continue
    return None


def fix_coretype(forced):
    """Re-executes the script with OPENBLAS_CORETYPE set when it must be."""
    if os.environ.get("_PYTORCH_REF_REEXEC"):
        return
    want = forced
    if not want and "OPENBLAS_CORETYPE" not in os.environ:
        _, flags = cpuinfo()
        lib = openblas_lib()
        if lib is not None and "avx512f" in flags:
            core = lib.openblas_get_corename().decode()
            if core.lower() in GENERIC_CORES:
                want = "Cooperlake" if "avx512_bf16" in flags else "SkylakeX"
                print(f"OpenBLAS picked the generic core {core} on an AVX-512 CPU: re-running with OPENBLAS_CORETYPE={want}",
                      file=sys.stderr)
    elif not want:
        _, flags = cpuinfo()
        core = os.environ.get("OPENBLAS_CORETYPE", "")
        if "avx512f" in flags and core.lower() in GENERIC_CORES | {"haswell", "zen"}:
            print(f"warning: OPENBLAS_CORETYPE={core} from the environment keeps OpenBLAS off AVX-512 on this AVX-512 CPU; "
                  "unset it or pass --coretype Cooperlake (or SkylakeX) to let the reference use AVX-512", file=sys.stderr)
    if want and os.environ.get("OPENBLAS_CORETYPE") != want:
        env = dict(os.environ, OPENBLAS_CORETYPE=want, _PYTORCH_REF_REEXEC="1")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_info(torch):
    """The BLAS libraries mapped into this process, OpenBLAS's core and config."""
    libs = sorted(set(re.findall(r"/\S*blas\S*\.so[.\d]*", open("/proc/self/maps").read())))
    core = config = "n/a"
    lib = None
    for path in libs:
        lib = openblas_lib(path)
        if lib is not None:
            core = lib.openblas_get_corename().decode()
            config = lib.openblas_get_config().decode()
            break
    capability = ""
    m = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    if m:
        capability = m.group(1)
    return libs, core, config, capability, lib


def cache_sizes():
    """L1d, L2, L3 in bytes: sysfs, else glibc's getconf; 0 when unknown."""
    out = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for d in sorted(os.listdir(base)):
            if not d.startswith("index"):
                continue
            rd = lambda f: open(os.path.join(base, d, f)).read().strip()
            if rd("type") == "Instruction":
                continue
            size = rd("size")
            mult = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
            out["L1d" if rd("level") == "1" else "L" + rd("level")] = int(size.rstrip("KM")) * mult
    except (OSError, ValueError):
        pass
    for key, name in (("L1d", "LEVEL1_DCACHE_SIZE"), ("L2", "LEVEL2_CACHE_SIZE"), ("L3", "LEVEL3_CACHE_SIZE")):
        if not out.get(key):
            try:
                out[key] = int(subprocess.run(["getconf", name], capture_output=True, text=True).stdout.strip() or 0)
            except (OSError, ValueError):
                out[key] = 0
    return out


def rss_kib():
    """(VmRSS, VmHWM) of this process in KiB."""
    s = open("/proc/self/status").read()
    return tuple(int(re.search(k + r":\s+(\d+)", s).group(1)) for k in ("VmRSS", "VmHWM"))


def reset_peak():
    """Resets VmHWM to the current RSS; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tile_for_batch(n):
    """The head's class tile for n rows (loss/head.go), the GEMM shapes' class dimension."""
    return min(max((32 << 10) // n, 16), 512)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write the results here")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a few ms per item (the Go command's -quick sizes)")
    ap.add_argument("--filter", metavar="REGEXP", help="only the items whose name matches (as the Go command's -filter)")
    ap.add_argument("--threads", type=int, nargs="*", help="thread counts of the heads (default: 1 and all)")
    ap.add_argument("--coretype", metavar="NAME", help="force OPENBLAS_CORETYPE (re-executes the script)")
    a = ap.parse_args()
    fix_coretype(a.coretype)

    import torch
    import torch.nn.functional as F

    if a.quick:
        n, d, classes, kernel_ns, batch, repeats, budget, max_runs = 32, 64, [100, 1000], [256], 1e-3, 2, 2e-3, 5
    else:
        n, d, classes, kernel_ns, batch, repeats, budget, max_runs = 256, 512, [1000, 10000, 100000], [512, 4096], 0.04, 3, 0.3, 50
    cores = os.cpu_count() or 1
    threads = a.threads or ([1, cores] if cores > 1 else [1])
    filt = re.compile(a.filter) if a.filter else None

    torch.manual_seed(1)
    torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS
    libs, core, config, capability, blas = blas_info(torch)
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads by default, {cores} CPUs")
    print(f"blas: {', '.join(libs) or 'none mapped'}")
    print(f"openblas core: {core}; config: {config}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"torch CPU capability: {capability or '?'}")

    def set_threads(t):
        torch.set_num_threads(t)
        if blas is not None:
            try:
                blas.openblas_set_num_threads(ctypes.c_int(t))
            except AttributeError:
                pass

    model, flags = cpuinfo()
    caches = cache_sizes()
    machine = {
        "cpu": model,
        "features": [name for flag, name in FEATURES if flag in flags],
        "l1d": caches.get("L1d", 0), "l2": caches.get("L2", 0), "l3": caches.get("L3", 0),
        "goos": sys.platform if sys.platform != "darwin" else "darwin",
        "goarch": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
        "go": "python " + platform.python_version(),
        "backend": "pytorch " + torch.__version__,
        "levels": ["openblas"],
        "cores": cores,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "extra": {
            "blas": ", ".join(libs) or "none mapped",
            "openblas_core": core,
            "openblas_config": config,
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE", ""),
            "torch_cpu_capability": capability,
        },
    }
    res = {"schema": "marginloss-bench", "version": 1, "machine": machine, "fma_peak_gflops": 0, "kernels": [], "heads": []}
    if a.quick:
        res["quick"] = True

    items = []

    # OpenBLAS sgemm at the head's per-tile shapes, through cblas_sgemm.
    ct = tile_for_batch(n)
    if blas is not None and hasattr(blas, "cblas_sgemm"):
        f32p = ctypes.POINTER(ctypes.c_float)
        blas.cblas_sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, f32p, ctypes.c_int, f32p, ctypes.c_int,
                                                           ctypes.c_float, f32p, ctypes.c_int]
        x, w, g = torch.randn(n, d), torch.randn(ct, d), torch.randn(n, ct)
        out = torch.empty(max(n * ct, n * d, ct * d))
        ptr = lambda t: ctypes.cast(t.data_ptr(), f32p)
        row_major, no_t, tr = 101, 111, 112
        for name, ta, tb, m_, n_, k_, A, lda, B, ldb in (
            ("NT", no_t, tr, n, ct, d, x, d, w, d),  # logits Z = X̂·Ŵᵀ
            ("NN", no_t, no_t, n, d, ct, g, ct, w, d),  # dX̂ = G·Ŵ
            ("TN", tr, no_t, ct, d, n, g, ct, x, d),  # dŴ = Gᵀ·X̂
        ):
            def call(ta=ta, tb=tb, m_=m_, n_=n_, k_=k_, A=A, lda=lda, B=B, ldb=ldb):
                blas.cblas_sgemm(row_major, ta, tb, m_, n_, k_, 1.0, ptr(A), lda, ptr(B), ldb, 0.0, ptr(out), n_)
            size = f"m={m_} n={n_} k={k_}"
            items.append((f"kernels/gemm/{name}/{size}/openblas", ("gemm", name, size, 2.0 * m_ * n_ * k_, call)))
    else:
        print("no OpenBLAS cblas_sgemm loaded: no gemm rows", file=sys.stderr)

    # Heads.
    def margin_head(kind, s=64.0, m1=1.0, m2=0.0, m3=0.0, m=4, lam=0.0):
        cos_m, sin_m = math.cos(m2), math.sin(m2)
        th, mm = math.cos(math.pi - m2), math.sin(math.pi - m2) * m2

        def psi(t):  # (λ·t + ψ(θ))/(1+λ), ψ = (−1)^k·cos(mθ) − 2k
            theta = torch.acos(t.clamp(-1, 1))
            k = torch.floor(m * theta / math.pi)
            sign = 1 - 2 * torch.remainder(k, 2)
            return (lam * t + sign * torch.cos(m * theta) - 2 * k) / (1 + lam)

        def loss_fn(x, w, labels):
            idx = torch.arange(x.shape[0])
            if kind == "large":
                logits = F.linear(x, w)
                xn, wn = x.norm(dim=1), w[labels].norm(dim=1)
                t = logits[idx, labels] / (xn * wn)
                logits[idx, labels] = xn * wn * psi(t)
                return F.cross_entropy(logits, labels)
            cos = F.linear(F.normalize(x), F.normalize(w))
            t = cos[idx, labels]
            if kind == "arc":
                sin = torch.sqrt((1.0 - t * t).clamp(0, 1))
                phi = torch.where(t > th, t * cos_m - sin * sin_m, t - mm)
            elif kind == "cos":
                phi = t - m2
            elif kind == "combined":
                phi = torch.cos(m1 * torch.acos(t.clamp(-1 + 1e-6, 1 - 1e-6)) + m2) - m3
            elif kind == "sphere":
                phi = psi(t)
            cos[idx, labels] = phi
            if kind == "sphere":
                return F.cross_entropy(x.norm(dim=1, keepdim=True) * cos, labels)
            return F.cross_entropy(s * cos, labels)

        return loss_fn

    margins = [
        ("ArcFace(64,0.5)", margin_head("arc", m2=0.5)),
        ("CosFace(64,0.35)", margin_head("cos", m2=0.35)),
        ("CombinedMargin(64,1,0.3,0.2)", margin_head("combined", m1=1, m2=0.3, m3=0.2)),
        ("SphereFace(4,0)", margin_head("sphere", m=4, lam=0.0)),
        ("LargeMargin(4,0)", margin_head("large", m=4, lam=0.0)),
    ]

    # "… bf16": the same head under torch.autocast("cpu", dtype=torch.bfloat16)
    # (PyTorch ≥ 1.10), the like-for-like row of the Go command's BFloat16
    # heads: autocast runs F.linear in bfloat16 and keeps the softmax and the
    # loss in float32.
    def autocast(fn):
        def loss_fn(x, w, labels):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fn(x, w, labels)
        return loss_fn

    has_autocast = hasattr(torch, "autocast")
    if not has_autocast:
        print(f"torch {torch.__version__} has no torch.autocast: no bf16 rows", file=sys.stderr)
    heads = margins + [(name + " bf16", autocast(fn)) for name, fn in margins if has_autocast] + [
        ("Focal(2)", None),
        ("Center(0.5)", None),
    ]
    for c in classes:
        for name, fn in heads:
            for t in threads:
                items.append((f"heads/{name}/C={c}/threads={t}", ("head", name, fn, c, t)))
    if filt:
        items = [it for it in items if filt.search(it[0])]

    state = {}

    def data(c):
        if state.get("c") != c:
            state.clear()
            g = torch.Generator().manual_seed(c)
            state.update(c=c, x=torch.randn(n, d, generator=g), w=torch.randn(c, d, generator=g),
                         labels=torch.randint(0, c, (n,), generator=g))
        return state

    def best_of(call):
        call()
        calls = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(calls):
                call()
            el = time.perf_counter() - t0
            if el >= batch / 8 or calls >= 1 << 30:
                calls = max(1, int(calls * batch / max(el, 1e-9)))
                break
            calls *= 8
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(calls):
                call()
            best = min(best, (time.perf_counter() - t0) / calls)
        return best

    def head_call(name, fn, st):
        c = st["c"]
        labels = st["labels"]
        if fn is not None:
            x = st["x"].clone().requires_grad_(True)
            w = st["w"].clone().requires_grad_(True)

            def call():
                x.grad = w.grad = None
                fn(x, w, labels).backward()
            return call, 4 * (n * d + c * d)
        if name.startswith("Focal"):
            if "logits" not in st:
                st["logits"] = 4 * torch.randn(n, c, generator=torch.Generator().manual_seed(c + 2))
            z = st["logits"].clone().requires_grad_(True)
            gamma = 2.0

            def call():
                z.grad = None
                logpt = F.log_softmax(z, dim=1).gather(1, labels.view(-1, 1)).squeeze(1)
                (-((1 - logpt.exp()) ** gamma) * logpt).mean().backward()
            return call, 4 * n * c
        # Center(0.5): Loss with dx, then Update.
        x = st["x"].clone().requires_grad_(True)
        centers = st["w"].clone()
        alpha = 0.5

        def call():
            x.grad = None
            diff = x - centers[labels]
            ((diff * diff).sum() / (2 * x.shape[0])).backward()
            with torch.no_grad():
                uniq, inv, counts = torch.unique(labels, return_inverse=True, return_counts=True)
                delta = torch.zeros(len(uniq), d).index_add_(0, inv, centers[labels] - x)
                centers[uniq] -= alpha * delta / (1 + counts.to(torch.float32)).view(-1, 1)
        return call, 4 * n * d

    # Process-wide first-use costs (autograd engine, thread pools) stay out
    # of the first item's time and memory.
    for t in threads:
        set_threads(t)
        xs, ws = torch.randn(4, 8, requires_grad=True), torch.randn(8, 8, requires_grad=True)
        heads[0][1](xs, ws, torch.arange(4)).backward()

    t_start = time.perf_counter()
    for i, (name, it) in enumerate(items):
        print(f"[{i + 1}/{len(items)}] {name}", file=sys.stderr)
        if it[0] == "gemm":
            _, kname, size, flops, call = it
            set_threads(1)
            sec = best_of(call)
            res["kernels"].append({"family": "gemm", "name": kname, "level": "openblas", "size": size,
                                   "gflops": flops / sec / 1e9, "ns": sec * 1e9})
            continue
        _, hname, fn, c, t = it
        set_threads(t)
        st = data(c)
        call, grad_bytes = head_call(hname, fn, st)
        rss0, _ = rss_kib()
        if reset_peak():
            call()
            peak = rss_kib()[1]
        else:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            call()
            peak = rss0 + resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        extra = max(0.0, (peak - rss0) / 1024 - grad_bytes / (1 << 20))
        best, spent, runs = math.inf, 0.0, 0
        while runs < max_runs and (runs == 0 or spent < budget):
            t0 = time.perf_counter()
            call()
            el = time.perf_counter() - t0
            spent += el
            best = min(best, el)
            runs += 1
        row = {"loss": hname, "n": n, "d": d, "c": c, "threads": t, "ms": best * 1e3, "extra_mib": extra, "calls": runs}
        if fn is not None:
            row["gflops"] = 6.0 * n * d * c / best / 1e9
        res["heads"].append(row)
    set_threads(cores)

    print("\n| item | ms | GFLOP/s | extra MiB |\n|---|---:|---:|---:|")
    for k in res["kernels"]:
        print(f"| gemm {k['name']} {k['size']} openblas | {k['ns'] / 1e6:.3f} | {k['gflops']:.1f} | |")
    for h in res["heads"]:
        g = f"{h['gflops']:.1f}" if "gflops" in h else "—"
        print(f"| {h['loss']} C={h['c']} threads={h['threads']} | {h['ms']:.3f} | {g} | {h['extra_mib']:.1f} |")
    print(f"\ntook {time.perf_counter() - t_start:.1f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
        print("wrote", a.json, file=sys.stderr)


if __name__ == "__main__":
    main()
