package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"
)

// Bounds on one repository metadata request. A real repomd.xml is a few
// kilobytes (Azure Linux 3.0's base repository: about 4 KiB); an answer
// larger than maxRepomdSize is not one.
const (
	maxRepomdSize      = 1 << 20
	maxRepoHeaderBytes = 64 << 10
	maxRepoRedirects   = 5
)

// errCrossHost refuses a redirect to another host: the request must not
// be steered (by a hostile mirror or a baseurl from an untrusted image)
// toward a host nobody configured.
var errCrossHost = errors.New("redirect to another host refused")

// newRepoClient returns the client for repository metadata when the
// caller gave none: no proxy but the operator's --checks.repo-proxy (HTTP_PROXY and friends are the probe's
// environment, not the checked image's, and must not see where an image's
// baseurl points), redirects followed only on the same scheme and host,
// response headers capped.
func newRepoClient(timeout time.Duration, proxy *url.URL) *http.Client {
	var viaProxy func(*http.Request) (*url.URL, error)
	if proxy != nil {
		viaProxy = http.ProxyURL(proxy)
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  viaProxy,
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: maxRepoHeaderBytes,
			ResponseHeaderTimeout:  timeout,
			TLSHandshakeTimeout:    timeout,
		},
		Timeout:       timeout,
		CheckRedirect: sameHostRedirect,
	}
}

func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRepoRedirects {
		return fmt.Errorf("more than %d redirects", maxRepoRedirects)
	}
	if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
		return errCrossHost
	}
	return nil
}

// repoVarName and repoVarValue are the grammar of a dnf variable taken
// from the checked tree (/etc/dnf/vars/NAME, VERSION_ID): dnf's own values
// are words like x86_64, 4.0 or prod. Anything else (a path, a URL, a
// line of a host file reached through a link) is refused, so no image
// content beyond a short word can reach a request line.
var (
	repoVarName  = lenre.MustCompile(`^[A-Za-z0-9_]+$`, 1, 64)
	repoVarValue = lenre.MustCompile(`^[A-Za-z0-9._-]+$`, 1, 64)
	repoIDRE     = lenre.MustCompile(`^[A-Za-z0-9._:+-]+$`, 1, 100)
)

// repoVars returns the dnf variables of the tree: $basearch and $arch,
// $releasever from VERSION_ID of the root's os-release, and each file of
// /etc/dnf/vars whose name and value fit the grammar. invalid names the
// variables whose value does not, so that a URL using one is refused
// rather than fetched with the variable left in.
func (env *Env) repoVars() (vars map[string]string, invalid map[string]string) {
	vars = map[string]string{"basearch": env.basearch(), "arch": env.basearch()}
	invalid = map[string]string{}
	if osr, _, _ := host.ReadOSRelease(env.Paths.Root()); osr["VERSION_ID"] != "" {
		if repoVarValue.MatchString(osr["VERSION_ID"]) {
			vars["releasever"] = osr["VERSION_ID"]
		} else {
			invalid["releasever"] = "VERSION_ID in /etc/os-release: " + host.Invalid(osr["VERSION_ID"])
		}
	}
	varsDir := env.Paths.Root("/etc/dnf/vars")
	entries, _ := varsDir.ReadDir()
	for _, e := range entries {
		name := e.Name()
		if !repoVarName.MatchString(name) {
			continue // no URL can name it
		}
		v, err := varsDir.Join(name).ReadText(host.MaxValueSize)
		if err != nil {
			// A link out of the tree resolves inside it (RESOLVE_IN_ROOT)
			// and is usually missing there.
			why := "unreadable (not a small text file)"
			var pe *fs.PathError
			if errors.Is(err, fs.ErrNotExist) {
				why = "no such file in the tree"
			} else if errors.As(err, &pe) {
				why = pe.Err.Error()
			}
			invalid[name] = "/etc/dnf/vars/" + name + ": " + why
			continue
		}
		if v = strings.TrimSpace(v); repoVarValue.MatchString(v) {
			vars[name] = v
		} else {
			invalid[name] = "/etc/dnf/vars/" + name + ": " + host.Invalid(v)
		}
	}
	return vars, invalid
}

// expandRepoURL substitutes the dnf variables in raw (a baseurl from the
// tree) and checks the result is an http(s) URL with a host. The error
// never quotes raw or the result: both are image data.
func (env *Env) expandRepoURL(raw string) (*url.URL, error) {
	vars, invalid := env.repoVars()
	var bad []string
	expanded := os.Expand(raw, func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		switch {
		case invalid[k] != "":
			bad = append(bad, "$"+k+" ("+invalid[k]+")")
		case repoVarName.MatchString(k):
			bad = append(bad, "$"+k+" (not defined)")
		default:
			bad = append(bad, "a variable ("+host.Invalid(k)+")")
		}
		return ""
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("baseurl uses %s; not fetched", strings.Join(bad, ", "))
	}
	u, err := url.Parse(expanded)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("baseurl is not an http(s) URL (%s); not fetched", host.Invalid(expanded))
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/repodata/repomd.xml"
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

// fetchRepomdBody GETs u and checks the answer is repository metadata: HTTP
// 200, at most maxRepomdSize bytes, and an XML document whose root element
// is <repomd> (createrepo_c's repomd.xml: an XML declaration, then
// <repomd xmlns="http://linux.duke.edu/metadata/repo" ...>). It returns
// the document and the size read. Its errors name neither the URL nor anything the server
// sent beyond the status line.
func fetchRepomdBody(ctx context.Context, client *http.Client, u *url.URL) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, errors.New("cannot build the request")
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is image data: never quoted
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		status := resp.Status
		if !statusRE.MatchString(status) {
			status = fmt.Sprint(resp.StatusCode)
		}
		return nil, 0, fmt.Errorf("HTTP %s", status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRepomdSize+1))
	if err != nil {
		return nil, len(body), fmt.Errorf("reading the answer: %w", err)
	}
	if len(body) > maxRepomdSize {
		return nil, len(body), fmt.Errorf("answer larger than %d bytes: not repository metadata", maxRepomdSize)
	}
	if !looksLikeRepomd(body) {
		return nil, len(body), fmt.Errorf("answer is not repository metadata (no <repomd> element first; %d bytes)", len(body))
	}
	return body, len(body), nil
}

var statusRE = lenre.MustCompile(`^[0-9][0-9][0-9] [A-Za-z -]*$`, 4, 44)

// looksLikeRepomd reports whether b starts as repomd.xml does: an optional
// byte order mark, XML declaration, comments and white space, then the
// <repomd element.
func looksLikeRepomd(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	for range 16 {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			i := bytes.Index(b, []byte("?>"))
			if i < 0 {
				return false
			}
			b = b[i+2:]
		case bytes.HasPrefix(b, []byte("<!--")):
			i := bytes.Index(b, []byte("-->"))
			if i < 0 {
				return false
			}
			b = b[i+3:]
		default:
			return bytes.HasPrefix(b, []byte("<repomd")) && len(b) > 7 && strings.ContainsRune(" \t\r\n/>", rune(b[7]))
		}
	}
	return false
}
