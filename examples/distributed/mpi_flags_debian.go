//go:build cgo && !nompi && nopkgconfig

package main

// Open MPI's flags without pkg-config: the paths of Debian's and Ubuntu's
// libopenmpi-dev on amd64 and arm64. For other layouts set
// CGO_CFLAGS="$(mpicc --showme:compile)" CGO_LDFLAGS="$(mpicc --showme:link)".

// #cgo linux,amd64 CFLAGS: -I/usr/lib/x86_64-linux-gnu/openmpi/include
// #cgo linux,amd64 LDFLAGS: -L/usr/lib/x86_64-linux-gnu/openmpi/lib
// #cgo linux,arm64 CFLAGS: -I/usr/lib/aarch64-linux-gnu/openmpi/include
// #cgo linux,arm64 LDFLAGS: -L/usr/lib/aarch64-linux-gnu/openmpi/lib
// #cgo LDFLAGS: -lmpi
import "C"
