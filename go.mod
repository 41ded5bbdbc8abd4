module github.com/marginloss/marginloss

go 1.26.0

require (
	github.com/klauspost/cpuid/v2 v2.4.2 // library: internal/simd/cache.go reads the L1d/L2 sizes for the GEMM blocking; bench: the CPU's model
	golang.org/x/arch v0.33.0 // test only: asm's decoder test of the arm64 WORDs
	golang.org/x/sys v0.50.0
	gonum.org/v1/plot v0.17.0 // bench: -plot
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/stretchr/testify v1.11.1
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

require (
	codeberg.org/go-fonts/liberation v0.5.0 // indirect
	codeberg.org/go-latex/latex v0.2.0 // indirect
	codeberg.org/go-pdf/fpdf v0.11.1 // indirect
	git.sr.ht/~sbinet/gg v0.7.0 // indirect
	github.com/ajstarks/svgo v0.0.0-20211024235047-1546f124cd8b // indirect
	github.com/golang/freetype v0.0.0-20170609003504-e2365dfdc4a0 // indirect
	golang.org/x/image v0.30.0 // indirect
	golang.org/x/text v0.28.0 // indirect
)
