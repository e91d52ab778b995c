package collectors

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFactsDeclaredAtInit: the catalog is complete before any collector is
// built (docs/metrics.md and the checks loader read it), every registered
// collector declares facts, and every fact's collector is registered.
func TestFactsDeclaredAtInit(t *testing.T) {
	owned := map[string]int{}
	for _, f := range Facts() {
		if _, ok := Lookup(f.Collector); !ok {
			t.Errorf("%s: collector %q is not registered", f.FQName(), f.Collector)
		}
		owned[f.Collector]++
		if f.Counter != strings.HasSuffix(f.FQName(), "_total") {
			t.Errorf("%s: a counter's name ends in _total, and only a counter's", f.FQName())
		}
	}
	for _, s := range Specs() {
		if owned[s.Name] == 0 {
			t.Errorf("collector %s declares no facts", s.Name)
		}
	}
}

// TestFactsOneHopFromName: azurelinux_<subsystem>_<name> is declared in
// collectors/<subsystem>.go or collectors/<subsystem>_*.go, so a reader
// finds a metric's code from its name alone.
func TestFactsOneHopFromName(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "declare" {
				return true
			}
			lit, ok := call.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			fields := map[string]string{}
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if bl, ok := kv.Value.(*ast.BasicLit); ok && bl.Kind == token.STRING {
					v, _ := strconv.Unquote(bl.Value)
					fields[kv.Key.(*ast.Ident).Name] = v
				}
			}
			sub := fields["Subsystem"]
			if sub == "" {
				sub = fields["Collector"]
			}
			found++
			base := strings.TrimSuffix(path, ".go")
			if base != sub && !strings.HasPrefix(base, sub+"_") {
				t.Errorf("%s: azurelinux_%s_%s is declared outside %s.go", fset.Position(call.Pos()), sub, fields["Name"], sub)
			}
			return true
		})
	}
	if want := len(Facts()); found != want {
		t.Errorf("found %d declare calls, the catalog holds %d facts", found, want)
	}
}
