//go:build race

package loss_test

// raceEnabled: under the race detector sync.Pool drops a quarter of what
// is Put (on purpose), so Focal's pooled scratch allocates now and then.
const raceEnabled = true
