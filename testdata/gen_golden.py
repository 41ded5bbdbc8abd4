#!/usr/bin/python3
"""Golden vectors for github.com/marginloss/marginloss/loss.

Run from the repository root with Debian's interpreter (it has torch):

    /usr/bin/python3 testdata/gen_golden.py [--outdir DIR] [golden_NAME.json ...]

It writes testdata/golden_margin.json, testdata/golden_focal.json,
testdata/golden_center.json and testdata/golden_cosines.json (or only the
files named; --outdir writes elsewhere, e.g. to compare a rerun with the
committed files). golden_cosines.json holds MarginSoftmax's SubCenters and
LabelSmoothing options: "cosine_cases" for LossFromCosines (cos → loss,
dcos) and "loss_cases" for Loss (x, w → loss, dx, dw). Everything is computed in float64 with torch
autograd from inputs that are exactly float32-representable (every input and
every float parameter is rounded to float32 first), so the Go tests can feed
bit-identical inputs to the float32 API. The script is deterministic (fixed
numpy seeds) and, before writing anything, verifies the formulas below with
torch.autograd.gradcheck and a few algebraic identities; it exits non-zero if
any check fails.

The formulas are written from the package's documented definitions (the
conventions are those of insightface's ArcMarginProduct and torchvision's
sigmoid_focal_loss), not copied from any implementation.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
CLAMP = 1e-6  # derivative of acos-based margins uses t clamped to [-1+CLAMP, 1-CLAMP]
T_LIMIT = 1 - 1e-4  # goldens keep |t| below this (except the D = 1 cases)
BRANCH_GAP = 1e-3  # goldens keep t at least this far from a branch threshold


def f32(v):
    """Round a python float / array to the nearest float32, returned as float64."""
    return np.asarray(v, dtype=np.float32).astype(np.float64)


def f32s(v):
    return float(np.float32(v))


# --------------------------------------------------------------------------
# Differentiable pieces


class SafeAcos(torch.autograd.Function):
    """acos whose derivative clamps t to [-1+CLAMP, 1-CLAMP] (the documented
    convention). For |t| < 1-CLAMP it is exactly acos."""

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return torch.acos(t.clamp(-1.0, 1.0))

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        tc = t.clamp(-1.0 + CLAMP, 1.0 - CLAMP)
        return -g / torch.sqrt(1.0 - tc * tc)


def arc_phi(t, m, easy):
    theta = SafeAcos.apply(t)
    cm = torch.cos(theta + m)
    if easy:
        return torch.where(t > 0, cm, t)
    th = math.cos(math.pi - m)
    mm = math.sin(math.pi - m) * m
    return torch.where(t > th, cm, t - mm)


def psi_target(t, mi, lam):
    """(λ·t + ψ(θ))/(1+λ), ψ(θ) = (−1)^k·cos(mθ) − 2k, k = ⌊mθ/π⌋."""
    theta = SafeAcos.apply(t)
    k = torch.floor(mi * theta.detach() / math.pi)
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    psi = sign * torch.cos(mi * theta) - 2.0 * k
    return (lam * t + psi) / (1.0 + lam)


def margin_logits(case, x, w, labels, aux=None):
    """Logit matrix (N×C) of a MarginSoftmax case. When aux is a dict, the
    normalised rows x̂ / Ŵ are stored there with retain_grad() set."""
    kind = case["kind"]
    n = x.shape[0]
    c = w.shape[0]
    idx = torch.arange(n)
    onehot = F.one_hot(labels, c).bool()
    if kind in ("arcface", "cosface", "combined"):
        s = case["s"]
        xn = x / x.norm(dim=1, keepdim=True)
        wn = w / w.norm(dim=1, keepdim=True)
        if aux is not None and xn.requires_grad:
            xn.retain_grad()
            wn.retain_grad()
            aux.update(xn=xn, wn=wn)
        cos = xn @ wn.t()
        t = cos[idx, labels]
        if kind == "arcface":
            phi = arc_phi(t, case["m"], case["easy"])
        elif kind == "cosface":
            phi = t - case["m"]
        else:
            theta = SafeAcos.apply(t)
            phi = torch.cos(case["m1"] * theta + case["m2"]) - case["m3"]
        if case["detach"]:
            phi = t + (phi - t).detach()
        return torch.where(onehot, (s * phi)[:, None].expand(n, c), s * cos)
    if kind == "sphereface":
        wn = w / w.norm(dim=1, keepdim=True)
        if aux is not None and wn.requires_grad:
            wn.retain_grad()
            aux.update(wn=wn)
        xnorm = x.norm(dim=1)
        raw = x @ wn.t()  # = ‖x‖·cos θ_j
        t = raw[idx, labels] / xnorm
        tgt = xnorm * psi_target(t, case["mi"], case["lambda"])
        return torch.where(onehot, tgt[:, None].expand(n, c), raw)
    if kind == "largemargin":
        wnorm = w.norm(dim=1)
        xnorm = x.norm(dim=1)
        raw = x @ w.t()
        t = raw[idx, labels] / (xnorm * wnorm[labels])
        tgt = wnorm[labels] * xnorm * psi_target(t, case["mi"], case["lambda"])
        return torch.where(onehot, tgt[:, None].expand(n, c), raw)
    raise ValueError(kind)


def reduce(v, reduction):
    return v.mean() if reduction == "mean" else v.sum()


def margin_loss(case, x, w, labels, aux=None):
    z = margin_logits(case, x, w, labels, aux)
    per = -F.log_softmax(z, dim=1)[torch.arange(x.shape[0]), labels]
    return reduce(per, case["reduction"])


def target_cos(case, x, w, labels):
    """t = cos θ_y per row (float64)."""
    xn = x / x.norm(dim=1, keepdim=True)
    wn = w / w.norm(dim=1, keepdim=True)
    return (xn * wn[labels]).sum(dim=1)


def focal_softmax(gamma, reduction, z, labels):
    logp = F.log_softmax(z, dim=1)[torch.arange(z.shape[0]), labels]
    if gamma == 0:
        per = -logp  # (1−p)^0 ≡ 1
    else:
        per = -((1.0 - logp.exp()) ** gamma) * logp
    return reduce(per, reduction)


def focal_sigmoid(gamma, alpha, reduction, z, tg):
    p = torch.sigmoid(z)
    ce = F.binary_cross_entropy_with_logits(z, tg, reduction="none")
    p_t = p * tg + (1 - p) * (1 - tg)
    loss = ce if gamma == 0 else ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * tg + (1 - alpha) * (1 - tg)) * loss
    return reduce(loss, reduction)


def center_loss(x, centers, labels, lam=1.0):
    d = x - centers[labels]
    return lam * (d * d).sum() / (2.0 * x.shape[0])


def center_update(x, centers, labels, alpha):
    """Simultaneous update from the pre-call centers, written as plain loops."""
    x = np.asarray(x)
    c_old = np.asarray(centers)
    out = c_old.copy()
    for j in range(c_old.shape[0]):
        rows = [i for i in range(x.shape[0]) if labels[i] == j]
        if not rows:
            continue
        delta = np.zeros(c_old.shape[1])
        for i in rows:
            delta += c_old[j] - x[i]
        out[j] = c_old[j] - alpha * delta / (1.0 + len(rows))
    return out


# --------------------------------------------------------------------------
# Input generation

def unit(v):
    return v / np.linalg.norm(v)


def row_ok(case, t, d):
    """Whether a row's target cosine keeps clear of |t| ≈ 1 and of branch
    thresholds (so float32 rounding cannot flip a branch)."""
    if d == 1:
        return True
    if abs(t) > T_LIMIT:
        return False
    kind = case["kind"]
    if kind == "arcface":
        m = case["m"]
        th = 0.0 if case["easy"] else math.cos(math.pi - m)
        if abs(t - th) < BRANCH_GAP:
            return False
    if kind in ("sphereface", "largemargin"):
        # ψ is C¹ at the k boundaries, but keep clear anyway so that k agrees.
        a = case["mi"] * math.acos(t) / math.pi
        if abs(a - round(a)) < 1e-4 and 0 < round(a) < case["mi"]:
            return False
    return True


def make_margin_inputs(rng, case, n, c, d, mode, xscale=1.0, wscale=1.0):
    """x (n×d), w (c×d), labels, all float32-representable float64 arrays.

    mode: "random"  — Gaussian x and w;
          "angles"  — each x_i at an angle θ_i ~ U[0.02, π−0.02] to W_{y_i};
          "anti"    — about half the rows nearly anti-aligned with W_{y_i}
                      (hits ArcFace's fallback branch), the rest random angles.
    """
    labels = rng.integers(0, c, size=n)
    if c > 1 and n >= c:
        labels[:c] = rng.permutation(c)  # every class appears at least once
    w = rng.standard_normal((c, d)) * wscale * np.exp(0.3 * rng.standard_normal((c, 1)))
    w = f32(w)
    x = np.zeros((n, d))
    for i in range(n):
        for _ in range(1000):
            r = xscale * math.exp(0.3 * rng.standard_normal())
            wy = unit(w[labels[i]])
            if d == 1 or mode == "random":
                row = rng.standard_normal(d) * xscale
            else:
                if mode == "anti" and rng.random() < 0.5:
                    theta = math.pi - rng.uniform(0.02, 0.6)
                else:
                    theta = rng.uniform(0.02, math.pi - 0.02)
                u = rng.standard_normal(d)
                u = unit(u - wy * (u @ wy))
                row = r * (math.cos(theta) * wy + math.sin(theta) * u)
            row = f32(row)
            if np.linalg.norm(row) == 0:
                continue
            t = float(unit(row) @ wy)
            if row_ok(case, t, d):
                break
        else:
            raise RuntimeError("could not draw a row for %r" % case)
        x[i] = row
    return x, w, labels


# --------------------------------------------------------------------------
# Output formatting

def fmt_in(a):
    """float32-representable inputs: 9 significant digits round-trip float32."""
    return [float("%.9g" % v) for v in np.asarray(a).ravel()]


def fmt_out(a):
    return [float("%.12g" % v) for v in np.asarray(a).ravel()]


# --------------------------------------------------------------------------
# Margin cases


def margin_case_dict(kind, **kw):
    case = dict(kind=kind, s=0.0, m=0.0, m1=0.0, m2=0.0, m3=0.0, mi=0, **{"lambda": 0.0})
    case.update(easy=False, detach=False, reduction="mean")
    case.update(kw)
    for key in ("s", "m", "m1", "m2", "m3", "lambda"):
        case[key] = f32s(case[key])  # the float32 the Go side will see
    return case


def run_margin(rng, case, n, c, d, mode, xscale=1.0, wscale=1.0):
    x, w, labels = make_margin_inputs(rng, case, n, c, d, mode, xscale, wscale)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    lt = torch.tensor(labels, dtype=torch.long)
    aux = {}
    loss = margin_loss(case, xt, wt, lt, aux)
    loss.backward()
    out = dict(case)
    if d == 1:
        # With D = 1 every normalised row is ±1 and the gradient through the
        # normalisation, (g − x̂(x̂·g))/‖x‖, is identically zero: the reference
        # dx / dw vanish, and a float32 result is the rounding residue of that
        # cancellation. Record the size of what cancels, max |∂L/∂x̂_i|/‖x_i‖,
        # as the scale for the Go side's tolerance.
        if "xn" in aux:
            out["dx_scale"] = float((aux["xn"].grad.abs() / xt.detach().norm(dim=1, keepdim=True)).max())
        if "wn" in aux:
            out["dw_scale"] = float((aux["wn"].grad.abs() / wt.detach().norm(dim=1, keepdim=True)).max())
    out.update(
        n=n, c=c, d=d,
        x=fmt_in(x), w=fmt_in(w), labels=[int(v) for v in labels],
        loss=float(loss.item()),
        dx=fmt_out(xt.grad.numpy()), dw=fmt_out(wt.grad.numpy()),
    )
    for v in out["dx"] + out["dw"] + [out["loss"]]:
        if not math.isfinite(v):
            raise RuntimeError("non-finite golden in %s" % out["name"])
    # Record branch statistics for the report.
    t = target_cos(case, torch.tensor(x), torch.tensor(w), lt).numpy()
    stats = {}
    if case["kind"] == "arcface" and not case["easy"]:
        stats["fallback_rows"] = int((t <= math.cos(math.pi - case["m"])).sum())
    if case["kind"] == "arcface" and case["easy"]:
        stats["negative_rows"] = int((t <= 0).sum())
    if case["kind"] in ("sphereface", "largemargin"):
        ks = np.floor(case["mi"] * np.arccos(np.clip(t, -1, 1)) / math.pi).astype(int)
        stats["k_values"] = sorted(set(int(k) for k in ks))
    out["stats"] = stats
    return out


SHAPES = [  # (N, C, D): every one of 1, 2, 3, 17, 300 appears as C and as D
    (1, 2, 3), (4, 3, 2), (8, 17, 3), (16, 5, 17), (64, 17, 17), (8, 300, 3),
    (16, 17, 300), (5, 2, 300), (3, 1, 4), (32, 10, 17), (2, 3, 300),
    (12, 7, 5), (24, 300, 2), (40, 17, 8), (9, 4, 17),
]


def margin_cases():
    rng = np.random.default_rng(20240601)
    cases = []
    si = [0]

    def shape():
        sh = SHAPES[si[0] % len(SHAPES)]
        si[0] += 1
        return sh

    def add(name, case, mode="angles", shp=None, **kw):
        case["name"] = name
        n, c, d = shp if shp else shape()
        cases.append(run_margin(rng, case, n, c, d, mode, **kw))

    scales = [1.0, 8.0, 30.0, 64.0, 16.0]
    # ArcFace: m × easy × detach, reductions and scales cycling.
    q = 0
    for m in (0.0, 0.2, 0.5, 1.0, 1.5):
        for easy in (False, True):
            for detach in (False, True):
                red = "mean" if q % 2 == 0 else "sum"
                s = scales[q % len(scales)]
                add("arcface/m%g/s%g/easy%d/detach%d/%s" % (m, s, easy, detach, red),
                    margin_case_dict("arcface", s=s, m=m, easy=easy, detach=detach, reduction=red),
                    mode="angles" if q % 3 else "random")
                q += 1
    # ArcFace fallback branch: large m, rows anti-aligned with W_y.
    for m, s, red, detach, shp in ((0.5, 64.0, "mean", False, (16, 5, 17)),
                                   (1.0, 30.0, "sum", False, (12, 7, 3)),
                                   (1.5, 64.0, "mean", True, (20, 17, 17)),
                                   (1.0, 8.0, "mean", True, (6, 3, 2)),
                                   (1.5, 16.0, "sum", False, (8, 300, 3))):
        add("arcface-fallback/m%g/s%g/detach%d/%s" % (m, s, detach, red),
            margin_case_dict("arcface", s=s, m=m, detach=detach, reduction=red),
            mode="anti", shp=shp)
    # CosFace.
    q = 0
    for m in (0.0, 0.1, 0.35, 0.5, 1.0):
        for detach in (False, True):
            red = "sum" if q % 2 == 0 else "mean"
            s = scales[(q + 2) % len(scales)]
            add("cosface/m%g/s%g/detach%d/%s" % (m, s, detach, red),
                margin_case_dict("cosface", s=s, m=m, detach=detach, reduction=red),
                mode="angles" if q % 3 else "random")
            q += 1
    # CombinedMargin.
    q = 0
    for m1, m2, m3 in ((1.0, 0.3, 0.2), (0.9, 0.4, 0.15), (1.2, 0.0, 0.1),
                       (1.0, 0.5, 0.0), (1.0, 0.0, 0.35)):
        for detach in (False, True):
            red = "mean" if q % 2 == 0 else "sum"
            s = scales[(q + 1) % len(scales)]
            add("combined/%g,%g,%g/s%g/detach%d/%s" % (m1, m2, m3, s, detach, red),
                margin_case_dict("combined", s=s, m1=m1, m2=m2, m3=m3, detach=detach, reduction=red),
                mode="angles" if q % 3 else "random")
            q += 1
    # SphereFace and LargeMargin: m = 1..8, several λ including 0. θ spread over
    # [0, π] so that many k occur. Detach is set on some to show it is ignored.
    lams = (0.0, 0.1, 1.0, 5.0)
    psi_shapes = [(16, 5, 17), (24, 3, 3), (12, 17, 2), (32, 7, 5), (8, 2, 300),
                  (20, 300, 3), (40, 10, 8), (10, 1, 3)]
    for kind in ("sphereface", "largemargin"):
        q = 0
        for mi in range(1, 9):
            for rep in range(2):
                lam = lams[(mi + 2 * rep) % len(lams)]
                red = "mean" if (mi + rep) % 2 == 0 else "sum"
                shp = psi_shapes[q % len(psi_shapes)]
                wscale = 1.0 if kind == "sphereface" else 0.7
                add("%s/m%d/lambda%g/%s" % (kind, mi, lam, red),
                    margin_case_dict(kind, mi=mi, **{"lambda": lam}, reduction=red, detach=bool(q % 3 == 1)),
                    mode="angles", shp=shp, xscale=1.5, wscale=wscale)
                q += 1
    # D = 1: every cosine is exactly ±1 (gradients through the normalisation
    # are exactly zero; the clamped acos derivative keeps them finite).
    for name, case, shp in (
        ("d1/arcface/m0.5/s30", margin_case_dict("arcface", s=30.0, m=0.5), (6, 4, 1)),
        ("d1/arcface/m0.5/s2/easy", margin_case_dict("arcface", s=2.0, m=0.5, easy=True, reduction="sum"), (5, 3, 1)),
        ("d1/cosface/m0.35/s30", margin_case_dict("cosface", s=30.0, m=0.35, reduction="sum"), (6, 4, 1)),
        ("d1/combined/1,0.3,0.2/s8", margin_case_dict("combined", s=8.0, m1=1.0, m2=0.3, m3=0.2), (7, 2, 1)),
        ("d1/sphereface/m4/lambda1", margin_case_dict("sphereface", mi=4, **{"lambda": 1.0}), (6, 3, 1)),
        ("d1/largemargin/m3/lambda0", margin_case_dict("largemargin", mi=3, reduction="sum"), (6, 3, 1)),
    ):
        add(name, case, mode="random", shp=shp)
    return cases


# --------------------------------------------------------------------------
# Focal and Center cases


def focal_cases():
    rng = np.random.default_rng(777)
    cases = []
    shapes = [(8, 5), (1, 2), (16, 17), (4, 300), (32, 3), (64, 10), (3, 1), (12, 2)]
    q = 0
    for gamma in (0.0, 0.5, 2.0, 5.0):
        for red in ("mean", "sum"):
            n, c = shapes[q % len(shapes)]
            if c == 1 and gamma == 0.5:
                n, c = 5, 4  # C = 1 makes p_y ≡ 1, where (1−p)^0.5 has no derivative
            q += 1
            z = f32(rng.standard_normal((n, c)) * (1.0 + 2.0 * rng.random()))
            labels = rng.integers(0, c, size=n)
            alpha = f32s(rng.choice([-1.0, 0.25, 0.9]))  # Softmax ignores Alpha
            zt = torch.tensor(z, requires_grad=True)
            loss = focal_softmax(gamma, red, zt, torch.tensor(labels))
            loss.backward()
            cases.append(dict(name="softmax/gamma%g/%s/%dx%d" % (gamma, red, n, c), kind="softmax",
                              gamma=f32s(gamma), alpha=alpha, reduction=red, n=n, c=c,
                              logits=fmt_in(z), labels=[int(v) for v in labels],
                              loss=float(loss.item()), dlogits=fmt_out(zt.grad.numpy())))
    shapes = [(8, 5), (1, 1), (16, 17), (4, 300), (64, 3), (6, 2), (3, 1), (10, 7)]
    q = 0
    for gamma in (0.0, 0.5, 2.0, 5.0):
        for alpha in (-1.0, 0.25):
            for soft in (False, True):
                red = "mean" if q % 2 == 0 else "sum"
                n, c = shapes[q % len(shapes)]
                q += 1
                z = f32(rng.standard_normal((n, c)) * (1.0 + 2.0 * rng.random()))
                if soft:
                    tg = f32(rng.random((n, c)))
                    tg.ravel()[:2] = [0.0, 1.0][: tg.size]  # include exact 0/1 too
                else:
                    tg = f32((rng.random((n, c)) < 0.3).astype(np.float64))
                zt = torch.tensor(z, requires_grad=True)
                loss = focal_sigmoid(gamma, f32s(alpha), red, zt, torch.tensor(tg))
                loss.backward()
                cases.append(dict(name="sigmoid/gamma%g/alpha%g/%s/%s/%dx%d" % (
                    gamma, alpha, "soft" if soft else "hard", red, n, c), kind="sigmoid",
                    gamma=f32s(gamma), alpha=f32s(alpha), reduction=red, n=n, c=c,
                    logits=fmt_in(z), targets=fmt_in(tg),
                    loss=float(loss.item()), dlogits=fmt_out(zt.grad.numpy())))
    return cases


def center_cases():
    rng = np.random.default_rng(4242)
    cases = []
    # lam is Center.Lambda (0 = the zero value, weight 1); it is drawn after
    # the original cases, so they keep their inputs.
    for n, c, d, alpha, lam in ((1, 1, 1, 0.5, 0), (8, 3, 2, 0.5, 0), (16, 17, 3, 0.1, 0), (32, 5, 17, 1.0, 0),
                                (4, 10, 300, 0.5, 0), (64, 17, 8, 0.05, 0), (12, 300, 2, 0.3, 0), (20, 2, 5, 0.9, 0),
                                (16, 5, 7, 0.5, 0.01), (9, 4, 33, 0.3, 0.003), (24, 6, 5, 0.5, 2.5), (8, 3, 4, 0.5, 1.0)):
        x = f32(rng.standard_normal((n, d)) * 2.0)
        centers = f32(rng.standard_normal((c, d)))
        # For C > 2 the last class never appears (its center must not move).
        labels = rng.integers(0, c - 1 if c > 2 else c, size=n)
        alpha, lam = f32s(alpha), f32s(lam)
        xt = torch.tensor(x, requires_grad=True)
        loss = center_loss(xt, torch.tensor(centers), torch.tensor(labels), lam if lam != 0 else 1.0)
        loss.backward()
        after = center_update(x, centers, labels, alpha)
        name = "center/%dx%dx%d/alpha%g" % (n, c, d, alpha) + ("/lambda%g" % lam if lam else "")
        cases.append(dict(name=name, n=n, c=c, d=d, alpha=alpha, **{"lambda": lam}, x=fmt_in(x), centers=fmt_in(centers),
                          labels=[int(v) for v in labels], loss=float(loss.item()),
                          dx=fmt_out(xt.grad.numpy()), centers_after=fmt_out(after)))
    return cases


# --------------------------------------------------------------------------
# Self-checks: gradcheck against finite differences, and identities.

FAIL = []


def check(cond, msg):
    print(("ok    " if cond else "FAIL  ") + msg)
    if not cond:
        FAIL.append(msg)


def self_checks():
    rng = np.random.default_rng(99)
    gc = dict(eps=1e-6, atol=1e-7, rtol=1e-5)
    variants = [
        margin_case_dict("arcface", s=4.0, m=0.5),
        margin_case_dict("arcface", s=4.0, m=1.5),
        margin_case_dict("arcface", s=4.0, m=0.5, easy=True, reduction="sum"),
        margin_case_dict("cosface", s=4.0, m=0.35),
        margin_case_dict("combined", s=4.0, m1=0.9, m2=0.4, m3=0.15, reduction="sum"),
        margin_case_dict("combined", s=4.0, m1=1.2, m2=0.0, m3=0.1),
    ] + [margin_case_dict(k, mi=mi, **{"lambda": lam}, reduction=r)
         for k in ("sphereface", "largemargin")
         for mi, lam, r in ((1, 0.0, "mean"), (2, 0.5, "sum"), (3, 0.0, "mean"), (4, 1.0, "sum"),
                            (6, 0.0, "mean"), (8, 5.0, "sum"))]
    for case in variants:
        for mode in ("angles", "anti"):
            x, w, labels = make_margin_inputs(rng, case, 6, 4, 5, mode)
            xt = torch.tensor(x, requires_grad=True)
            wt = torch.tensor(w, requires_grad=True)
            lt = torch.tensor(labels)
            ok = torch.autograd.gradcheck(lambda a, b: margin_loss(case, a, b, lt), (xt, wt),
                                          raise_exception=False, **gc)
            check(ok, "gradcheck %s %s mode=%s" % (case["kind"], {k: case[k] for k in
                  ("s", "m", "m1", "m2", "m3", "mi", "lambda", "easy", "reduction")}, mode))

    # DetachMargin: the gradient equals the true gradient of the surrogate in
    # which φ(t) − t is a per-row constant frozen at the evaluation point.
    for base in (margin_case_dict("arcface", s=8.0, m=0.5, detach=True),
                 margin_case_dict("arcface", s=8.0, m=1.0, detach=True, easy=True),
                 margin_case_dict("cosface", s=8.0, m=0.35, detach=True),
                 margin_case_dict("combined", s=8.0, m1=1.0, m2=0.3, m3=0.2, detach=True)):
        x, w, labels = make_margin_inputs(rng, base, 6, 4, 5, "anti")
        lt = torch.tensor(labels)
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(w, requires_grad=True)
        ld = margin_loss(base, xt, wt, lt)
        ld.backward()
        plain = dict(base, detach=False)
        lp = margin_loss(plain, torch.tensor(x), torch.tensor(w), lt)
        t0 = target_cos(base, torch.tensor(x), torch.tensor(w), lt)
        logits0 = margin_logits(plain, torch.tensor(x), torch.tensor(w), lt)
        off = (logits0[torch.arange(6), lt] / base["s"] - t0).detach()
        sur = dict(margin_case_dict("cosface", s=base["s"], m=0.0), reduction=base["reduction"])

        def surrogate(a, b):
            z = margin_logits(sur, a, b, lt)
            z = z + F.one_hot(lt, 4) * (base["s"] * off)[:, None]
            per = -F.log_softmax(z, dim=1)[torch.arange(6), lt]
            return reduce(per, base["reduction"])

        a = torch.tensor(x, requires_grad=True)
        b = torch.tensor(w, requires_grad=True)
        ls = surrogate(a, b)
        ls.backward()
        ok = torch.autograd.gradcheck(surrogate, (torch.tensor(x, requires_grad=True),
                                                  torch.tensor(w, requires_grad=True)),
                                      raise_exception=False, **gc)
        same = (abs(ld.item() - lp.item()) < 1e-12 and abs(ls.item() - lp.item()) < 1e-12
                and torch.allclose(xt.grad, a.grad, rtol=1e-12, atol=1e-14)
                and torch.allclose(wt.grad, b.grad, rtol=1e-12, atol=1e-14))
        check(ok and same, "detach %s m=%g: loss unchanged, grad = gradient of frozen-offset surrogate"
              % (base["kind"], base["m"] or base["m2"]))

    # Identities between the formulas.
    x, w, labels = make_margin_inputs(rng, margin_case_dict("cosface", s=1.0), 7, 5, 4, "angles")
    X, W, L = torch.tensor(x), torch.tensor(w), torch.tensor(labels)

    def lossof(**kw):
        kind = kw.pop("kind")
        return margin_loss(margin_case_dict(kind, **kw), X, W, L).item()

    xn = X / X.norm(dim=1, keepdim=True)
    wn = W / W.norm(dim=1, keepdim=True)
    plain_cos = F.cross_entropy(7.0 * xn @ wn.t(), L).item()
    check(abs(lossof(kind="arcface", s=7.0, m=0.0) - plain_cos) < 1e-12, "arcface m=0 == normalised softmax")
    check(abs(lossof(kind="cosface", s=7.0, m=0.0) - plain_cos) < 1e-12, "cosface m=0 == normalised softmax")
    check(abs(lossof(kind="combined", s=7.0, m1=1.0, m2=0.0, m3=0.35)
              - lossof(kind="cosface", s=7.0, m=0.35)) < 1e-12, "combined(1,0,m3) == cosface(m3)")
    check(abs(lossof(kind="sphereface", mi=1) - F.cross_entropy(X @ wn.t(), L).item()) < 1e-12,
          "sphereface m=1 == softmax of x·Ŵ")
    check(abs(lossof(kind="largemargin", mi=1, **{"lambda": 3.0}) - F.cross_entropy(X @ W.t(), L).item()) < 1e-12,
          "largemargin m=1 == plain softmax")
    # ψ at θ = kπ/m boundaries is continuous: ψ(kπ/m ± δ) agree to O(δ).
    for mi in range(2, 9):
        worst = 0.0
        for k in range(1, mi):
            th = k * math.pi / mi
            a = psi_target(torch.tensor([math.cos(th - 1e-9)]), mi, 0.0).item()
            b = psi_target(torch.tensor([math.cos(th + 1e-9)]), mi, 0.0).item()
            worst = max(worst, abs(a - b))
        check(worst < 1e-6, "psi continuous at k boundaries, m=%d (jump %.1e)" % (mi, worst))
    # Explicit ψ values: ψ(0) = 1, ψ(π) = 1 − 2m.
    for mi in range(1, 9):
        v0 = psi_target(torch.tensor([1.0]), mi, 0.0).item()
        vpi = psi_target(torch.tensor([-1.0]), mi, 0.0).item()
        check(abs(v0 - 1) < 1e-12 and abs(vpi - (1 - 2 * mi)) < 1e-9, "psi(0)=1, psi(pi)=1-2m for m=%d" % mi)

    # Focal and Center.
    for gamma in (0.0, 0.5, 2.0, 5.0):
        z = torch.tensor(f32(rng.standard_normal((5, 4)) * 2), requires_grad=True)
        lab = torch.tensor(rng.integers(0, 4, size=5))
        ok = torch.autograd.gradcheck(lambda a: focal_softmax(gamma, "mean", a, lab), (z,),
                                      raise_exception=False, **gc)
        check(ok, "gradcheck focal softmax gamma=%g" % gamma)
        for alpha in (-1.0, 0.25):
            for soft in (False, True):
                tg = torch.tensor(rng.random((5, 4)) if soft else (rng.random((5, 4)) < 0.3) * 1.0)
                ok = torch.autograd.gradcheck(lambda a: focal_sigmoid(gamma, alpha, "sum", a, tg), (z,),
                                              raise_exception=False, **gc)
                check(ok, "gradcheck focal sigmoid gamma=%g alpha=%g soft=%s" % (gamma, alpha, soft))
    z = torch.tensor(rng.standard_normal((6, 3)))
    check(abs(focal_softmax(0.0, "mean", z, torch.tensor([0, 1, 2, 0, 1, 2])).item()
              - F.cross_entropy(z, torch.tensor([0, 1, 2, 0, 1, 2])).item()) < 1e-12, "focal softmax gamma=0 == CE")
    tg = torch.tensor(rng.random((6, 3)))
    check(abs(focal_sigmoid(0.0, -1.0, "mean", z, tg).item()
              - F.binary_cross_entropy_with_logits(z, tg).item()) < 1e-12, "focal sigmoid gamma=0 alpha<0 == BCE")
    x = torch.tensor(rng.standard_normal((7, 3)), requires_grad=True)
    cen = torch.tensor(rng.standard_normal((4, 3)))
    lab = torch.tensor([0, 1, 1, 3, 3, 3, 0])
    check(torch.autograd.gradcheck(lambda a: center_loss(a, cen, lab), (x,), raise_exception=False, **gc),
          "gradcheck center loss")
    loss = center_loss(x, cen, lab)
    loss.backward()
    check(torch.allclose(x.grad, (x - cen[lab]).detach() / 7, rtol=1e-12, atol=1e-15), "center dx == (x−c)/N")


# --------------------------------------------------------------------------
# Sub-centers, label smoothing and LossFromCosines (golden_cosines.json)
#
# SubCenters = K: W has C·K rows, class c owning rows c·K … c·K+K−1; cos θ_c
# is the largest of the class's K cosines and the gradient flows to that row
# only (torch.max's backward). LabelSmoothing = ε is F.cross_entropy's
# label_smoothing on the margin logits: target (1−ε)·onehot + ε/C over the C
# classes. LossFromCosines takes the N×C·K cosines themselves.

SUB_GAP = 1e-3  # inputs keep each class's two largest cosines this far apart


def sub_max(cos, k):
    """N×(C·K) cosines → N×C: each class's largest (gradient to the arg-max)."""
    if k <= 1:
        return cos
    return cos.reshape(cos.shape[0], -1, k).max(dim=2).values


def pole_convention(f, t):
    """f(t) exactly, with the derivative f′ evaluated wholly at t clamped to
    [−1+CLAMP, 1−CLAMP]: the package's convention at the poles
    (asm.MarginForward). For |t| ≤ 1 − CLAMP it is f with its exact
    derivative. (SafeAcos alone clamps only the 1/sin θ factor; the two differ
    at |t| > 1 − CLAMP, where golden_margin.json's Loss gradients vanish.)"""
    tc = t + (t.clamp(-1.0 + CLAMP, 1.0 - CLAMP) - t).detach()  # straight-through
    return f(t).detach() + (f(tc) - f(tc).detach())


def cos_margin_logits(case, c, labels):
    """Margin logits (N×C) of ArcFace / CosFace / CombinedMargin from the
    per-class cosines c (N×C), φ with the pole convention."""
    kind = case["kind"]
    n, ncls = c.shape
    idx = torch.arange(n)
    onehot = F.one_hot(labels, ncls).bool()
    s = case["s"]
    t = c[idx, labels]
    if kind == "arcface":
        phi = pole_convention(lambda u: arc_phi(u, case["m"], case["easy"]), t)
    elif kind == "cosface":
        phi = t - case["m"]
    elif kind == "combined":
        phi = pole_convention(lambda u: torch.cos(case["m1"] * SafeAcos.apply(u) + case["m2"]) - case["m3"], t)
    else:
        raise ValueError(kind)
    if case["detach"]:
        phi = t + (phi - t).detach()
    return torch.where(onehot, (s * phi)[:, None].expand(n, ncls), s * c)


def smooth_ce(case, z, labels):
    return F.cross_entropy(z, labels, reduction=case["reduction"],
                           label_smoothing=case["label_smoothing"])


def cosine_loss(case, cos, labels):
    """LossFromCosines: cos is N×(C·K)."""
    c = sub_max(cos, case["sub_centers"])
    return smooth_ce(case, cos_margin_logits(case, c, labels), labels)


def ext_loss(case, x, w, labels):
    """Loss with SubCenters and LabelSmoothing: w is (C·K)×D."""
    if case["kind"] in ("arcface", "cosface", "combined"):
        xn = x / x.norm(dim=1, keepdim=True)
        wn = w / w.norm(dim=1, keepdim=True)
        return cosine_loss(case, xn @ wn.t(), labels)
    if case["sub_centers"] > 1:
        raise ValueError("sub-centers need a normalised kind")
    return smooth_ce(case, margin_logits(case, x, w, labels), labels)


def manual_smooth_ce(case, z, labels):
    """lse(z) − (1−ε)·z_y − (ε/C)·Σ_j z_j, reduced (the documented formula)."""
    eps = case["label_smoothing"]
    n, ncls = z.shape
    per = (torch.logsumexp(z, dim=1) - (1 - eps) * z[torch.arange(n), labels]
           - eps / ncls * z.sum(dim=1))
    return reduce(per, case["reduction"])


def ext_case_dict(kind, k=1, eps=0.0, **kw):
    case = margin_case_dict(kind, **kw)
    case["sub_centers"] = int(k)
    case["label_smoothing"] = f32s(eps)
    return case


def classes_ok(row, k, skip=None):
    """Whether every class (but skip) keeps its two largest of K apart."""
    if k <= 1:
        return True
    for j in range(len(row) // k):
        if j == skip:
            continue
        top = np.sort(row[j * k:(j + 1) * k])[-2:]
        if top[1] - top[0] < SUB_GAP:
            return False
    return True


def target_max(row, y, k):
    sub = row[y * k:(y + 1) * k]
    top = np.sort(sub)
    return float(top[-1]), (float(top[-1] - top[-2]) if k > 1 else 1.0)


def make_cos_inputs(rng, case, n, c, k, mode, pole=False):
    """cos (n×c·k), labels: float32-representable cosines in [−1, 1].

    Every row's target cosine (its class's largest) is cos θ with θ drawn as
    in make_margin_inputs' modes and kept clear of branch thresholds and
    |t| ≈ 1 (row_ok); every class keeps its two largest cosines SUB_GAP
    apart. pole: the first rows get target cosines of exactly 1 and −1 (1
    twice with sub-centers, where −1 would tie the class's K cosines), and
    some non-target entries exactly ±1 (the pole convention of φ′)."""
    labels = rng.integers(0, c, size=n)
    if c > 1 and n >= c:
        labels[:c] = rng.permutation(c)
    cos = np.zeros((n, c * k))
    for i in range(n):
        y = labels[i]
        for _ in range(1000):
            row = f32(rng.uniform(-1, 1, size=c * k) ** 3 if mode == "peaked" else rng.uniform(-1, 1, size=c * k))
            if mode == "anti" and rng.random() < 0.5:
                theta = math.pi - rng.uniform(0.02, 0.6)
            else:
                theta = rng.uniform(0.02, math.pi - 0.02)
            t = f32s(math.cos(theta))
            if pole and i < 2:
                # −1 as a class maximum would tie all K sub-centers
                t = 1.0 if i == 0 or k > 1 else -1.0
            if k > 1:
                if t - SUB_GAP <= -1:
                    continue
                pos = rng.integers(0, k)
                others = f32(rng.uniform(-1, t - SUB_GAP, size=k))
                others[pos] = t
                row[y * k:(y + 1) * k] = others
            else:
                row[y] = t
            if pole and c > 1:
                for j in range(c * k):
                    if j // k != y and rng.random() < 0.2:
                        row[j] = 1.0 if rng.random() < 0.5 else -1.0
            tm, gap = target_max(row, y, k)
            if tm != t or gap < SUB_GAP or not classes_ok(row, k, y):
                continue
            if (pole and i < 2) or row_ok(case, t, 2):
                break
        else:
            raise RuntimeError("could not draw a cosine row for %r" % case)
        cos[i] = row
    return cos, labels


def make_ext_inputs(rng, case, n, c, d, k, mode, xscale=1.0, wscale=1.0):
    """x (n×d), w (c·k×d), labels: as make_margin_inputs, with each x_i at
    an angle to one random sub-center of its class, and every class's two
    largest cosines kept SUB_GAP apart."""
    if k == 1:
        return make_margin_inputs(rng, case, n, c, d, mode, xscale, wscale)
    labels = rng.integers(0, c, size=n)
    if c > 1 and n >= c:
        labels[:c] = rng.permutation(c)
    w = f32(rng.standard_normal((c * k, d)) * wscale * np.exp(0.3 * rng.standard_normal((c * k, 1))))
    wn = w / np.linalg.norm(w, axis=1, keepdims=True)
    x = np.zeros((n, d))
    for i in range(n):
        y = labels[i]
        for _ in range(1000):
            r = xscale * math.exp(0.3 * rng.standard_normal())
            wy = wn[y * k + rng.integers(0, k)]
            if mode == "random":
                row = rng.standard_normal(d) * xscale
            else:
                if mode == "anti" and rng.random() < 0.5:
                    theta = math.pi - rng.uniform(0.02, 0.6)
                else:
                    theta = rng.uniform(0.02, math.pi - 0.02)
                u = rng.standard_normal(d)
                u = unit(u - wy * (u @ wy))
                row = r * (math.cos(theta) * wy + math.sin(theta) * u)
            row = f32(row)
            if np.linalg.norm(row) == 0:
                continue
            cs = wn @ unit(row)
            t, gap = target_max(cs, y, k)
            if gap >= SUB_GAP and classes_ok(cs, k) and row_ok(case, t, d):
                break
        else:
            raise RuntimeError("could not draw a row for %r" % case)
        x[i] = row
    return x, w, labels


def case_stats(case, t):
    stats = {}
    if case["kind"] == "arcface" and not case["easy"]:
        stats["fallback_rows"] = int((t <= math.cos(math.pi - case["m"])).sum())
    if case["kind"] == "arcface" and case["easy"]:
        stats["negative_rows"] = int((t <= 0).sum())
    if case["kind"] in ("sphereface", "largemargin"):
        ks = np.floor(case["mi"] * np.arccos(np.clip(t, -1, 1)) / math.pi).astype(int)
        stats["k_values"] = sorted(set(int(v) for v in ks))
    return stats


def run_cosine(rng, name, case, n, c, mode="angles", pole=False):
    k = case["sub_centers"]
    cos, labels = make_cos_inputs(rng, case, n, c, k, mode, pole)
    ct = torch.tensor(cos, requires_grad=True)
    lt = torch.tensor(labels, dtype=torch.long)
    loss = cosine_loss(case, ct, lt)
    loss.backward()
    out = dict(case, name=name, n=n, c=c, k=k, cos=fmt_in(cos), labels=[int(v) for v in labels],
               loss=float(loss.item()), dcos=fmt_out(ct.grad.numpy()))
    for v in out["dcos"] + [out["loss"]]:
        if not math.isfinite(v):
            raise RuntimeError("non-finite golden in %s" % name)
    t = sub_max(torch.tensor(cos), k)[torch.arange(n), lt].numpy()
    out["stats"] = case_stats(case, t)
    if pole:
        out["stats"]["pole_rows"] = int((np.abs(t) == 1).sum())
    return out


def run_ext(rng, name, case, n, c, d, mode="angles", xscale=1.0, wscale=1.0):
    k = case["sub_centers"]
    x, w, labels = make_ext_inputs(rng, case, n, c, d, k, mode, xscale, wscale)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    lt = torch.tensor(labels, dtype=torch.long)
    loss = ext_loss(case, xt, wt, lt)
    loss.backward()
    out = dict(case, name=name, n=n, c=c, d=d, k=k, x=fmt_in(x), w=fmt_in(w),
               labels=[int(v) for v in labels], loss=float(loss.item()),
               dx=fmt_out(xt.grad.numpy()), dw=fmt_out(wt.grad.numpy()))
    for v in out["dx"] + out["dw"] + [out["loss"]]:
        if not math.isfinite(v):
            raise RuntimeError("non-finite golden in %s" % name)
    X, W = torch.tensor(x), torch.tensor(w)
    if case["kind"] in ("arcface", "cosface", "combined"):
        cs = sub_max((X / X.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=1, keepdim=True)).t(), k)
        t = cs[torch.arange(n), lt].numpy()
    else:
        t = target_cos(case, X, W, lt).numpy()
    out["stats"] = case_stats(case, t)
    return out


def cosine_goldens():
    rng = np.random.default_rng(20250301)
    cos_cases, loss_cases = [], []

    def add_cos(case, n, c, mode="angles", pole=False, tag=""):
        name = "cos/%s/k%d/eps%g/%s%s/%dx%d%s" % (
            case["kind"], case["sub_centers"], case["label_smoothing"], desc(case), case["reduction"], n, c, tag)
        cos_cases.append(run_cosine(rng, name, case, n, c, mode, pole))

    def add_ext(case, n, c, d, mode="angles", **kw):
        name = "loss/%s/k%d/eps%g/%s%s/%dx%dx%d" % (
            case["kind"], case["sub_centers"], case["label_smoothing"], desc(case), case["reduction"], n, c, d)
        loss_cases.append(run_ext(rng, name, case, n, c, d, mode, **kw))

    # LossFromCosines: kinds × K × ε, with EasyMargin, DetachMargin, Sum.
    # Round r and kind index ki pick the reduction, DetachMargin and the
    # input mode so that every kind gets each of them.
    shapes = [(4, 3), (8, 17), (16, 5), (3, 300), (1, 1), (12, 7), (32, 10), (2, 2), (6, 40)]
    modes = ("angles", "anti", "random", "peaked")
    q = 0
    for r, (k, eps) in enumerate((k, eps) for k in (1, 3, 4, 2) for eps in (0.0, 0.1, 0.3)):
        for ki, case in enumerate((ext_case_dict("arcface", k, eps, s=30.0, m=0.5),
                                   ext_case_dict("arcface", k, eps, s=64.0, m=1.0, easy=True),
                                   ext_case_dict("cosface", k, eps, s=16.0, m=0.35),
                                   ext_case_dict("combined", k, eps, s=8.0, m1=0.9, m2=0.4, m3=0.15))):
            case["reduction"] = "mean" if (r + ki) % 2 == 0 else "sum"
            case["detach"] = (r // 2 + ki) % 3 == 1
            n, c = shapes[q % len(shapes)]
            add_cos(case, n, c, mode=modes[(r // 3 + ki) % 4])
            q += 1
    # ArcFace's fallback branch (rows anti-aligned), with sub-centers.
    for k, eps, red in ((1, 0.2, "mean"), (3, 0.0, "sum"), (2, 0.1, "sum")):
        add_cos(ext_case_dict("arcface", k, eps, s=64.0, m=1.5, reduction=red), 16, 9, mode="anti")
    # Exactly ±1 cosines: φ is exact, φ′ takes t clamped to ±(1 − 1e-6).
    for case in (ext_case_dict("arcface", 1, 0.0, s=30.0, m=0.5),
                 ext_case_dict("arcface", 3, 0.1, s=8.0, m=0.5, easy=True, reduction="sum"),
                 ext_case_dict("combined", 1, 0.1, s=16.0, m1=1.2, m2=0.3, m3=0.1),
                 ext_case_dict("combined", 2, 0.0, s=4.0, m1=0.9, m2=0.4, m3=0.15, reduction="sum"),
                 ext_case_dict("cosface", 2, 0.25, s=30.0, m=0.35)):
        add_cos(case, 6, 5, pole=True, tag="/pole")

    # Loss (x, w): sub-centers for the normalised kinds, label smoothing for
    # all five kinds.
    ext_shapes = [(8, 5, 17), (4, 3, 2), (16, 17, 3), (12, 7, 5), (5, 2, 300), (1, 1, 4), (32, 10, 8), (9, 4, 17)]
    rounds = [(k, eps) for k in (1, 2, 3) for eps in (0.0, 0.1, 0.25)
              if (k, eps) != (1, 0.0)]  # golden_margin.json has K = 1, ε = 0
    q = 0
    for r, (k, eps) in enumerate(rounds):
        for ki, case in enumerate((ext_case_dict("arcface", k, eps, s=30.0, m=0.5),
                                   ext_case_dict("cosface", k, eps, s=16.0, m=0.35),
                                   ext_case_dict("combined", k, eps, s=8.0, m1=1.0, m2=0.3, m3=0.2))):
            case["reduction"] = "sum" if (r + ki) % 2 == 0 else "mean"
            case["detach"] = (r // 2 + ki) % 3 == 1
            case["easy"] = case["kind"] == "arcface" and r % 3 == 2
            n, c, d = ext_shapes[q % len(ext_shapes)]
            add_ext(case, n, c, d, mode=("angles", "anti", "random")[(r // 2 + 2 * ki) % 3])
            q += 1
    for kind, wscale in (("sphereface", 1.0), ("largemargin", 0.7)):
        for mi, lam, eps, red, detach in ((1, 0.0, 0.1, "mean", False), (2, 1.0, 0.25, "sum", False),
                                          (4, 5.0, 0.1, "mean", True), (3, 0.1, 0.5, "sum", False)):
            n, c, d = ext_shapes[q % len(ext_shapes)]
            add_ext(ext_case_dict(kind, 1, eps, mi=mi, **{"lambda": lam}, reduction=red, detach=detach),
                    n, c, d, xscale=1.5, wscale=wscale)
            q += 1
    return {"cosine_cases": cos_cases, "loss_cases": loss_cases}


def desc(case):
    kind = case["kind"]
    if kind in ("arcface", "cosface"):
        s = "s%g/m%g/" % (case["s"], case["m"])
    elif kind == "combined":
        s = "s%g/%g,%g,%g/" % (case["s"], case["m1"], case["m2"], case["m3"])
    else:
        s = "m%d/lambda%g/" % (case["mi"], case["lambda"])
    if case["easy"]:
        s += "easy/"
    if case["detach"]:
        s += "detach/"
    return s


def cosine_self_checks():
    """gradcheck of cosine_loss and ext_loss, and identities between them and
    the formulas of golden_margin.json."""
    rng = np.random.default_rng(4711)
    gc = dict(eps=1e-6, atol=1e-7, rtol=1e-5)
    variants = []
    for k in (1, 3):
        for eps in (0.0, 0.2):
            variants += [ext_case_dict("arcface", k, eps, s=4.0, m=0.5),
                         ext_case_dict("arcface", k, eps, s=4.0, m=1.5, reduction="sum"),
                         ext_case_dict("arcface", k, eps, s=4.0, m=0.5, easy=True),
                         ext_case_dict("cosface", k, eps, s=4.0, m=0.35, reduction="sum"),
                         ext_case_dict("combined", k, eps, s=4.0, m1=0.9, m2=0.4, m3=0.15)]
    for case in variants:
        for mode in ("angles", "anti"):
            cos, labels = make_cos_inputs(rng, case, 6, 4, case["sub_centers"], mode)
            lt = torch.tensor(labels)
            ok = torch.autograd.gradcheck(lambda a: cosine_loss(case, a, lt),
                                          (torch.tensor(cos, requires_grad=True),), raise_exception=False, **gc)
            check(ok, "gradcheck cosine_loss %s k=%d eps=%g mode=%s" % (
                desc(case), case["sub_centers"], case["label_smoothing"], mode))
            x, w, labels = make_ext_inputs(rng, case, 6, 4, 5, case["sub_centers"], mode)
            lt = torch.tensor(labels)
            ok = torch.autograd.gradcheck(lambda a, b: ext_loss(case, a, b, lt),
                                          (torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)),
                                          raise_exception=False, **gc)
            check(ok, "gradcheck ext_loss %s k=%d eps=%g mode=%s" % (
                desc(case), case["sub_centers"], case["label_smoothing"], mode))
    for kind in ("sphereface", "largemargin"):
        for mi, lam in ((2, 0.5), (4, 0.0)):
            case = ext_case_dict(kind, 1, 0.2, mi=mi, **{"lambda": lam})
            x, w, labels = make_ext_inputs(rng, case, 6, 4, 5, 1, "angles")
            lt = torch.tensor(labels)
            ok = torch.autograd.gradcheck(lambda a, b: ext_loss(case, a, b, lt),
                                          (torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)),
                                          raise_exception=False, **gc)
            check(ok, "gradcheck ext_loss %s eps=0.2" % desc(case))

    # The pole convention: φ′(±1) is φ′ at ±(1 − CLAMP), in closed form.
    for t0 in (1.0, -1.0):
        tc = math.copysign(1 - CLAMP, t0)
        sc = math.sqrt(1 - tc * tc)
        for case, want in (
                (ext_case_dict("arcface", s=1.0, m=0.5), math.cos(0.5) + tc * math.sin(0.5) / sc if t0 > 0 else 1.0),
                (ext_case_dict("arcface", s=1.0, m=0.5, easy=True), math.cos(0.5) + tc * math.sin(0.5) / sc if t0 > 0 else 1.0),
                (ext_case_dict("combined", s=1.0, m1=1.2, m2=0.3, m3=0.1),
                 f32s(1.2) * math.sin(f32s(1.2) * math.acos(tc) + f32s(0.3)) / sc)):
            t = torch.tensor([t0], requires_grad=True)
            z = cos_margin_logits(case, t[:, None], torch.tensor([0]))
            z.sum().backward()
            check(abs(t.grad.item() - want) <= 1e-9 * abs(want),
                  "pole convention %s t=%g: dphi %.12g == %.12g" % (desc(case), t0, t.grad.item(), want))
    # F.cross_entropy's label_smoothing is the documented formula.
    z = torch.tensor(rng.standard_normal((7, 5)) * 3)
    lab = torch.tensor(rng.integers(0, 5, size=7))
    for eps in (0.0, 0.1, 0.9):
        for red in ("mean", "sum"):
            case = dict(label_smoothing=eps, reduction=red)
            check(abs(smooth_ce(case, z, lab).item() - manual_smooth_ce(case, z, lab).item()) < 1e-12,
                  "label_smoothing=%g %s == lse − (1−ε)z_y − (ε/C)Σz" % (eps, red))
    # ε = 0 and K = 1: the formulas of golden_margin.json, from x, w and
    # from their cosines.
    for base in (margin_case_dict("arcface", s=8.0, m=0.5), margin_case_dict("cosface", s=8.0, m=0.35),
                 margin_case_dict("combined", s=8.0, m1=0.9, m2=0.4, m3=0.15, reduction="sum"),
                 margin_case_dict("arcface", s=8.0, m=0.5, detach=True),
                 margin_case_dict("sphereface", mi=3, **{"lambda": 1.0}),
                 margin_case_dict("largemargin", mi=2, reduction="sum")):
        case = dict(base, sub_centers=1, label_smoothing=0.0)
        x, w, labels = make_margin_inputs(rng, base, 7, 5, 4, "angles")
        X, W, L = torch.tensor(x), torch.tensor(w), torch.tensor(labels)
        a = margin_loss(base, X, W, L).item()
        check(abs(ext_loss(case, X, W, L).item() - a) < 1e-12, "ext_loss %s k=1 eps=0 == margin_loss" % base["kind"])
        if base["kind"] in ("arcface", "cosface", "combined"):
            cs = (X / X.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=1, keepdim=True)).t()
            check(abs(cosine_loss(case, cs, L).item() - a) < 1e-12, "cosine_loss %s on x̂·Ŵᵀ == margin_loss" % base["kind"])
    # Sub-centers: the loss is the K = 1 loss on each class's arg-max row of
    # W, and the gradient of every other sub-center row is zero.
    for eps in (0.0, 0.3):
        case = ext_case_dict("arcface", 3, eps, s=8.0, m=0.5)
        x, w, labels = make_ext_inputs(rng, case, 7, 5, 4, 3, "angles")
        X, L = torch.tensor(x), torch.tensor(labels)
        W = torch.tensor(w, requires_grad=True)
        lk = ext_loss(case, X, W, L)
        lk.backward()
        cs = (X / X.norm(dim=1, keepdim=True)) @ (W.detach() / W.detach().norm(dim=1, keepdim=True)).t()
        arg = cs.reshape(7, 5, 3).argmax(dim=2)  # per row and class
        tot = 0.0
        for i in range(7):
            wi = torch.stack([W.detach()[j * 3 + int(arg[i, j])] for j in range(5)])
            tot += ext_loss(dict(case, sub_centers=1, reduction="sum"), X[i:i + 1], wi, L[i:i + 1]).item()
        tot /= 7
        used = set(j * 3 + int(arg[i, j]) for i in range(7) for j in range(5))
        unused_zero = all(float(W.grad[r].abs().max()) == 0.0 for r in range(15) if r not in used)
        check(abs(tot - lk.item()) < 1e-12 and unused_zero,
              "sub-centers eps=%g: loss == K=1 loss on the arg-max rows; unused rows get no gradient" % eps)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outdir", default=HERE, help="where to write (default: testdata/)")
    ap.add_argument("files", nargs="*", help="golden files to write (default: all of %s)" % ", ".join(GOLDEN_FILES))
    args = ap.parse_args()
    names = args.files or list(GOLDEN_FILES)
    for name in names:
        if name not in GOLDEN_FILES:
            ap.error("unknown golden file %r (want one of %s)" % (name, ", ".join(GOLDEN_FILES)))
    self_checks()
    cosine_self_checks()
    if FAIL:
        print("\n%d self-check(s) FAILED; no golden files written" % len(FAIL), file=sys.stderr)
        sys.exit(1)
    outputs = {name: GOLDEN_FILES[name]() for name in GOLDEN_FILES if name in names}
    for fname, cases in outputs.items():
        doc = {
            "generator": "testdata/gen_golden.py (torch %s, float64)" % torch.__version__,
        }
        if isinstance(cases, dict):
            doc.update(cases)
        else:
            doc["cases"] = cases
        path = os.path.join(args.outdir, fname)
        with open(path, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
            fh.write("\n")
        n = sum(len(v) for v in cases.values()) if isinstance(cases, dict) else len(cases)
        print("wrote %s: %d cases, %d bytes" % (fname, n, os.path.getsize(path)))
    for fname in ("golden_margin.json", "golden_cosines.json"):
        if fname not in outputs:
            continue
        groups = outputs[fname].values() if isinstance(outputs[fname], dict) else [outputs[fname]]
        for group in groups:
            for c in group:
                if c["stats"]:
                    print("  %-60s %s" % (c["name"], c["stats"]))


GOLDEN_FILES = {
    "golden_margin.json": margin_cases,
    "golden_focal.json": focal_cases,
    "golden_center.json": center_cases,
    "golden_cosines.json": cosine_goldens,
}


if __name__ == "__main__":
    main()
