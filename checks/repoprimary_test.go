package checks

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

func needRepoTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"rpmbuild", "createrepo_c"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed", tool)
			}
			t.Skipf("%s not installed (make test installs it)", tool)
		}
	}
}

// realRepo builds empty rpms with the names given (rpmbuild) and a
// repository of them with createrepo_c, compressed as compress (gz, zstd
// or xz: createrepo_c --compress-type), and returns its directory.
func realRepo(t *testing.T, compress string, names ...string) string {
	t.Helper()
	work := t.TempDir()
	for _, name := range names {
		spec := filepath.Join(work, name+".spec")
		if err := os.WriteFile(spec, []byte("Name: "+name+"\nVersion: 1.0\nRelease: 1.azl4\nSummary: fixture\nLicense: MIT\nBuildArch: noarch\n%description\nfixture\n%files\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("rpmbuild", "--quiet", "--define", "_topdir "+work, "--define", "_build_id_links none", "-bb", spec).CombinedOutput(); err != nil {
			t.Fatalf("rpmbuild %s: %v\n%s", name, err, out)
		}
	}
	repo := filepath.Join(work, "RPMS")
	ctype := compress
	if compress == "zstd" {
		ctype = "gz" // recompressed below
	}
	if out, err := exec.Command("createrepo_c", "--quiet", "--compress-type", ctype, repo).CombinedOutput(); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
	if compress == "zstd" {
		// createrepo_c 1.x writes zstd (its default since 1.0); Debian
		// 12's 0.17 cannot, so its gzip primary is recompressed with the
		// zstd tool and repomd.xml pointed at it.
		if _, err := exec.LookPath("zstd"); err != nil {
			t.Skip("zstd not installed")
		}
		gzs, _ := filepath.Glob(filepath.Join(repo, "repodata", "*-primary.xml.gz"))
		if len(gzs) != 1 {
			t.Fatalf("primary files: %v", gzs)
		}
		zst := strings.TrimSuffix(gzs[0], ".gz") + ".zst"
		if out, err := exec.Command("sh", "-c", `gzip -dc "$1" | zstd -q -o "$2"`, "sh", gzs[0], zst).CombinedOutput(); err != nil {
			t.Fatalf("recompress: %v\n%s", err, out)
		}
		repomd := filepath.Join(repo, "repodata", "repomd.xml")
		b, err := os.ReadFile(repomd)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), filepath.Base(gzs[0]), filepath.Base(zst), 1))
		if err := os.WriteFile(repomd, b, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(gzs[0])
	}
	return repo
}

// TestRepoPackages: the names a bootstrap script installs are looked up in
// a real createrepo_c repository's primary metadata, in each compression
// createrepo_c writes; a name it lacks fails the check and is named.
func TestRepoPackages(t *testing.T) {
	needRepoTools(t)
	for _, compress := range []string{"gz", "zstd", "xz"} {
		t.Run(compress, func(t *testing.T) {
			repo := realRepo(t, compress, "kernel-devel", "cloud-init", "moby-engine")
			srv := httptest.NewServer(http.FileServer(http.Dir(repo)))
			defer srv.Close()
			root := treetest.New(t, map[string]string{
				"etc/yum.repos.d/azurelinux.repo": "[azurelinux-base]\nbaseurl=" + srv.URL + "/\nenabled=1\n",
			})
			runCases(t, envAt(root), []kindCase{
				{"repo: {id: azurelinux-base, packages: [cloud-init, kernel-devel]}", true, "its primary metadata lists cloud-init, kernel-devel"},
				{"repo: {id: azurelinux-base, packages: [cloud-init, tdnf, waagent]}", false, "its primary metadata (3 packages) lacks tdnf, waagent"},
			})
		})
	}
	for _, bad := range []string{"repo: {id: x, packages: []}", "repo: {id: x, packages: ['a b']}", "repo: {id: x, packages: cloud-init}"} {
		if _, err := Load("t.yml", []byte("checks:\n  - name: c\n    category: package_manager\n    "+bad+"\n")); err == nil {
			t.Errorf("%s: loaded", bad)
		}
	}
}

func TestPrimaryHref(t *testing.T) {
	for _, tc := range []struct{ repomd, want string }{
		{`<repomd><data type="filelists"><location href="repodata/f.xml.gz"/></data><data type="primary"><location href="repodata/p-primary.xml.zst"/></data></repomd>`, "repodata/p-primary.xml.zst"},
		{`<repomd><data type="primary"><location href="../../etc/passwd"/></data></repomd>`, "error"},
		{`<repomd><data type="primary"><location href="http://evil/p.xml"/></data></repomd>`, "error"},
		{`<repomd><data type="primary"><location href="/abs/p.xml"/></data></repomd>`, "error"},
		{`<repomd/>`, "error"},
		{`not xml <`, "error"},
	} {
		got, err := primaryHref([]byte(tc.repomd))
		if (err != nil) != (tc.want == "error") || (err == nil && got != tc.want) {
			t.Errorf("%.60s: %q %v, want %s", tc.repomd, got, err, tc.want)
		}
	}
}
