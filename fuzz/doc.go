// Package fuzz holds the fuzz targets: every kernel at every level against
// its generic twin, and the public loss API (never panics; finite outputs on
// finite inputs). Run one with, for example,
//
//	go test ./fuzz -run '^$' -fuzz FuzzMarginSoftmax -fuzztime 30s
package fuzz
