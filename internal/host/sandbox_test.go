package host

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSandbox runs a static program planted in a tree with RunSandboxed: it
// must run as nobody with no capabilities, see only the tree, have no
// network, and leave its marker inside the tree, never on the host.
func TestSandbox(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "tmp"), 0o1777)
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "proc"), 0o555)
	hostFile, _ := canary(t)
	tool := filepath.Join(root, "usr/bin/openssl")
	build := exec.Command("go", "build", "-o", tool, "./testdata/sandboxtool")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Remove("/tmp/sandbox-marker")

	res, err := RunSandboxed(context.Background(), OpenRoot(root), Cmd{Path: "/usr/bin/openssl", Args: []string{l.Addr().String(), hostFile}})
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Output)
	}
	for _, want := range []string{"uid=65534 gid=65534 pid=1 ", "capeff=0000000000000000", "marker: written", "network: refused", "version 1.2.3"} {
		if !strings.Contains(res.Output, want) {
			t.Errorf("output lacks %q:\n%s", want, res.Output)
		}
	}
	if strings.Contains(res.Output, "sees the host") {
		t.Error("the sandboxed program sees the host's files")
	}
	if _, err := os.Stat(filepath.Join(root, "tmp/sandbox-marker")); err != nil {
		t.Errorf("no marker inside the tree: %v", err)
	}
	if _, err := os.Stat("/tmp/sandbox-marker"); err == nil {
		t.Error("the marker appeared on the host")
	}
	// A missing program fails with the set-up's words.
	res, err = RunSandboxed(context.Background(), OpenRoot(root), Cmd{Path: "/usr/bin/none"})
	if err == nil || !strings.Contains(res.Output, "sandbox: exec /usr/bin/none") {
		t.Errorf("missing program: %v %q", err, res.Output)
	}
}
