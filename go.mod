module github.com/marginloss/marginloss

go 1.26.0

require (
	golang.org/x/arch v0.33.0 // test only: asm's decoder test of the arm64 WORDs
	golang.org/x/sys v0.50.0
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/stretchr/testify v1.11.1
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

require github.com/klauspost/cpuid/v2 v2.4.2 // indirect
