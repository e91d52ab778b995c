package checks

import (
	"slices"
	"strings"
	"testing"
)

// FuzzPrimaryHref: any repomd.xml gives an error or a relative path that
// stays inside the repository.
func FuzzPrimaryHref(f *testing.F) {
	f.Add(`<repomd><data type="primary"><location href="repodata/p-primary.xml.gz"/></data></repomd>`)
	f.Add(`<repomd><data type="primary"><location href="../x"/></data></repomd>`)
	f.Add(`<?xml version="1.0"?><repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary"><location href="a//b?c"/></data></repomd>`)
	f.Fuzz(func(t *testing.T, repomd string) {
		h, err := primaryHref([]byte(repomd))
		if err != nil {
			return
		}
		if h == "" || strings.HasPrefix(h, "/") || strings.Contains(h, "://") || slices.Contains(strings.Split(h, "/"), "..") || strings.ContainsAny(h, "?#\\") {
			t.Fatalf("unsafe href %q", h)
		}
	})
}
