package collectors

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/smallstep/pkcs7"
	"github.com/ulikunitz/xz"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// The appended module signature, as scripts/sign-file.c writes it and
// kernel/module/signing.c (module_sig_check) and
// kernel/module_signature.c (mod_check_sig) read it:
//
//	[ELF module][PKCS#7 signature][struct module_signature][magic]
//
// include/linux/module_signature.h: struct module_signature { u8 algo,
// hash, id_type, signer_len, key_id_len; u8 __pad[3]; __be32 sig_len; },
// MODULE_SIG_STRING "~Module signature appended~\n", and id_type
// PKEY_ID_PKCS7 (2), the only type sign-file has written since 4.3; for it
// algo, hash, signer_len and key_id_len are 0 (mod_check_sig rejects
// anything else).
const (
	moduleSigMagic   = "~Module signature appended~\n"
	moduleSigInfoLen = 12
	pkeyIDPKCS7      = 2
	// maxModuleSigLen bounds sig_len: a PKCS#7 signature with one signer
	// and no certificates (sign-file's CMS_NOCERTS) is under 1 KiB for
	// RSA-4096; 64 KiB leaves room for certificates and rejects the
	// impossible lengths of a corrupt trailer.
	maxModuleSigLen = 64 << 10
)

// Bounds of one module's inspection. The largest real module, NVIDIA's
// proprietary nvidia.ko, is about 100 MiB uncompressed; the module is
// streamed, never held whole: only its head, its tail (section headers,
// signature) and its .modinfo section are kept.
const (
	maxModuleSize   = 512 << 20
	moduleHeadSize  = 64 << 10
	moduleTailSize  = 1 << 20
	maxModinfoSize  = 1 << 20
	maxModuleExtras = 4 << 20
)

// moduleFacts is what the boot collector learns from one module file. An
// error field set means the matching fact is unknown.
type moduleFacts struct {
	vermagic    string
	vermagicErr error
	signed      bool
	sigErr      error
	sig         *moduleSignature
	// elfLen is the size of the ELF image, without the signature.
	elfLen int64
}

// moduleSignature is the signer of an appended PKCS#7 module signature,
// named as the signature names it: by its issuer and serial number
// (sign-file's default) or, with sign-file -k, by subject key identifier.
type moduleSignature struct {
	// Signer is the issuer's common name (its organization when it has
	// none), as modinfo prints "signer".
	Signer string
	// KeyID is the serial number (or subject key identifier) as modinfo
	// prints "sig_key": upper-case hex bytes separated by colons.
	KeyID string
	// Issuer and Serial are the raw DER issuer name and the serial's bytes,
	// for matching against certificates; empty for a key identifier.
	Issuer []byte
	Serial []byte
}

// parseModuleSignature parses the trailer at the end of tail, the last
// bytes of a module (the whole module or at least its last 64 KiB plus 40
// bytes). It returns (nil, 0, nil) when the module carries no signature,
// and otherwise the signature and the length of the trailer (signature,
// struct and magic), so that the caller knows where the ELF image ends.
func parseModuleSignature(tail []byte) (*moduleSignature, int, error) {
	if !bytes.HasSuffix(tail, []byte(moduleSigMagic)) {
		return nil, 0, nil
	}
	end := len(tail) - len(moduleSigMagic)
	if end < moduleSigInfoLen {
		return nil, 0, errors.New("signature trailer: truncated module_signature")
	}
	info := tail[end-moduleSigInfoLen : end]
	sigLen := binary.BigEndian.Uint32(info[8:12])
	if info[2] != pkeyIDPKCS7 {
		return nil, 0, fmt.Errorf("signature trailer: id_type %d, want PKCS#7 (%d)", info[2], pkeyIDPKCS7)
	}
	if info[0] != 0 || info[1] != 0 || info[3] != 0 || info[4] != 0 {
		return nil, 0, errors.New("signature trailer: PKCS#7 signature with algo, hash, signer_len or key_id_len set")
	}
	if sigLen == 0 || sigLen > maxModuleSigLen || int(sigLen) > end-moduleSigInfoLen {
		return nil, 0, fmt.Errorf("signature trailer: impossible sig_len %d", sigLen)
	}
	blob := tail[end-moduleSigInfoLen-int(sigLen) : end-moduleSigInfoLen]
	sig, err := parsePKCS7Signer(blob)
	if err != nil {
		return nil, 0, fmt.Errorf("signature: %w", err)
	}
	return sig, int(sigLen) + moduleSigInfoLen + len(moduleSigMagic), nil
}

// parsePKCS7Signer returns the one signer of a PKCS#7 SignedData blob, with
// smallstep/pkcs7 (maintained fork of go.mozilla.org/pkcs7, which reads the
// detached, certificate-less SignedData that sign-file writes). The
// signature itself is not verified: which keys the next kernel will accept
// is decided from keyrings and certificates, not from the module.
func parsePKCS7Signer(blob []byte) (sig *moduleSignature, err error) {
	defer func() {
		// The BER decoder's readObject (ber.go) has read past its input
		// on crafted BER (smallstep/pkcs7 pull request 62, ported from
		// mozilla-services/pkcs7 pull request 94); a hostile module must
		// cost one fact, not the probe.
		if r := recover(); r != nil {
			sig, err = nil, fmt.Errorf("pkcs7: malformed (%v)", r)
		}
	}()
	p7, err := pkcs7.Parse(blob)
	if err != nil {
		return nil, err
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("pkcs7: %d signers, want 1", len(p7.Signers))
	}
	ias := p7.Signers[0].IssuerAndSerialNumber
	if ias.SerialNumber == nil {
		return nil, errors.New("pkcs7: signer has no serial number")
	}
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(ias.IssuerName.FullBytes, &rdn); err != nil || len(rest) > 0 {
		return nil, errors.New("pkcs7: unreadable issuer name")
	}
	var name pkix.Name
	name.FillFromRDNSequence(&rdn)
	signer := name.CommonName
	if signer == "" && len(name.Organization) > 0 {
		signer = name.Organization[0]
	}
	serial := ias.SerialNumber.Bytes()
	return &moduleSignature{
		Signer: signer,
		KeyID:  hexColons(serial),
		Issuer: ias.IssuerName.FullBytes,
		Serial: serial,
	}, nil
}

func hexColons(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// parseModinfo returns the vermagic= value of a module's .modinfo section,
// NUL-separated key=value strings (include/linux/moduleparam.h,
// __MODULE_INFO).
func parseModinfo(section []byte) (string, error) {
	for _, kv := range bytes.Split(section, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("vermagic=")); ok {
			return string(v), nil
		}
	}
	return "", errors.New(".modinfo has no vermagic")
}

// modinfoOf reads the .modinfo section of the ELF image r of size n with
// debug/elf.
func modinfoOf(r io.ReaderAt, n int64) (vermagic string, err error) {
	defer func() {
		if p := recover(); p != nil {
			vermagic, err = "", fmt.Errorf("malformed ELF (%v)", p)
		}
	}()
	magic := make([]byte, 4)
	if _, err := r.ReadAt(magic, 0); err != nil || string(magic) != elf.ELFMAG {
		return "", errors.New("not an ELF file")
	}
	f, err := elf.NewFile(io.NewSectionReader(r, 0, n))
	if err != nil {
		return "", err
	}
	if f.Type != elf.ET_REL {
		return "", fmt.Errorf("ELF type %s, want a relocatable module (ET_REL)", f.Type)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return "", errors.New("no .modinfo section")
	}
	if sec.Type == elf.SHT_NOBITS || sec.Size > maxModinfoSize || sec.Offset > uint64(n) || sec.Size > uint64(n)-sec.Offset {
		return "", fmt.Errorf(".modinfo section of %d bytes at %d does not fit the module", sec.Size, sec.Offset)
	}
	b := make([]byte, sec.Size)
	if _, err := r.ReadAt(b, int64(sec.Offset)); err != nil {
		if s, ok := r.(*sparse); ok {
			if v, ok := s.vermagicIn(int64(sec.Offset), int64(sec.Offset+sec.Size)); ok {
				s.missed = s.missed[:len(s.missed)-1]
				return v, nil
			}
		}
		return "", err
	}
	return parseModinfo(b)
}

// openModule returns the decompressed contents of the module at path:
// .ko.zst, .ko.xz and .ko.gz are decompressed (the kernel's
// scripts/Makefile.modinst signs before it compresses, so the signature is
// inside).
func openModule(path host.Path) (io.ReadCloser, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(path.Base(), ".zst"):
		// One goroutine and a bounded window: a module is one frame of a
		// few MiB; a hostile frame header asking for a huge window fails.
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderMaxMemory(maxModuleSize))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: zstd: %w", path, err)
		}
		return readCloser{zr.IOReadCloser(), f}, nil
	case strings.HasSuffix(path.Base(), ".xz"):
		xr, err := xz.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: xz: %w", path, err)
		}
		return readCloser{io.NopCloser(xr), f}, nil
	case strings.HasSuffix(path.Base(), ".gz"):
		gr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		return readCloser{gr, f}, nil
	}
	return f, nil
}

type readCloser struct {
	io.ReadCloser
	file io.Closer
}

func (r readCloser) Close() error {
	r.ReadCloser.Close()
	return r.file.Close()
}

// sparse is a module's bytes at known offsets: its head, its tail and any
// range fetched on a later pass. A read outside them records the range as
// missed and fails, so that the caller can fetch it and try again.
type sparse struct {
	segs   []segment
	missed [][2]int64
	// cands are the bytes around each "vermagic=" of the stream (from
	// one byte before it), so that a single pass finds the vermagic of
	// a compressed module whose .modinfo lies in its middle; modinfoOf
	// accepts one only inside the .modinfo section that debug/elf found.
	cands []segment
}

const (
	maxVermagicCands = 64
	vermagicCandLen  = 1 + 512
)

// vermagicIn returns the vermagic= string that starts inside [lo, hi) at
// a string boundary (the section's start or after a NUL), from the
// candidates.
func (s *sparse) vermagicIn(lo, hi int64) (string, bool) {
	for _, c := range s.cands {
		at := c.off + 1 // where "vermagic=" starts
		b := c.b[1:]
		if c.off == -1 {
			at, b = 0, c.b
		}
		if at < lo || at >= hi || (at > lo && c.off >= 0 && c.b[0] != 0) {
			continue
		}
		b = b[:min(int64(len(b)), hi-at)]
		if end := bytes.IndexByte(b, 0); end >= 0 {
			return string(b[len("vermagic="):end]), true
		}
	}
	return "", false
}

type segment struct {
	off int64
	b   []byte
}

var errNotCaptured = errors.New("module range not captured")

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	for _, seg := range s.segs {
		if off >= seg.off && off+int64(len(p)) <= seg.off+int64(len(seg.b)) {
			return copy(p, seg.b[off-seg.off:]), nil
		}
	}
	s.missed = append(s.missed, [2]int64{off, off + int64(len(p))})
	return 0, errNotCaptured
}

// inspectModule reads the vermagic and signature of the module at path,
// streaming it at most a few times (a compressed module cannot be seeked)
// and keeping only the parts it needs. Errors land in the facts they cost.
func inspectModule(ctx context.Context, path host.Path) moduleFacts {
	var mf moduleFacts
	var want [][2]int64
	for pass := 0; pass < 4; pass++ {
		s, n, err := captureModule(ctx, path, want)
		if err != nil {
			mf.vermagicErr, mf.sigErr = err, err
			return mf
		}
		tail := s.segs[len(s.segs)-1].b
		if pass == 0 {
			sig, trailer, err := parseModuleSignature(tail)
			switch {
			case err != nil:
				mf.sigErr = fmt.Errorf("%s: %w", path, err)
			case sig != nil:
				mf.signed, mf.sig = true, sig
				n -= int64(trailer)
			}
			mf.elfLen = n
		}
		mf.vermagic, err = modinfoOf(s, mf.elfLen)
		if err == nil || len(s.missed) == 0 {
			if err != nil {
				mf.vermagicErr = fmt.Errorf("%s: %w", path, err)
			}
			return mf
		}
		total := int64(0)
		for _, r := range append(want, s.missed...) {
			total += r[1] - r[0]
		}
		if total > maxModuleExtras {
			mf.vermagicErr = fmt.Errorf("%s: ELF metadata spread over more than %d bytes", path, maxModuleExtras)
			return mf
		}
		want = append(want, s.missed...)
	}
	mf.vermagicErr = fmt.Errorf("%s: ELF metadata not found in 4 passes", path)
	return mf
}

// captureModule streams the decompressed module once, keeping its first
// moduleHeadSize bytes, the ranges in want and its last moduleTailSize
// bytes (always the last segment). It returns the module's size.
func captureModule(ctx context.Context, path host.Path, want [][2]int64) (*sparse, int64, error) {
	r, err := openModule(path)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	sort.Slice(want, func(i, j int) bool { return want[i][0] < want[j][0] })
	s := &sparse{}
	head := make([]byte, 0, moduleHeadSize)
	extras := make([][]byte, len(want))
	ring := make([]byte, moduleTailSize)
	var n int64
	buf := make([]byte, 256<<10)
	magic := []byte("vermagic=")
	var (
		hist, scratch []byte      // the stream's last len(magic)+1 bytes before chunk
		pending       []int       // candidates still collecting bytes
		lastMatch     int64  = -1 // offset of the last match recorded
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", path, err)
		}
		k, err := r.Read(buf)
		chunk := buf[:k]
		if len(head) < moduleHeadSize {
			head = append(head, chunk[:min(len(chunk), moduleHeadSize-len(head))]...)
		}
		for i, w := range want {
			lo, hi := max(w[0], n), min(w[1], n+int64(k))
			if lo < hi {
				extras[i] = append(extras[i], chunk[lo-n:hi-n]...)
			}
		}
		for _, i := range pending {
			c := &s.cands[i]
			c.b = append(c.b, chunk[:min(len(chunk), vermagicCandLen-len(c.b))]...)
		}
		pending = slices.DeleteFunc(pending, func(i int) bool { return len(s.cands[i].b) >= vermagicCandLen })
		// New matches in hist+chunk: hist is one byte longer than the
		// magic, so that a match not seen in the previous chunk starts
		// after hist[0] and the byte before it is at hand.
		w := append(append(scratch[:0], hist...), chunk...)
		base := n - int64(len(hist))
		for from := 0; len(s.cands) < maxVermagicCands; {
			k := bytes.Index(w[from:], magic)
			if k < 0 {
				break
			}
			at := base + int64(from+k)
			from += k + 1
			if at <= lastMatch {
				continue
			}
			lastMatch = at
			c := segment{off: at - 1}
			lo := at - 1 - base
			if at == 0 {
				c.off, lo = -1, 0
			}
			c.b = append(c.b, w[lo:min(int64(len(w)), lo+vermagicCandLen)]...)
			s.cands = append(s.cands, c)
			if len(c.b) < vermagicCandLen {
				pending = append(pending, len(s.cands)-1)
			}
		}
		scratch = w
		hist = append(hist[:0], w[max(0, len(w)-len(magic)-1):]...)
		for len(chunk) > 0 {
			pos := int(n % moduleTailSize)
			c := copy(ring[pos:], chunk)
			chunk = chunk[c:]
			n += int64(c)
		}
		if n > maxModuleSize {
			return nil, 0, fmt.Errorf("%s: larger than %d bytes decompressed", path, maxModuleSize)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	s.segs = append(s.segs, segment{0, head})
	for i, w := range want {
		if int64(len(extras[i])) == w[1]-w[0] {
			s.segs = append(s.segs, segment{w[0], extras[i]})
		}
	}
	tl := min(n, moduleTailSize)
	tail := make([]byte, tl)
	start := n - tl
	for i := int64(0); i < tl; i++ {
		tail[i] = ring[(start+i)%moduleTailSize]
	}
	s.segs = append(s.segs, segment{start, tail})
	return s, n, nil
}
