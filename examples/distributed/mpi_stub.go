//go:build !cgo || nompi

package main

// Without MPI (CGO_ENABLED=0 or -tags nompi) the program runs as a single
// rank, or as -local N ranks in one process, so that the rest of the module
// builds and tests anywhere.

// initMPI returns a one-rank Comm.
func initMPI() (Comm, func() error, error) {
	return newLocalGroup(1)[0], func() error { return nil }, nil
}

// abortMPI has nothing to abort.
func abortMPI(int) {}

// mpiAvailable says whether this binary was built with MPI.
const mpiAvailable = false
