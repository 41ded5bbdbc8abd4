#!/usr/bin/python3
"""Golden steps of torch.optim.SGD and torch.optim.AdamW for
github.com/marginloss/marginloss/optim.

Run from the repository root with Debian's interpreter (python3-torch 1.13):

    /usr/bin/python3 testdata/optim_golden.py [--out PATH]

It writes testdata/golden_optim.json. Every case runs the real torch
optimizer (the single-tensor path, torch 1.13's default on CPU) on float32
tensors for several steps. Inputs and hyper-parameters are exactly
float32-representable (rounded to float32 first), so that the Go side feeds
bit-identical values to its float32 API; the parameters are recorded after
chosen steps as float32 values. Sizes are chosen so that the vector loops'
tails (16 and 8 lanes) are exercised.

"flat" cases step one tensor (optim's Step). "rows" cases step a R×D matrix
whose rows are separate torch parameters, each call setting .grad only on
the listed rows and None on the others, which torch skips: that is
StepRows' lazy rule (own buffer, first-step rule and step count per row).

The script is deterministic (fixed numpy seeds).
"""

import argparse
import json
import sys

import numpy as np
import torch

torch.set_num_threads(1)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def f32s(v):
    return float(np.float32(v))


def floats(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def make_opt(kind, params, hp):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], dampening=hp["dampening"],
                               weight_decay=hp["weight_decay"], nesterov=hp["nesterov"], foreach=False)
    return torch.optim.AdamW(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                             weight_decay=hp["weight_decay"], amsgrad=False, foreach=False)


def rounded(hp):
    return {k: (f32s(v) if isinstance(v, float) else v) for k, v in hp.items()}


def flat_case(name, kind, hp, n, steps, rng, pscale=1.0, gscale=1.0, record=None):
    hp = rounded(hp)
    p0 = f32(rng.standard_normal(n) * pscale)
    grads = f32(rng.standard_normal((steps, n)) * gscale)
    # a few exact zeros of both signs in the gradients
    if n > 5:
        grads[:, 3] = 0.0
        grads[::2, 5] = -0.0
    p = torch.tensor(p0.copy())
    opt = make_opt(kind, [p], hp)
    record = sorted(set(record or [1, 2, steps // 2, steps]) - {0})
    after = []
    for t in range(1, steps + 1):
        p.grad = torch.tensor(grads[t - 1].copy())
        opt.step()
        if t in record:
            after.append(dict(step=t, p=floats(p.detach().numpy())))
    return dict(name=name, kind=kind, hp=hp, n=n, steps=steps, p0=floats(p0),
                grads=[floats(g) for g in grads], after=after)


def rows_case(name, kind, hp, r, d, schedule, rng):
    """schedule: one list of ascending row indices per call."""
    hp = rounded(hp)
    p0 = f32(rng.standard_normal((r, d)))
    params = [torch.tensor(p0[i].copy()) for i in range(r)]
    opt = make_opt(kind, params, hp)
    calls = []
    for rows in schedule:
        g = f32(rng.standard_normal((len(rows), d)) * 0.5)
        for p in params:
            p.grad = None
        for k, i in enumerate(rows):
            params[i].grad = torch.tensor(g[k].copy())
        opt.step()
        calls.append(dict(rows=list(rows), grads=floats(g)))
    final = np.stack([p.detach().numpy() for p in params])
    return dict(name=name, kind=kind, hp=hp, r=r, d=d, p0=floats(p0), calls=calls, p=floats(final))


class PolyScheduler(torch.optim.lr_scheduler._LRScheduler):
    """arcface_torch's PolyScheduler, written from its definition: linear
    warm-up base_lr*k/warmup for k < warmup, then base_lr*(1 - (k - warmup)/
    (max - warmup))**power; constructed as arcface_torch constructs it (the
    base class's initial step, then last_epoch reset to -1)."""

    def __init__(self, optimizer, base_lr, max_steps, warmup_steps, power=2):
        self.base_lr, self.max_steps, self.warmup_steps, self.power = base_lr, max_steps, warmup_steps, power
        super().__init__(optimizer, -1, False)
        self.last_epoch = -1

    def get_lr(self):
        k = self.last_epoch
        if k == -1:
            return [0.0001 for _ in self.optimizer.param_groups]
        if k < self.warmup_steps:
            return [self.base_lr * (float(k) / float(self.warmup_steps)) for _ in self.optimizer.param_groups]
        a = pow(1 - float(k - self.warmup_steps) / float(self.max_steps - self.warmup_steps), self.power)
        return [self.base_lr * a for _ in self.optimizer.param_groups]


def poly_cases():
    """The lr the optimizer sees at each step of arcface_torch's loop
    (opt.step(); scheduler.step())."""
    cases = []
    for base, total, warm, power in ((0.1, 50, 5, 2), (0.02, 40, 0, 2), (1.0, 30, 10, 3), (0.1, 1000, 100, 2)):
        base = f32s(base)
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=base)
        sched = PolyScheduler(opt, base, total, warm, power)
        lrs = []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        cases.append(dict(base=base, total=total, warmup=warm, power=power, lr=lrs))
    return cases


def clip_cases(rng):
    cases = []
    for sizes, scale, max_norm in (((37, 5, 300), 1.0, 5.0), ((1000,), 0.01, 5.0), ((17, 17), 3.0, 0.5),
                                   ((64, 1, 129), 1e-3, 1e-4), ((9,), 2.0, 100.0)):
        gs = [f32(rng.standard_normal(n) * scale) for n in sizes]
        ps = [torch.nn.Parameter(torch.zeros(n)) for n in sizes]
        for p, g in zip(ps, gs):
            p.grad = torch.tensor(g.copy())
        total = torch.nn.utils.clip_grad_norm_(ps, f32s(max_norm))
        cases.append(dict(max_norm=f32s(max_norm), grads=[floats(g) for g in gs], total=float(total.item()),
                          clipped=[floats(p.grad.numpy()) for p in ps]))
    return cases


def sgd(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    return dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)


def adamw(lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2):
    return dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/golden_optim.json")
    args = ap.parse_args()
    rng = np.random.default_rng(1813)
    flat = []
    sgd_cfgs = [
        ("plain", sgd(0.1)),
        ("wd", sgd(0.05, weight_decay=1e-2)),
        ("momentum", sgd(0.1, momentum=0.9)),
        ("momentum-dampening", sgd(0.1, momentum=0.9, dampening=0.1)),
        ("momentum-dampening-wd", sgd(0.02, momentum=0.5, dampening=0.3, weight_decay=5e-4)),
        ("nesterov", sgd(0.1, momentum=0.9, nesterov=True)),
        ("nesterov-wd", sgd(0.01, momentum=0.95, weight_decay=5e-4, nesterov=True)),
        ("arcface", sgd(0.1, momentum=0.9, weight_decay=5e-4)),
        ("lr0", sgd(0.0, momentum=0.9, weight_decay=1e-3)),
    ]
    for name, hp in sgd_cfgs:
        for n in (1, 37, 67):
            flat.append(flat_case("sgd/%s/n%d" % (name, n), "sgd", hp, n, 12, rng))
    flat.append(flat_case("sgd/momentum/many", "sgd", sgd(0.05, momentum=0.9, weight_decay=1e-4), 19, 400, rng,
                          record=[1, 10, 100, 399, 400]))
    adamw_cfgs = [
        ("default", adamw(1e-3)),
        ("no-wd", adamw(1e-2, weight_decay=0.0)),
        ("beta2-9999", adamw(1e-3, beta2=0.9999)),
        ("betas-05-099", adamw(3e-2, beta1=0.5, beta2=0.99, eps=1e-6, weight_decay=0.1)),
        ("beta1-0", adamw(1e-3, beta1=0.0, beta2=0.9, eps=1e-3)),
        ("big-wd", adamw(1e-1, weight_decay=1.0)),
    ]
    for name, hp in adamw_cfgs:
        for n in (1, 37, 67):
            flat.append(flat_case("adamw/%s/n%d" % (name, n), "adamw", hp, n, 12, rng, gscale=0.1))
    flat.append(flat_case("adamw/beta2-9999/many", "adamw", adamw(1e-3, beta2=0.9999), 23, 1000, rng, gscale=0.05,
                          record=[1, 2, 3, 10, 100, 500, 999, 1000]))
    flat.append(flat_case("adamw/default/many", "adamw", adamw(5e-4, weight_decay=5e-2), 17, 600, rng, gscale=1.0,
                          record=[1, 50, 300, 600]))
    flat.append(flat_case("adamw/tiny-grads", "adamw", adamw(1e-3, eps=1e-8), 41, 30, rng, gscale=1e-6))

    rows = []
    sched = [[0, 2, 5], [1, 2], [0, 1, 2, 3, 4, 5], [], [2, 4], [0, 2, 5], [5], [0, 1, 2, 3, 4, 5]]
    for name, hp in [("sgd/momentum", sgd(0.1, momentum=0.9)),
                     ("sgd/nesterov-wd", sgd(0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)),
                     ("sgd/dampening", sgd(0.1, momentum=0.8, dampening=0.25)),
                     ("sgd/plain", sgd(0.2))]:
        rows.append(rows_case("rows/" + name, "sgd", hp, 6, 19, sched, rng))
    for name, hp in [("adamw/default", adamw(1e-2)),
                     ("adamw/beta2-9999", adamw(1e-3, beta2=0.9999, weight_decay=0.0))]:
        rows.append(rows_case("rows/" + name, "adamw", hp, 6, 19, sched, rng))
    long_sched = [sorted(rng.choice(40, size=int(rng.integers(1, 12)), replace=False).tolist()) for _ in range(60)]
    rows.append(rows_case("rows/adamw/long", "adamw", adamw(3e-3, beta2=0.9999), 40, 5, long_sched, rng))
    rows.append(rows_case("rows/sgd/long", "sgd", sgd(0.05, momentum=0.9, weight_decay=5e-4), 40, 5, long_sched, rng))

    doc = dict(torch=torch.__version__, flat=flat, rows=rows, poly=poly_cases(), clip=clip_cases(rng))
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print("wrote %s: %d flat cases, %d rows cases" % (args.out, len(flat), len(rows)))


if __name__ == "__main__":
    sys.exit(main())
