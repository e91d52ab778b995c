package collectors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKernelReleaseHostile: a kernel release that is not one (a line of a
// host file, 412 bytes, terminal escapes) is described by its size and
// never becomes a label or a module path; a link to a canary outside the
// tree resolves inside it (issue 14, case 1).
func TestKernelReleaseHostile(t *testing.T) {
	const canary = "CANARY-osrelease-host"
	canaryFile := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(canaryFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, content, link, want string
	}{
		{"412 bytes", strings.Repeat("6", 412) + "\n", "", "kernel release: invalid value, 412 bytes"},
		{"escapes", "6.18.31\x1b[2K\n", "", "kernel release: invalid value, 11 bytes"},
		{"a path", "../../../etc/shadow\n", "", "kernel release: invalid value, 19 bytes"},
		{"link out of the tree", "", canaryFile, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, "proc", "sys", "kernel", "osrelease")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.link != "" {
				err = os.Symlink(tc.link, p)
			} else {
				err = os.WriteFile(p, []byte(tc.content), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := run(t, "kernel", root)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "\x1b") || strings.Contains(err.Error(), "shadow") {
				t.Errorf("error quotes the value: %v", err)
			}
			if len(m.List()) != 0 {
				t.Errorf("%d metrics from a kernel whose release is not one", len(m.List()))
			}
		})
	}
}
