package shape

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// agentImport is the import path of the daemon's package.
const agentImport = "github.com/azurelinux-probe/azurelinux-probe/agent"

// TestAgentExportsWhatCmdUses checks the project guide's rule that what
// agent/ exports is what cmd/ uses: every exported top-level name of
// agent's non-test files is named, as agent.Name, somewhere under cmd/
// (tests included). Methods are not counted: an exported method of an
// unexported type is no export of the package.
func TestAgentExportsWhatCmdUses(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	exported := map[string]string{} // name -> file
	files, err := filepath.Glob(filepath.Join(root, "agent", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			for _, name := range topLevelNames(d) {
				if ast.IsExported(name) {
					exported[name] = filepath.Base(p)
				}
			}
		}
	}
	used := map[string]bool{}
	err = filepath.WalkDir(filepath.Join(root, "cmd"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		local := ""
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == agentImport {
				local = "agent"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == local {
					used[sel.Sel.Name] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var unused []string
	for name, file := range exported {
		if !used[name] {
			unused = append(unused, name+" ("+file+")")
		}
	}
	slices.Sort(unused)
	for _, u := range unused {
		t.Errorf("agent exports %s, which nothing under cmd/ uses: unexport it", u)
	}
}

// topLevelNames returns the names a declaration adds to its package's
// scope: functions without a receiver, types, variables and constants.
func topLevelNames(d ast.Decl) []string {
	var out []string
	switch d := d.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil {
			out = append(out, d.Name.Name)
		}
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				out = append(out, s.Name.Name)
			case *ast.ValueSpec:
				for _, n := range s.Names {
					out = append(out, n.Name)
				}
			}
		}
	}
	return out
}
