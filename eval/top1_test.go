package eval

import (
	"errors"
	"math"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

func TestTop1(t *testing.T) {
	centers := loss.Matrix{Rows: 4, Cols: 2, Data: []float32{
		1, 0,
		0, 1,
		0, 3, // the same direction as class 1: ties go to class 1
		-1, 0,
	}}
	emb := loss.Matrix{Rows: 6, Cols: 2, Data: []float32{
		5, 1, // class 0
		0.1, 2, // class 1 (tie with 2)
		0.1, 2, // labelled 2: the tie goes to 1, a miss
		-3, 0.2, // class 3
		1, 1, // exact tie of 0 and 1: class 0, labelled 1, a miss
		0, 0, // zero row: cosine 0 with all: class 0
	}}
	got, err := Top1(emb, centers, []int32{0, 1, 2, 3, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	if want := 4.0 / 6; got != want {
		t.Fatalf("Top1 = %v, want %v", got, want)
	}
}

func TestTop1Errors(t *testing.T) {
	c := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 0, 0, 1}}
	e := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{1, 0}}
	for _, tc := range []struct {
		name    string
		emb, c  loss.Matrix
		labels  []int32
		wantErr error
	}{
		{"cols", loss.Matrix{Rows: 2, Cols: 1, Data: []float32{1, 0}}, c, []int32{0, 0}, loss.ErrShape},
		{"data", loss.Matrix{Rows: 1, Cols: 2, Data: []float32{1}}, c, []int32{0}, loss.ErrShape},
		{"no centres", e, loss.Matrix{Cols: 2}, []int32{0}, loss.ErrShape},
		{"labels length", e, c, []int32{0, 1}, loss.ErrShape},
		{"label", e, c, []int32{2}, loss.ErrLabel},
		{"negative label", e, c, []int32{-1}, loss.ErrLabel},
		{"NaN", loss.Matrix{Rows: 1, Cols: 2, Data: []float32{float32(math.NaN()), 0}}, c, []int32{0}, loss.ErrNonFinite},
		{"Inf centre", e, loss.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 0, float32(math.Inf(1)), 1}}, []int32{0}, loss.ErrNonFinite},
		{"no rows", loss.Matrix{Cols: 2}, c, nil, loss.ErrParam},
	} {
		if _, err := Top1(tc.emb, tc.c, tc.labels); !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
}
