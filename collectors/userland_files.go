package collectors

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// Tool versions from shipped files, without running anything: the banner
// compiled into glibc's and OpenSSL's libraries, and the version in the
// name of systemd's private library.

// libDirs are where shared libraries are looked up under the root.
var libDirs = []string{"usr/lib64", "usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib", "lib64", "lib"}

// findLib returns the first of names present in the library directories.
func (c *userlandCollector) findLib(names ...string) string {
	for _, dir := range libDirs {
		for _, n := range names {
			p := c.paths.Root(dir, n)
			if fi, err := p.Stat(); err == nil && fi.Mode().IsRegular() {
				return "/" + filepath.Join(dir, n)
			}
		}
	}
	return ""
}

// maxScan bounds how much of a shared library is scanned for its banner.
const maxScan = 32 << 20

// scanFile returns the first match of re's first group in the file at
// path (a binary), reading it in chunks that overlap by 256 bytes, so a
// banner that spans two chunks is found too.
func scanFile(path host.Path, re *regexp.Regexp) (string, error) {
	f, err := path.Open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	const chunk, overlap = 1 << 20, 256
	buf := make([]byte, 0, chunk+overlap)
	var read int64
	for read < maxScan {
		n, err := io.ReadFull(f, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		read += int64(n)
		if m := re.FindSubmatch(buf); m != nil {
			return string(m[1]), nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return "", nil
			}
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if len(buf) > overlap {
			buf = buf[:copy(buf, buf[len(buf)-overlap:])]
		}
	}
	return "", nil
}

var (
	// glibc's libc.so.6 carries "GNU C Library (GNU libc) stable release
	// version 2.42." (Debian: "(Debian GLIBC 2.36-9+deb12u14)").
	glibcBannerRE = regexp.MustCompile(`GNU C Library [^\x00\n]*? release version (\d+\.\d+(?:\.\d+)?)`)
	// libcrypto carries OPENSSL_VERSION_TEXT, "OpenSSL 3.5.4 30 Sep 2025".
	opensslBannerRE = regexp.MustCompile(`OpenSSL (\d+\.\d+\.\d+[a-z]?(?:-\w+)?) \d{1,2} [A-Z][a-z]{2} \d{4}`)
	// systemd's private library is named after its version:
	// libsystemd-shared-258.4-4.azl4.so (Fedora style), -252.so (Debian).
	systemdSharedRE = regexp.MustCompile(`^libsystemd-shared-(\d+\S*)\.so$`)
)

func glibcFromFiles(c *userlandCollector) (string, string, error) {
	return bannerFromLib(c, glibcBannerRE, "libc.so.6")
}

func opensslFromFiles(c *userlandCollector) (string, string, error) {
	return bannerFromLib(c, opensslBannerRE, "libcrypto.so.3", "libcrypto.so.1.1")
}

func bannerFromLib(c *userlandCollector, re *regexp.Regexp, names ...string) (string, string, error) {
	p := c.findLib(names...)
	if p == "" {
		return "", "", nil
	}
	v, err := scanFile(c.paths.Root(p), re)
	if err != nil || v == "" {
		return "", "", err
	}
	return v, p, nil
}

func systemdFromFiles(c *userlandCollector) (string, string, error) {
	for _, dir := range libDirs {
		d := filepath.Join(dir, "systemd")
		entries, err := c.paths.Root(d).ReadDir()
		if err != nil {
			continue
		}
		for _, e := range entries {
			if m := systemdSharedRE.FindStringSubmatch(e.Name()); m != nil {
				return m[1], "/" + filepath.Join(d, e.Name()), nil
			}
		}
	}
	return "", "", nil
}
