module github.com/marginloss/marginloss/gen

go 1.26.0

replace github.com/marginloss/marginloss => ../

require (
	github.com/marginloss/marginloss v0.0.0-00010101000000-000000000000
	github.com/mmcloughlin/avo v0.6.0
	golang.org/x/arch v0.33.0
)

require (
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/tools v0.52.0 // indirect
)
