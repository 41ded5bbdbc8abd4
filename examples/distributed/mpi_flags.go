//go:build cgo && !nompi && !nopkgconfig

package main

// The compiler and linker flags of Open MPI, from pkg-config (ompi-c.pc,
// in Debian's libopenmpi-dev on every architecture). Without pkg-config,
// build with -tags nopkgconfig (mpi_flags_debian.go).

// #cgo pkg-config: ompi-c
import "C"
