package collectors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"syscall"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// bootFileID identifies one version of a file: a package transaction replaces
// files (a new inode) or rewrites them (a new size or time).
type bootFileID struct {
	dev, ino   uint64
	size       int64
	mtime      time.Time
	ctimeSec   int64
	ctimeNsec  int64
	hasInodeID bool
}

func fileIdentity(fi os.FileInfo) bootFileID {
	id := bootFileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino, id.hasInodeID = uint64(st.Dev), st.Ino, true
		id.ctimeSec, id.ctimeNsec = st.Ctim.Sec, st.Ctim.Nsec
	}
	return id
}

// fileEntry is what was read from one version of a file.
type fileEntry[T any] struct {
	id  bootFileID
	val T
}

// initramfsResult is what one initramfs image gave: its modules, or why
// they are unknown.
type initramfsResult struct {
	mods map[string]bool
	err  error
}

// cachedRead returns read's result for the file at path, whose stat is
// fi: from cache while the file is the same version, else from a read in
// the background (readInBackground) that is stored in cache. False while
// that read goes on past ctx; what names the file's kind in the log line
// that says so.
func cachedRead[T any](ctx context.Context, c *bootCollector, cache map[string]fileEntry[T], path host.Path, fi os.FileInfo, what string, read func(context.Context) T) (T, bool) {
	id := fileIdentity(fi)
	key := path.String()
	c.mu.Lock()
	c.seen[key] = true
	e, ok := cache[key]
	c.mu.Unlock()
	if ok && e.id == id {
		return e.val, true
	}
	v, done := c.readInBackground(ctx, key, id, func(ctx context.Context) any { return read(ctx) })
	if !done {
		c.logger.Info(what+" still being read; its facts are unknown until a later refresh", "file", path)
		var zero T
		return zero, false
	}
	val := v.(T)
	c.mu.Lock()
	cache[key] = fileEntry[T]{id, val}
	c.mu.Unlock()
	return val, true
}

// module returns the facts of the module file at path, from the cache when
// the file has not changed.
func (c *bootCollector) module(ctx context.Context, path host.Path) moduleFacts {
	fi, err := stat(path)
	if err != nil {
		return moduleFacts{vermagicErr: err, sigErr: err}
	}
	mf, done := cachedRead(ctx, c, c.modCache, path, fi, "module", func(ctx context.Context) moduleFacts {
		return inspectModule(ctx, path)
	})
	if !done {
		return moduleFacts{vermagicErr: errPending, sigErr: errPending}
	}
	return mf
}

// errPending marks a fact whose file is still being read in the
// background: unknown for now, not an error.
var errPending = errors.New("still being read")

// readBudget bounds one background read. inspectModule reads Debian 12's
// 19 MiB amdgpu.ko (linux-image-6.1.0-57-amd64, xz'd as the kernel's
// scripts/Makefile.modinst does: --check=crc32 --lzma2=dict=1MiB) in 2.4
// to 3.4 s on a 2-core VM at load 6, so a 100 MiB nvidia.ko.xz takes
// 15 s or more there, and several times that on a smaller or busier VM.
const readBudget = 2 * time.Minute

// backgroundRead is one file read that outlives the refresh that started
// it, so that a slow decompression completes and is cached for the next
// refresh rather than being started over, and cut off by the refresh
// timeout, on every refresh. Reads run one at a time.
type backgroundRead struct {
	id   bootFileID
	done chan struct{}
	val  any
}

// readInBackground returns fn's result for the version id of path,
// starting fn (under readBudget) unless it runs already, and waiting for
// it as long as ctx allows; false when ctx ends first.
func (c *bootCollector) readInBackground(ctx context.Context, path string, id bootFileID, fn func(context.Context) any) (any, bool) {
	c.mu.Lock()
	r := c.reads[path]
	if r == nil || r.id != id {
		r = &backgroundRead{id: id, done: make(chan struct{})}
		c.reads[path] = r
		go func() {
			defer close(r.done)
			c.sem <- struct{}{}
			defer func() { <-c.sem }()
			bctx, cancel := context.WithTimeout(context.Background(), readBudget)
			defer cancel()
			defer func() {
				if p := recover(); p != nil {
					r.val = nil
				}
			}()
			r.val = fn(bctx)
		}()
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		c.mu.Lock()
		if c.reads[path] == r {
			delete(c.reads, path)
		}
		c.mu.Unlock()
		if r.val == nil {
			return nil, false
		}
		return r.val, true
	case <-ctx.Done():
		return nil, false
	}
}

// initramfs returns the modules in /boot/initramfs-<release>.img (Azure
// Linux and Fedora's kernel-install name), nil without error when there is
// none.
func (c *bootCollector) initramfs(ctx context.Context, rel string) (map[string]bool, error) {
	path := c.paths.Root("boot", "initramfs-"+rel+".img")
	fi, err := stat(path)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	res, done := cachedRead(ctx, c, c.irfCache, path, fi, "initramfs", func(ctx context.Context) initramfsResult {
		f, err := openRegular(path)
		if err != nil {
			return initramfsResult{err: fmt.Errorf("initramfs: %w", err)}
		}
		defer f.Close()
		mods, err := initramfsModules(ctx, f, rel)
		if err != nil {
			return initramfsResult{err: fmt.Errorf("initramfs %s: %w", path, err)}
		}
		return initramfsResult{mods: mods}
	})
	if !done {
		return nil, errPending
	}
	return res.mods, res.err
}

// pruneCaches drops what a complete refresh did not use, so that the
// caches hold only the installed kernels' files.
func (c *bootCollector) pruneCaches(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.modCache, func(p string, _ fileEntry[moduleFacts]) bool { return !c.seen[p] })
	maps.DeleteFunc(c.irfCache, func(p string, _ fileEntry[initramfsResult]) bool { return !c.seen[p] })
}
