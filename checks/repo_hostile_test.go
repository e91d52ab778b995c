package checks

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// TestRepoMetadataHostile: the repo check's client against a loopback
// server that redirects to another host, streams an endless body, sends
// huge headers or answers with something other than repodata, and an image
// whose dnf variables link to a canary file outside the tree or hold more
// than a word (issue 14, case 2). The canary never reaches a request line
// or a reason; no URL built from the image is quoted in a reason.
func TestRepoMetadataHostile(t *testing.T) {
	const canary = "CANARY-7f3a9c-host-secret"
	canaryFile := filepath.Join(t.TempDir(), "probe-canary")
	if err := os.WriteFile(canaryFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var requests []string
	record := func(name string, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, name+" "+r.Method+" "+r.RequestURI+" "+r.Host)
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("other", r)
		w.Write([]byte("<repomd/>"))
	}))
	defer other.Close()
	repomd := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1</revision></repomd>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("srv", r)
		switch strings.TrimSuffix(r.URL.Path, "/repodata/repomd.xml") {
		case "/ok":
			w.Write([]byte(repomd))
		case "/cross":
			http.Redirect(w, r, other.URL+"/ok/repodata/repomd.xml", http.StatusFound)
		case "/same":
			http.Redirect(w, r, "/ok/repodata/repomd.xml", http.StatusMovedPermanently)
		case "/endless":
			chunk := []byte("<repomd>" + strings.Repeat("x", 64<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/headers":
			for i := range 40 {
				w.Header().Add("X-Pad", strings.Repeat("h", 4000)+string(rune('a'+i%26)))
			}
			w.Write([]byte(repomd))
		case "/html":
			w.Write([]byte("<!DOCTYPE html><html><body>captive portal</body></html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	long := strings.Repeat("A", 412)
	root := treetest.New(t, map[string]string{
		"etc/os-release": "ID=azurelinux\nVERSION_ID=4.0\n",
		"etc/yum.repos.d/hostile.repo": "[ok]\nbaseurl=" + srv.URL + "/ok\n" +
			"[cross]\nbaseurl=" + srv.URL + "/cross\n" +
			"[same]\nbaseurl=" + srv.URL + "/same\n" +
			"[endless]\nbaseurl=" + srv.URL + "/endless\n" +
			"[headers]\nbaseurl=" + srv.URL + "/headers\n" +
			"[html]\nbaseurl=" + srv.URL + "/html\n" +
			"[abs-link]\nbaseurl=" + srv.URL + "/ok/$secret\n" +
			"[rel-link]\nbaseurl=" + srv.URL + "/ok/$relsecret\n" +
			"[long]\nbaseurl=" + srv.URL + "/ok/$long\n" +
			"[undefined]\nbaseurl=" + srv.URL + "/ok/$nosuchvar\n" +
			"[file]\nbaseurl=file:///etc/\n" +
			"[host-var]\nbaseurl=http://$hostvar/ok\n",
		"etc/dnf/vars/secret":    "->" + canaryFile,
		"etc/dnf/vars/relsecret": "->../../../../../../../../.." + canaryFile,
		"etc/dnf/vars/long":      long + "\n",
		"etc/dnf/vars/hostvar":   "127.0.0.1:1@" + strings.TrimPrefix(other.URL, "http://") + "\n",
	})
	env := envAt(root)
	env.Arch = "x86_64"
	start := time.Now()
	cases := []kindCase{
		{"repo: {id: ok, metadata: true}", true, "[ok] in /etc/yum.repos.d/hostile.repo is enabled and its first baseurl answers with repository metadata (122 bytes)"},
		{"repo: {id: cross, metadata: true}", false, "[cross] in /etc/yum.repos.d/hostile.repo: its first baseurl: redirect to another host refused"},
		{"repo: {id: same, metadata: true}", true, "answers with repository metadata"},
		{"repo: {id: endless, metadata: true, timeout: 20s}", false, "answer larger than 1048576 bytes: not repository metadata"},
		{"repo: {id: headers, metadata: true}", false, "server response headers exceeded 65536 bytes"},
		{"repo: {id: html, metadata: true}", false, "answer is not repository metadata (no <repomd> element first; 55 bytes)"},
		{"repo: {id: abs-link, metadata: true}", false, "baseurl uses $secret (/etc/dnf/vars/secret: no such file in the tree); not fetched"},
		{"repo: {id: rel-link, metadata: true}", false, "baseurl uses $relsecret (/etc/dnf/vars/relsecret: no such file in the tree); not fetched"},
		{"repo: {id: long, metadata: true}", false, "baseurl uses $long (/etc/dnf/vars/long: invalid value, 412 bytes); not fetched"},
		{"repo: {id: undefined, metadata: true}", false, "baseurl uses $nosuchvar (not defined); not fetched"},
		{"repo: {id: file, metadata: true}", false, "baseurl is not an http(s) URL (invalid value, 12 bytes); not fetched"},
		{"repo: {id: host-var, metadata: true}", false, "$hostvar (/etc/dnf/vars/hostvar: invalid value,"},
	}
	for _, tc := range cases {
		pass, reason := run(t, env, tc.check)
		if pass != tc.pass || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: pass %v reason %q; want %v and %q", tc.check, pass, reason, tc.pass, tc.reason)
		}
		for _, leak := range []string{canary, srv.URL, other.URL, "127.0.0.1", long[:64]} {
			if strings.Contains(reason, leak) {
				t.Errorf("%s: reason %q quotes %q", tc.check, reason, leak)
			}
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the hostile cases took %s", d)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range requests {
		if strings.HasPrefix(r, "other ") || strings.Contains(r, canary) || strings.Contains(r, "AAAA") {
			t.Errorf("request %q must not have been sent", r)
		}
	}
	if len(requests) != 7 { // ok, cross, same + its target, endless, headers, html
		t.Errorf("requests %q, want 7", requests)
	}
}

// TestRepoClientIgnoresProxyEnvironment: the default repo client has no
// proxy at all (Go's ProxyFromEnvironment would send an image's baseurl to
// whatever HTTP_PROXY names; it skips loopback, so this is checked on the
// transport rather than with a loopback proxy).
func TestRepoClientIgnoresProxyEnvironment(t *testing.T) {
	c := newRepoClient(time.Second, nil)
	tr := c.Transport.(*http.Transport)
	if tr.Proxy != nil || tr.MaxResponseHeaderBytes != maxRepoHeaderBytes || c.CheckRedirect == nil {
		t.Errorf("transport %+v", tr)
	}
}

func TestLooksLikeRepomd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<repomd xmlns="http://linux.duke.edu/metadata/repo">`, true},
		{"\xef\xbb\xbf<!-- mirror -->\n<repomd/>", true},
		{"<repomd>", true},
		{"<repomdx>", false},
		{"<html>", false},
		{"<?xml version='1.0'", false},
		{"", false},
	} {
		if got := looksLikeRepomd([]byte(tc.in)); got != tc.want {
			t.Errorf("looksLikeRepomd(%q) = %v", tc.in, got)
		}
	}
}

// TestRepoProxy: with --checks.repo-proxy the metadata request goes
// through that proxy; without it the request goes direct even when
// HTTP_PROXY names a proxy (192.0.2.1, TEST-NET-1, is not loopback, which
// Go's ProxyFromEnvironment would send to the proxy).
func TestRepoProxy(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
		w.Write([]byte("<repomd/>"))
	}))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	root := treetest.New(t, map[string]string{
		"etc/yum.repos.d/r.repo": "[far]\nbaseurl=http://192.0.2.1/azurelinux/$basearch\n",
	})
	env := envAt(root)
	env.Arch = "x86_64"
	// Direct, 192.0.2.1 is refused or unreachable, as this machine routes it.
	if pass, reason := run(t, env, "repo: {id: far, metadata: true, timeout: 300ms}"); pass || !strings.Contains(reason, "[far] in /etc/yum.repos.d/r.repo: its first baseurl") {
		t.Errorf("direct: %v %q", pass, reason)
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Errorf("the environment's proxy saw %q", seen)
	}
	mu.Unlock()

	u, _ := url.Parse(proxy.URL)
	env.RepoProxy = u
	if pass, reason := run(t, env, "repo: {id: far, metadata: true, timeout: 5s}"); !pass {
		t.Errorf("through --checks.repo-proxy: %q", reason)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "http://192.0.2.1/azurelinux/x86_64/repodata/repomd.xml" {
		t.Errorf("proxy saw %q", seen)
	}
}
