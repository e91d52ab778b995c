package checks

import (
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// A repo check with packages: the names that bootstrap scripts install
// (dnf5 install -y <name>) must be in the repository's primary metadata,
// the list dnf resolves names against: repodata/repomd.xml names the
// primary file (<data type="primary"><location href=".."/>), createrepo_c
// writes it gzip, zstd or xz compressed (createrepo_c --compress-type), and
// every <package> in it has one <name>.

// maxPackageNames bounds the names one check asks for.
const maxPackageNames = 256

// maxPrimarySize bounds the compressed primary file; Azure Linux's base
// repository's is tens of megabytes. maxPrimaryXML bounds what it
// decompresses to, maxPrimaryPackages the packages read.
const (
	maxPrimarySize     = 512 << 20
	maxPrimaryXML      = 4 << 30
	maxPrimaryPackages = 2_000_000
)

// primaryHref returns the location of the primary metadata in a repomd.xml.
func primaryHref(repomd []byte) (string, error) {
	var doc struct {
		Data []struct {
			Type     string `xml:"type,attr"`
			Location struct {
				Href string `xml:"href,attr"`
			} `xml:"location"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal(repomd, &doc); err != nil {
		return "", fmt.Errorf("repomd.xml is not valid XML: %v", err)
	}
	for _, d := range doc.Data {
		if d.Type != "primary" {
			continue
		}
		h := d.Location.Href
		// A relative path inside the repository: the metadata is the
		// server's, so an absolute URL or a path out of the repository
		// is refused rather than followed.
		if h == "" || strings.Contains(h, "://") || strings.HasPrefix(h, "/") || slices.Contains(strings.Split(h, "/"), "..") ||
			strings.ContainsAny(h, "?#\\") {
			return "", errors.New("repomd.xml's primary location is not a path inside the repository")
		}
		return h, nil
	}
	return "", errors.New("repomd.xml names no primary metadata")
}

// primaryLacks fetches the primary metadata at href (relative to the
// repository base of repomd, the repomd.xml URL) and returns the names in
// want that it does not list, and how many packages it read.
func primaryLacks(ctx context.Context, client *http.Client, repomd *url.URL, href string, want []string) (missing []string, read int, err error) {
	base := *repomd
	base.Path = strings.TrimSuffix(base.Path, "repodata/repomd.xml")
	u := base.ResolveReference(&url.URL{Path: href})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, errors.New("cannot build the request for the primary metadata")
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, 0, fmt.Errorf("primary metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("primary metadata: HTTP %d", resp.StatusCode)
	}
	body := io.LimitReader(resp.Body, maxPrimarySize)
	var r io.Reader
	switch {
	case strings.HasSuffix(href, ".gz"):
		z, err := gzip.NewReader(body)
		if err != nil {
			return nil, 0, fmt.Errorf("primary metadata: not gzip: %v", err)
		}
		defer z.Close()
		r = z
	case strings.HasSuffix(href, ".zst"):
		z, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, 0, fmt.Errorf("primary metadata: not zstd: %v", err)
		}
		defer z.Close()
		r = z
	case strings.HasSuffix(href, ".xz"):
		z, err := xz.NewReader(body)
		if err != nil {
			return nil, 0, fmt.Errorf("primary metadata: not xz: %v", err)
		}
		r = z
	case strings.HasSuffix(href, ".xml"):
		r = body
	default:
		return nil, 0, errors.New("primary metadata: unknown compression (want .xml, .gz, .zst or .xz)")
	}
	pending := map[string]bool{}
	for _, n := range want {
		pending[n] = true
	}
	dec := xml.NewDecoder(io.LimitReader(r, maxPrimaryXML))
	depth, inPackage := 0, false
	for len(pending) > 0 {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, read, fmt.Errorf("primary metadata after %d packages: %v", read, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2 && t.Name.Local == "package":
				inPackage = true
				read++
				if read > maxPrimaryPackages {
					return nil, read, fmt.Errorf("primary metadata lists more than %d packages", maxPrimaryPackages)
				}
			case depth == 3 && inPackage && t.Name.Local == "name":
				var name string
				if err := dec.DecodeElement(&name, &t); err != nil {
					return nil, read, fmt.Errorf("primary metadata: package #%d: %v", read, err)
				}
				depth--
				delete(pending, strings.TrimSpace(name))
			}
		case xml.EndElement:
			if depth == 2 {
				inPackage = false
			}
			depth--
		}
	}
	for _, n := range want {
		if pending[n] {
			missing = append(missing, n)
		}
	}
	return missing, read, nil
}
