//go:build cgo && !nompi

package main

// A thin binding to the few MPI calls the trainer needs. The compiler and
// linker flags are in mpi_flags.go (pkg-config) or mpi_flags_debian.go
// (-tags nopkgconfig). MPI_COMM_WORLD and the MPI_Op and MPI_Datatype
// handles are macros, so small C wrappers take them. Build with -tags nompi
// (or CGO_ENABLED=0) for mpi_stub.go instead.

/*
#include <stdlib.h>
#include <mpi.h>

static int gompi_init(int *provided) {
	int err = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided);
	if (err != MPI_SUCCESS) return err;
	// Report errors to the caller instead of aborting inside MPI.
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}
static int gompi_finalize(void) { return MPI_Finalize(); }
static int gompi_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int gompi_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int gompi_allreduce_f32(float *buf, int n, int isMax) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, isMax ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD);
}
static int gompi_allgather_f32(const float *send, int n, float *recv) {
	return MPI_Allgather(send, n, MPI_FLOAT, recv, n, MPI_FLOAT, MPI_COMM_WORLD);
}
static void gompi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static void gompi_error_string(int code, char *buf) {
	int n = 0;
	if (MPI_Error_string(code, buf, &n) != MPI_SUCCESS) n = 0;
	buf[n] = 0;
}
static int gompi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static int gompi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// Under MPI_THREAD_FUNNELED every MPI call must come from the thread that
// called MPI_Init_thread. Locking the main goroutine to the main thread in
// init, and calling MPI only from it, guarantees that.
func init() { runtime.LockOSThread() }

// mpiAvailable says whether this binary was built with MPI.
const mpiAvailable = true

// mpiComm is MPI_COMM_WORLD.
type mpiComm struct{ rank, size int }

// initMPI calls MPI_Init_thread and returns MPI_COMM_WORLD and the
// function that finalises MPI. It must run on the main goroutine, which
// must make every later MPI call.
func initMPI() (Comm, func() error, error) {
	var provided C.int
	if err := mpiErr("MPI_Init_thread", C.gompi_init(&provided)); err != nil {
		return nil, nil, err
	}
	if provided < C.gompi_thread_funneled() {
		// Only the main thread calls MPI, so MPI_THREAD_SINGLE works in
		// practice with Open MPI; say so and go on.
		fmt.Printf("note: MPI provides thread level %d < MPI_THREAD_FUNNELED\n", int(provided))
	}
	var rank, size C.int
	if err := mpiErr("MPI_Comm_rank", C.gompi_rank(&rank)); err != nil {
		return nil, nil, err
	}
	if err := mpiErr("MPI_Comm_size", C.gompi_size(&size)); err != nil {
		return nil, nil, err
	}
	fin := func() error { return mpiErr("MPI_Finalize", C.gompi_finalize()) }
	return &mpiComm{rank: int(rank), size: int(size)}, fin, nil
}

// abortMPI ends all ranks (MPI_Abort), for a rank that fails while the
// others may be waiting in a collective.
func abortMPI(code int) { C.gompi_abort(C.int(code)) }

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

func (c *mpiComm) AllreduceSum(buf []float32) error { return c.allreduce(buf, 0) }
func (c *mpiComm) AllreduceMax(buf []float32) error { return c.allreduce(buf, 1) }

func (c *mpiComm) allreduce(buf []float32, isMax C.int) error {
	if len(buf) == 0 {
		return nil // every rank passes the same length, so all skip
	}
	if len(buf) > math.MaxInt32 {
		return fmt.Errorf("MPI_Allreduce: %d values exceed an int count", len(buf))
	}
	// buf is Go memory without Go pointers, and MPI does not keep it after
	// the (blocking) call returns: the cgo pointer rules allow this.
	return mpiErr("MPI_Allreduce", C.gompi_allreduce_f32((*C.float)(unsafe.Pointer(&buf[0])), C.int(len(buf)), isMax))
}

func (c *mpiComm) Allgather(send, recv []float32) error {
	if len(recv) != c.size*len(send) {
		return fmt.Errorf("MPI_Allgather: %d values into %d on %d ranks", len(send), len(recv), c.size)
	}
	if len(send) == 0 {
		return nil
	}
	if len(recv) > math.MaxInt32 {
		return fmt.Errorf("MPI_Allgather: %d values exceed an int count", len(recv))
	}
	return mpiErr("MPI_Allgather", C.gompi_allgather_f32((*C.float)(unsafe.Pointer(&send[0])), C.int(len(send)), (*C.float)(unsafe.Pointer(&recv[0]))))
}

// mpiErr turns an MPI return code into an error with MPI's message.
func mpiErr(call string, code C.int) error {
	if code == 0 { // MPI_SUCCESS
		return nil
	}
	buf := (*C.char)(C.malloc(C.size_t(C.gompi_max_error_string() + 1)))
	defer C.free(unsafe.Pointer(buf))
	C.gompi_error_string(code, buf)
	return fmt.Errorf("%s: %s (MPI error %d)", call, C.GoString(buf), int(code))
}
