package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/checks"
	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// TestRPMListerChild: the daemon's rpm reader, a real child of the probe's
// binary, prints what an in-process read gives, and a malformed database's
// error is the in-process error.
func TestRPMListerChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(runMainEnv, "1")
	corrupt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(corrupt, "var/lib/rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, "var/lib/rpm/rpmdb.sqlite"), []byte("SQLite format 3\x00garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	azl4, err := filepath.Abs("../collectors/testdata/trees/azl4-azure-gen2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ root, rel string }{
		{azl4, "/usr/lib/sysimage/rpm/rpmdb.sqlite"},
		{corrupt, "/var/lib/rpm/rpmdb.sqlite"},
		{corrupt, "/etc/shadow"},
	} {
		iso := &isolation{exe: exe, flags: []string{"--path.rootfs=" + tc.root, "--log.level=error"}, stderr: io.Discard}
		got, gotErr := iso.rpmLister()(context.Background(), tc.rel)
		var want bytes.Buffer
		wantErr := checks.WriteRPMPackages(collectors.DefaultPaths(tc.root), tc.rel, &want)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Errorf("%s %s: child error %v, in-process error %v", tc.root, tc.rel, gotErr, wantErr)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s %s: child printed %.200q, in process %.200q", tc.root, tc.rel, got, want.Bytes())
		}
		if tc.root == azl4 {
			var pkgs []struct{ Name, Version string }
			if err := json.Unmarshal(got, &pkgs); err != nil || len(pkgs) < 5 {
				t.Fatalf("package list %v, %d packages", err, len(pkgs))
			}
			found := false
			for _, p := range pkgs {
				found = found || p.Name == "dnf5" && p.Version == "5.2.18.0"
			}
			if !found {
				t.Errorf("dnf5 5.2.18.0 not among %d packages", len(pkgs))
			}
		}
	}
}
