package loss

import "math"

// LambdaSchedule is the λ annealing of SphereFace and L-Softmax: training
// starts close to a plain softmax (large λ) and the margin takes over as λ
// decays:
//
//	λ(iter) = max(Min, Base·(1 + Gamma·iter)^(−Power))
type LambdaSchedule struct {
	Base, Gamma, Power, Min float32
}

// DefaultLambdaSchedule returns SphereFace's published schedule: Base 1000,
// Gamma 0.12, Power 1, Min 5.
func DefaultLambdaSchedule() LambdaSchedule {
	return LambdaSchedule{Base: 1000, Gamma: 0.12, Power: 1, Min: 5}
}

// At returns λ at iteration iter (iter < 0 counts as 0).
func (s LambdaSchedule) At(iter int) float32 {
	if iter < 0 {
		iter = 0
	}
	v := float64(s.Base) * math.Pow(1+float64(s.Gamma)*float64(iter), -float64(s.Power))
	return float32(math.Max(float64(s.Min), v))
}
