package collectors

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// secureBoot reads the SecureBoot EFI variable: 4 bytes of attributes and
// one byte of value (efivarfs, Documentation/filesystems/efivarfs.rst).
func (c *bootCollector) secureBoot() (on, known bool, err error) {
	path := c.paths.Sys("firmware", "efi", "efivars", "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
	b, err := readFile(path, 64)
	if isNotExist(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("secure boot: %w", err)
	}
	if len(b) != 5 {
		return false, false, fmt.Errorf("secure boot: %s: %d bytes, want 5", path, len(b))
	}
	return b[4] == 1, true, nil
}

// sigEnforced reads sig_enforce (kernel/module/signing.c, a bool
// parameter: Y or N).
func (c *bootCollector) sigEnforced() (on, known bool, err error) {
	v, err := readValue(c.paths.Sys("module", "module", "parameters", "sig_enforce"))
	if isNotExist(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("module signature enforcement: %w", err)
	}
	switch v {
	case "Y", "1":
		return true, true, nil
	case "N", "0":
		return false, true, nil
	}
	return false, false, fmt.Errorf("module signature enforcement: %q is not Y or N", v)
}

// trustStore decides whether a module signer is trusted where that can be
// decided. A signature names its key by issuer and serial; the kernel's
// keyrings in /proc/keys name keys by "<subject>: <subject key id>"
// (crypto/asymmetric_keys/x509_public_key.c, x509_key_preparse). The two
// meet only through a certificate that carries both: those of the
// certificates option (DKMS's and akmods' signing keys). So:
//
//   - a signature by one of those certificates is trusted (1) when
//     /proc/keys lists the certificate's key, untrusted (0) when /proc/keys
//     is readable, lists asymmetric keys and not this one;
//   - any other signature (the distribution's in-tree signing key, whose
//     certificate is only inside the kernel image) is undecided: no series.
type trustStore struct {
	certs []*x509.Certificate
	// keys are the descriptions of asymmetric keys in /proc/keys; nil when
	// the keyrings could not be read.
	keys map[string]bool
}

func (c *bootCollector) trustStore() (*trustStore, error) {
	ts := &trustStore{}
	var errs []error
	for _, p := range c.opts.Certificates {
		path := c.paths.Root(strings.TrimPrefix(p, "/"))
		b, err := readFile(path, 64<<10)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate: %w", err))
			continue
		}
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %s: %w", path, err))
			continue
		}
		ts.certs = append(ts.certs, cert)
	}
	text, err := readText(c.paths.Proc("keys"), maxFileSize)
	switch {
	case err == nil:
		ts.keys = parseProcKeys(text)
	case !isNotExist(err) && !errors.Is(err, os.ErrPermission):
		errs = append(errs, fmt.Errorf("keyrings: %w", err))
	}
	return ts, errors.Join(errs...)
}

// parseProcKeys returns the descriptions of the asymmetric keys in
// /proc/keys (security/keys/proc.c, proc_keys_show: the type is printed
// "%-9.9s", so "asymmetri"; asymmetric_key_describe, in
// crypto/asymmetric_keys/asymmetric_type.c, then prints the description
// followed by ": <subtype> <key id> [...]").
func parseProcKeys(text string) map[string]bool {
	keys := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if i >= maxKeyLines {
			break
		}
		f := strings.Fields(line)
		if len(f) < 9 || f[7] != "asymmetri" {
			continue
		}
		// The description starts after the eighth field.
		idx := 0
		for k := 0; k < 8; k++ {
			idx += strings.Index(line[idx:], f[k]) + len(f[k])
		}
		keys[strings.TrimSpace(line[idx:])] = true
	}
	return keys
}

// keyDescription is the description the kernel gives the key of cert:
// x509_key_preparse's "<name>: <hex of the subject key id, else the
// serial>" (crypto/asymmetric_keys/x509_public_key.c), with the name from
// x509_fabricate_name (crypto/asymmetric_keys/x509_cert_parser.c: CN, O,
// or "O: CN").
func keyDescription(cert *x509.Certificate) string {
	cn, o := cert.Subject.CommonName, ""
	if len(cert.Subject.Organization) > 0 {
		o = cert.Subject.Organization[0]
	}
	name := cn
	switch {
	case cn == "":
		name = o
	case o == "" || strings.HasPrefix(cn, o) || (len(o) >= 7 && strings.Contains(cn, o)):
		name = cn
	default:
		name = o + ": " + cn
	}
	id := cert.SubjectKeyId
	if len(id) == 0 {
		id = cert.SerialNumber.Bytes()
	}
	return name + ": " + hex.EncodeToString(id)
}

func (ts *trustStore) trusted(sig *moduleSignature) *bool {
	if ts == nil || ts.keys == nil || len(ts.keys) == 0 {
		return nil
	}
	for _, cert := range ts.certs {
		if !bytes.Equal(cert.RawIssuer, sig.Issuer) || !bytes.Equal(cert.SerialNumber.Bytes(), sig.Serial) {
			continue
		}
		desc := keyDescription(cert)
		ok := false
		for k := range ts.keys {
			if k == desc || strings.HasPrefix(k, desc+":") {
				ok = true
				break
			}
		}
		return &ok
	}
	return nil
}
