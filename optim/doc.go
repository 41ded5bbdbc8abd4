// Package optim holds the optimizers of a training loop around the loss
// heads, as arcface_torch uses them: SGD and AdamW with torch.optim's
// arithmetic (float32, torch 1.13's operation order and fused multiply-adds,
// so a step gives torch's bits), a lazy per-row step for Partial FC's
// sampled rows (StepRows), arcface_torch's polynomial learning-rate
// schedule with warm-up (PolyLR), torch's clip_grad_norm_ (ClipGradNorm)
// and a deterministic normal initialisation (Normal).
//
// Errors wrap the loss package's sentinels (loss.ErrShape, loss.ErrParam,
// loss.ErrNonFinite, loss.ErrOverlap); on error nothing is written. Steps
// run in fixed chunks on GOMAXPROCS goroutines, give the same bits for any
// GOMAXPROCS, and allocate nothing once their State is sized.
//
// The optimizers bound to their State (SGD.Fused, AdamW.Fused) are a
// loss.WeightStepper, which the heads apply to each tile of W in the backward
// pass, so that the C×D gradient of W is never stored.
//
// A *State is a checkpoint.State: File.Save(prefix, st) and File.Load
// (package checkpoint, safetensors) carry it across processes, and the
// steps after a restore give the bits of an uninterrupted run.
package optim
