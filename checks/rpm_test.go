package checks

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// TestRPMLister: rpm checks evaluated through a lister (as the daemon does,
// with the read in a child process) give the results of an in-process read,
// and a lister's failure is the check's reason, naming the database.
func TestRPMLister(t *testing.T) {
	root := "../collectors/testdata/trees/azl4-azure-gen2"
	var calls []string
	viaWrite := func(_ context.Context, rel string) ([]byte, error) {
		calls = append(calls, rel)
		var b bytes.Buffer
		err := WriteRPMPackages(collectors.DefaultPaths(root), rel, &b)
		return b.Bytes(), err
	}
	checks := []string{
		"rpm: dnf5",
		"rpm: {name: rpm, min_version: '6.0.1-2'}",
		"rpm: {name: openssl-libs, min_version: '3.5'}",
		"rpm: tdnf",
	}
	for _, c := range checks {
		rpmCache.key = "" // read through the lister every time
		wantPass, wantReason := run(t, envAt(root), c)
		rpmCache.key = ""
		env := envAt(root)
		env.ListRPM = viaWrite
		pass, reason := run(t, env, c)
		if pass != wantPass || reason != wantReason {
			t.Errorf("%s through a lister: %v %q, in process: %v %q", c, pass, reason, wantPass, wantReason)
		}
	}
	if len(calls) != len(checks) || calls[0] != "/usr/lib/sysimage/rpm/rpmdb.sqlite" {
		t.Errorf("lister called for %q, want the Azure Linux 4.0 database once per check", calls)
	}

	for _, tc := range []struct {
		name   string
		list   RPMLister
		reason string
	}{
		{"child failed", func(context.Context, string) ([]byte, error) { return nil, errors.New("malformed database: boom") },
			"rpm database /usr/lib/sysimage/rpm/rpmdb.sqlite: malformed database: boom"},
		{"garbage", func(context.Context, string) ([]byte, error) { return []byte("[{\"Name\":1}]"), nil },
			"rpm database /usr/lib/sysimage/rpm/rpmdb.sqlite: package list from the reader process: json: cannot unmarshal"},
		{"unknown field", func(context.Context, string) ([]byte, error) { return []byte(`[{"Nom":"x"}]`), nil },
			"unknown field"},
	} {
		rpmCache.key = ""
		env := envAt(root)
		env.ListRPM = tc.list
		if pass, reason := run(t, env, "rpm: dnf5"); pass || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: %v %q, want a failure with %q", tc.name, pass, reason, tc.reason)
		}
	}
	rpmCache.key = ""
}

// TestWriteRPMPackagesOnlyDatabases: the child reads only the fixed
// database locations, whatever it is asked.
func TestWriteRPMPackagesOnlyDatabases(t *testing.T) {
	var b bytes.Buffer
	err := WriteRPMPackages(collectors.DefaultPaths("../collectors/testdata/trees/azl4-azure-gen2"), "/etc/shadow", &b)
	if err == nil || b.Len() != 0 {
		t.Errorf("read /etc/shadow as an rpm database: %v, %d bytes", err, b.Len())
	}
}
