package bpf

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// generatedWithClang is the clang major version that built the committed
// canary_bpf*.o (Debian 12's clang 14). bpf2go's output is byte-reproducible
// for a given compiler (it passes -fno-ident and maps the source directory
// out of the debug info), but another clang version emits different code and
// BTF, so the comparison below is meaningful only with the same major
// version. `make generate` rebuilds with whatever clang is installed.
const generatedWithClang = 14

var clangVersionRE = regexp.MustCompile(`clang version (\d+)\.`)

// TestGeneratedUpToDate regenerates the canary and the inventory with the go:generate lines of
// doc.go into a temporary directory and compares the result with the
// committed files, so a change to canary.c, inventory.c or their headers cannot be committed
// without its object.
func TestGeneratedUpToDate(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("clang is not installed (make test installs it in CI)")
		}
		t.Skip("clang not installed: regeneration check skipped (make test installs it in CI)")
	}
	out, err := exec.Command(clang, "--version").Output()
	if err != nil {
		t.Fatalf("clang --version: %v", err)
	}
	m := clangVersionRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("clang --version: no version in %q", out)
	}
	if major, _ := strconv.Atoi(string(m[1])); major != generatedWithClang {
		t.Skipf("the committed object was built by clang %d, this is clang %d: output differs between compiler versions",
			generatedWithClang, major)
	}

	for _, args := range generateArgs(t) {
		dir := t.TempDir()
		cmd := exec.Command("go", append([]string{"tool", "bpf2go", "-output-dir", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GOPACKAGE=bpf")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go tool bpf2go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// The stem is the first argument that is not a flag or a flag's
		// value: canary, inventory.
		stem, src := bpf2goStem(args)
		for _, f := range []string{stem + "_bpfel.go", stem + "_bpfel.o", stem + "_bpfeb.go", stem + "_bpfeb.o"} {
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is not what %s compiles to: run `make generate` and commit the result", f, src)
			}
		}
	}
}

// bpf2goStem returns the stem and the source file of bpf2go arguments
// (flags with values: -target, -type; the C flags follow "--").
func bpf2goStem(args []string) (stem, src string) {
	var pos []string
	for i := 0; i < len(args) && args[i] != "--"; i++ {
		switch {
		case args[i] == "-target" || args[i] == "-type":
			i++
		case strings.HasPrefix(args[i], "-"):
		default:
			pos = append(pos, args[i])
		}
	}
	if len(pos) < 2 {
		return "", ""
	}
	return pos[0], pos[1]
}

// generateArgs returns the bpf2go arguments of each of doc.go's go:generate
// lines.
func generateArgs(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "//go:generate go tool bpf2go "); ok {
			out = append(out, strings.Fields(rest))
		}
	}
	if len(out) == 0 {
		t.Fatal("doc.go has no //go:generate go tool bpf2go line")
	}
	return out
}
