package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// TestHostileImage runs `check` (table, JSON, JUnit) and `facts` on an
// image built to leak, as issue 14 reproduced it: /proc/sys and dnf
// variables linked to a canary file outside the image, a kernel release of
// 412 bytes, terminal escapes in os-release and in a repository id, a repo
// check with metadata fetched from a loopback server. The canary never
// appears in any output or request, and the table holds no escape.
func TestHostileImage(t *testing.T) {
	const canary = "CANARY-e2e-9b1f-host-shadow"
	canaryFile := filepath.Join(t.TempDir(), "probe-canary-shadow")
	if err := os.WriteFile(canaryFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.RequestURI)
		mu.Unlock()
		w.Write([]byte("<repomd/>"))
	}))
	defer srv.Close()

	img := copyTree(t, "azl4-baremetal")
	link := func(target, rel string) {
		p := filepath.Join(img, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	link(canaryFile, "proc/sys/kernel/kptr_restrict")
	link(canaryFile, "etc/dnf/vars/secret")
	link("../../../../../../../../../.."+canaryFile, "etc/dnf/vars/relsecret")
	treetest.File(t, filepath.Join(img, "proc/sys/kernel/osrelease"), strings.Repeat("6", 412)+"\n")
	treetest.File(t, filepath.Join(img, "etc/os-release"),
		"NAME=\"Azure Linux\"\nID=azurelinux\nVERSION_ID=4.0\nPRETTY_NAME=\"Azure Linux 4.0\x1b[2K\r\x1b[1Apass\"\n")
	treetest.File(t, filepath.Join(img, "etc/yum.repos.d/evil.repo"),
		"[evil]\nbaseurl="+srv.URL+"/$secret/$relsecret\n[ok]\nbaseurl="+srv.URL+"/ok/$basearch\n[bad\x1b[2Kid]\nbaseurl="+srv.URL+"/x\n")
	checksDir := t.TempDir()
	writeChecks(t, checksDir, "hostile.yml", `checks:
  - name: evil-repo
    category: package_manager
    repo: {id: evil, metadata: true, timeout: 5s}
  - name: ok-repo
    category: package_manager
    repo: {id: ok, metadata: true, timeout: 5s}
  - name: escape-repo
    category: package_manager
    repo: {id: 'bad*', metadata: true, timeout: 5s}
  - name: kptr
    category: security
    sysctl: {name: kernel.kptr_restrict, value: '1'}
  - name: pretty
    category: golden_image
    fact: azurelinux_os_info{pretty_name=~"Azure Linux.*"}
`)
	var outputs []string
	for _, format := range []string{"table", "json", "junit"} {
		_, out, errs := runCheck(t, "--path.rootfs="+img, "--checks.dir="+checksDir, "--no-checks.embedded", "--format="+format)
		outputs = append(outputs, out, errs)
		if format == "table" {
			if strings.ContainsAny(out, "\x1b\r") {
				t.Errorf("table holds a control character:\n%q", out)
			}
			for _, want := range []string{
				"ok-repo", "is enabled and its first baseurl answers with repository metadata",
				"evil-repo", "baseurl uses $secret (/etc/dnf/vars/secret: no such file in the tree)",
				"kptr", "sysctl kernel.kptr_restrict does not exist on this kernel",
				"escape-repo", "[invalid value, 9 bytes] in /etc/yum.repos.d/evil.repo",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("table lacks %q:\n%s", want, out)
				}
			}
		}
	}
	for _, format := range []string{"table", "json", "prometheus"} {
		var out, errb strings.Builder
		agent.Main(withoutAzure([]string{"facts", "--log.level=error", "--path.rootfs=" + img, "--format=" + format}), &out, &errb)
		outputs = append(outputs, out.String(), errb.String())
		if format == "table" && strings.Contains(out.String(), "\x1b") {
			t.Errorf("facts table holds an escape")
		}
		if format == "prometheus" && !strings.Contains(errb.String()+out.String(), "kernel release: invalid value, 412 bytes") {
			t.Errorf("facts does not describe the kernel release:\n%s", errb.String())
		}
	}
	for i, o := range outputs {
		if strings.Contains(o, canary) {
			t.Errorf("output %d quotes the canary:\n%s", i, o)
		}
		if strings.Contains(o, strings.Repeat("6", 100)) {
			t.Errorf("output %d quotes the 412-byte release", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range requests {
		if strings.Contains(r, canary) || !(strings.HasPrefix(r, "GET /ok/") || strings.HasPrefix(r, "GET /x/")) {
			t.Errorf("request %q must not have been sent", r)
		}
	}
	if len(requests) != 6 { // ok-repo and escape-repo, once per format
		t.Errorf("requests %q, want 6", requests)
	}
}
