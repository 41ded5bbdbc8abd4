package asm

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// publicAPI is everything package asm may export: what a user writing their
// own layer calls (and package loss uses). Tables, test hooks and anything
// else the module's own tests, fuzz targets and benchmarks need stay
// unexported and are reached through internal/simd's registry (hooks.go).
// Methods are Type.Method, struct fields Type.Field.
var publicAPI = map[string]string{
	"GemmNT": "func", "GemmNN": "func", "GemmTN": "func",
	"GemmNTPacked": "func", "GemmTNPacked": "func", "GemmNTPackedScaled": "func",
	"PackedA": "type", "PackedA.Pack": "method", "PackedA.Rows": "method", "PackedA.Cols": "method",
	"PackedB": "type", "PackedB.Pack": "method", "PackedB.Rows": "method", "PackedB.Cols": "method",
	"L2Norm": "func", "Scale": "func", "Mul": "func", "Add": "func", "NormalizeBackward": "func",
	"Exp": "func", "MaxSumExp": "func", "SoftmaxScaled": "func", "DotRows": "func",
	"ClampGrad": "func", "HardNegatives": "func",
	"MarginForward": "func", "NewMargin": "func",

	"Margin": "type", "MarginKind": "type",
	"Margin.Kind": "method", "Margin.Params": "method", "Margin.String": "method",
	"MarginKind.String": "method",
	"Margin.SetRows":    "method", "Margin.Rows": "method",

	"SGDStep": "func", "AdamWStep": "func", "SGDFlags": "type", "SGDCoef": "type", "AdamWCoef": "type",
	"SGDWeightDecay": "const", "SGDMomentum": "const", "SGDFirst": "const", "SGDNesterov": "const",
	"SGDCoef.Flags": "field", "SGDCoef.NegLR": "field", "SGDCoef.WeightDecay": "field", "SGDCoef.Momentum": "field",
	"SGDCoef.Dampening1": "field", "AdamWCoef.Decay": "field", "AdamWCoef.Beta1": "field", "AdamWCoef.Beta1c": "field",
	"AdamWCoef.Beta2": "field", "AdamWCoef.Beta2c": "field", "AdamWCoef.BC2Sqrt": "field", "AdamWCoef.Eps": "field",
	"AdamWCoef.NegStep": "field",

	"MarginArc": "const", "MarginArcEasy": "const", "MarginCos": "const",
	"MarginCombined": "const", "MarginPsi": "const", "MarginArcClip": "const", "ClampEps": "const",

	"GemmNTBF16": "func", "GemmNNBF16": "func", "GemmTNBF16": "func",
	"PackedA.PackBF16": "method", "PackedB.PackBF16": "method",
	"BF16Bits": "func", "RoundBF16": "func", "BF16Native": "func",
}

// TestSurface parses the package's non-test files (every build variant) and
// fails on an exported variable (outside code could replace what it holds),
// on an exported identifier missing from publicAPI, and on an exported
// signature, type or field that mentions an internal package. It also
// wants an Example for every exported function (example_test.go).
func TestSurface(t *testing.T) {
	problems, err := surfaceProblems(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

func surfaceProblems(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var problems []string
	report := func(pos token.Pos, format string, args ...any) {
		problems = append(problems, fset.Position(pos).String()+": "+fmt.Sprintf(format, args...))
	}
	seen := map[string]string{}
	examples := map[string]bool{}
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(name, "_test.go") {
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Example") {
					examples[fd.Name.Name] = true
				}
			}
			continue
		}
		// internal names the import names of internal packages in this file
		internal := map[string]bool{}
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			if !strings.HasPrefix(path, "internal/") && !strings.Contains(path, "/internal/") && !strings.HasSuffix(path, "/internal") {
				continue
			}
			local := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				local = im.Name.Name
			}
			internal[local] = true
		}
		mentionsInternal := func(n ast.Node) string {
			var found string
			ast.Inspect(n, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok && internal[id.Name] && found == "" {
						found = id.Name + "." + sel.Sel.Name
					}
				}
				return found == ""
			})
			return found
		}
		declare := func(pos token.Pos, name, kind string) {
			seen[name] = kind
			if publicAPI[name] != kind {
				report(pos, "exported %s %s is not in the public API (publicAPI in surface_test.go)", kind, name)
			}
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				name, kind := d.Name.Name, "func"
				if d.Recv != nil {
					recv := receiverType(d.Recv.List[0].Type)
					if !ast.IsExported(recv) {
						continue // not reachable from outside
					}
					name, kind = recv+"."+name, "method"
				}
				declare(d.Pos(), name, kind)
				if sel := mentionsInternal(d.Type); sel != "" {
					report(d.Pos(), "exported %s %s mentions the internal %s", kind, name, sel)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.ValueSpec:
						for _, id := range s.Names {
							if !id.IsExported() {
								continue
							}
							if d.Tok == token.VAR {
								report(id.Pos(), "exported variable %s: outside code could change it", id.Name)
								continue
							}
							declare(id.Pos(), id.Name, "const")
							if s.Type != nil {
								if sel := mentionsInternal(s.Type); sel != "" {
									report(id.Pos(), "exported const %s mentions the internal %s", id.Name, sel)
								}
							}
						}
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						declare(s.Pos(), s.Name.Name, "type")
						// the exported parts of the type: its exported fields,
						// or the whole type when it is not a struct
						var parts []ast.Node
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fl := range st.Fields.List {
								for _, id := range fl.Names {
									if id.IsExported() {
										declare(id.Pos(), s.Name.Name+"."+id.Name, "field")
										parts = append(parts, fl.Type)
									}
								}
								if len(fl.Names) == 0 { // embedded
									if n := receiverType(fl.Type); ast.IsExported(n) {
										declare(fl.Pos(), s.Name.Name+"."+n, "field")
										parts = append(parts, fl.Type)
									}
								}
							}
						} else {
							parts = append(parts, s.Type)
						}
						if s.TypeParams != nil {
							parts = append(parts, s.TypeParams)
						}
						for _, p := range parts {
							if sel := mentionsInternal(p); sel != "" {
								report(s.Pos(), "exported type %s mentions the internal %s", s.Name.Name, sel)
							}
						}
					}
				}
			}
		}
	}
	names := make([]string, 0, len(publicAPI))
	for name := range publicAPI {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		kind := publicAPI[name]
		if seen[name] != kind {
			problems = append(problems, fmt.Sprintf("publicAPI lists %s %s, which the package does not declare", kind, name))
		}
		if kind == "func" && !examples["Example"+name] {
			problems = append(problems, fmt.Sprintf("exported func %s has no Example%s", name, name))
		}
	}
	return problems, nil
}

// receiverType is the name of a receiver or embedded type: T, *T, T[P].
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.SelectorExpr:
			return x.Sel.Name
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
