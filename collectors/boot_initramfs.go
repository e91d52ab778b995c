package collectors

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cavaliergopher/cpio"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// Bounds of one initramfs read. Azure Linux 4.0's dracut images are 30 to
// 80 MiB compressed and under 256 MiB decompressed; a corrupt or endless
// image stops at these limits (and at the refresh's deadline) with an
// error, never by exhausting memory or time.
var maxInitramfsBytes int64 = 1 << 30

const (
	maxInitramfsEntries = 200000
	maxInitramfsParts   = 8
)

// Compression magics of an initramfs part, as init/initramfs.c
// (unpack_to_rootfs, decompress_method in lib/decompress.c) recognizes them.
var (
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicGzip = []byte{0x1f, 0x8b}
	magicXz   = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magicCpio = []byte("07070")
)

// countingReader counts what passes through it and fails past a limit or
// a cancelled context, so that decompression is bounded in size and time.
type countingReader struct {
	ctx   context.Context
	r     io.Reader
	n     int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	k, err := c.r.Read(p)
	c.n += int64(k)
	if c.n > c.limit {
		return k, fmt.Errorf("more than %d bytes decompressed", c.limit)
	}
	return k, err
}

// initramfsModules lists the kernel modules in an initramfs image read
// from r, keyed by module name (spelt with '_'), without unpacking it. The
// image is what dracut writes (dracut.sh, --early-microcode): optionally an
// uncompressed newc cpio holding kernel/x86/microcode/*.bin, padded with
// NULs, followed by the main newc cpio compressed with zstd (Azure Linux's
// default), gzip or xz. Like the kernel's unpack_to_rootfs, NULs between
// parts are skipped and parts are read until the end. Modules are the
// files named *.ko, *.ko.zst, *.ko.xz or *.ko.gz under
// [usr/]lib/modules/<release>/.
func initramfsModules(ctx context.Context, r io.Reader, release string) (map[string]bool, error) {
	mods := map[string]bool{}
	in := bufio.NewReaderSize(&countingReader{ctx: ctx, r: r, limit: maxInitramfsBytes}, 64<<10)
	entries := 0
	for part := 0; ; part++ {
		if err := skipNULs(in); err != nil {
			if errors.Is(err, io.EOF) {
				if part == 0 {
					return nil, errors.New("empty image")
				}
				return mods, nil
			}
			return nil, err
		}
		if part >= maxInitramfsParts {
			return nil, fmt.Errorf("more than %d concatenated archives", maxInitramfsParts)
		}
		magic, _ := in.Peek(6)
		var archive io.Reader
		switch {
		case bytes.HasPrefix(magic, magicCpio):
			archive = in
		case bytes.HasPrefix(magic, magicZstd):
			zr, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(128<<20))
			if err != nil {
				return nil, fmt.Errorf("zstd: %w", err)
			}
			defer zr.Close()
			archive = zr
		case bytes.HasPrefix(magic, magicGzip):
			gr, err := gzip.NewReader(in)
			if err != nil {
				return nil, fmt.Errorf("gzip: %w", err)
			}
			archive = gr
		case bytes.HasPrefix(magic, magicXz):
			xr, err := xz.NewReader(in)
			if err != nil {
				return nil, fmt.Errorf("xz: %w", err)
			}
			archive = xr
		default:
			return nil, fmt.Errorf("archive %d: unknown format (magic % x)", part+1, magic)
		}
		// The decompressed stream is bounded as the compressed one is.
		compressed := archive != io.Reader(in)
		if compressed {
			archive = &countingReader{ctx: ctx, r: archive, limit: maxInitramfsBytes}
		}
		// cpio's Next says io.EOF both at the TRAILER!!! entry and at the
		// end of its input: only the first is a whole archive.
		src := &eofReader{r: archive}
		cr := cpio.NewReader(src)
		for {
			hdr, err := cr.Next()
			if errors.Is(err, io.EOF) {
				if src.eof {
					return nil, fmt.Errorf("archive %d: truncated (no TRAILER!!!)", part+1)
				}
				break
			}
			if err != nil {
				return nil, fmt.Errorf("archive %d: cpio: %w", part+1, err)
			}
			if entries++; entries > maxInitramfsEntries {
				return nil, fmt.Errorf("more than %d entries", maxInitramfsEntries)
			}
			if name, ok := initramfsModuleName(hdr.Name, release); ok {
				mods[name] = true
			}
		}
		if compressed {
			// The compressed archive is the last one dracut writes;
			// what follows the trailer inside it is padding.
			return mods, nil
		}
	}
}

// eofReader remembers that its reader reached the end.
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		e.eof = true
	}
	return n, err
}

// skipNULs consumes the NUL padding between concatenated archives.
func skipNULs(r *bufio.Reader) error {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		if b != 0 {
			return r.UnreadByte()
		}
	}
}

// initramfsModuleName returns the module name of an archive path under
// lib/modules/<release>/ or usr/lib/modules/<release>/.
func initramfsModuleName(path, release string) (string, bool) {
	path = strings.TrimPrefix(strings.TrimPrefix(path, "./"), "/")
	path = strings.TrimPrefix(path, "usr/")
	rest, ok := strings.CutPrefix(path, "lib/modules/"+release+"/")
	if !ok {
		return "", false
	}
	return moduleFileName(rest[strings.LastIndexByte(rest, '/')+1:])
}

// moduleFileName returns the module name of a file name such as
// hv_storvsc.ko.zst or nvme-core.ko.
func moduleFileName(base string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.zst", ".ko.xz", ".ko.gz"} {
		if name, ok := strings.CutSuffix(base, ext); ok && name != "" {
			return host.NormalizeModule(name), true
		}
	}
	return "", false
}
