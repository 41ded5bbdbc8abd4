// Package bench holds marginloss's benchmarks: every kernel at every level
// the CPU supports, and the full loss heads. They report GFLOP/s or GB/s
// through b.ReportMetric, so benchstat can compare runs:
//
//	go test ./bench -run '^$' -bench . -count 5 | tee new.txt
//	benchstat old.txt new.txt
//
// Compare levels as ratios taken in one run; absolute times on a shared
// machine swing by up to 2× between runs.
package bench
