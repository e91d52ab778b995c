package collectors

import (
	"context"
	"errors"
	"fmt"
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

type cachedModule struct {
	id    bootFileID
	facts moduleFacts
}

type cachedInitramfs struct {
	id   bootFileID
	mods map[string]bool
	err  error
}

// module returns the facts of the module file at path, from the cache when
// the file has not changed.
func (c *bootCollector) module(ctx context.Context, path host.Path) moduleFacts {
	fi, err := stat(path)
	if err != nil {
		return moduleFacts{vermagicErr: err, sigErr: err}
	}
	id := fileIdentity(fi)
	key := path.String()
	c.mu.Lock()
	c.seen[key] = true
	cm, ok := c.modCache[key]
	c.mu.Unlock()
	if ok && cm.id == id {
		return cm.facts
	}
	v, done := c.readInBackground(ctx, key, id, func(ctx context.Context) any { return inspectModule(ctx, path) })
	if !done {
		c.logger.Info("module still being read; its facts are unknown until a later refresh", "file", path)
		return moduleFacts{vermagicErr: errPending, sigErr: errPending}
	}
	mf := v.(moduleFacts)
	c.mu.Lock()
	c.modCache[key] = cachedModule{id, mf}
	c.mu.Unlock()
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
	id := fileIdentity(fi)
	key := path.String()
	c.mu.Lock()
	c.seen[key] = true
	ci, ok := c.irfCache[key]
	c.mu.Unlock()
	if ok && ci.id == id {
		return ci.mods, ci.err
	}
	v, done := c.readInBackground(ctx, key, id, func(ctx context.Context) any {
		f, err := openRegular(path)
		if err != nil {
			return cachedInitramfs{id: id, err: fmt.Errorf("initramfs: %w", err)}
		}
		defer f.Close()
		mods, err := initramfsModules(ctx, f, rel)
		if err != nil {
			return cachedInitramfs{id: id, err: fmt.Errorf("initramfs %s: %w", path, err)}
		}
		return cachedInitramfs{id: id, mods: mods}
	})
	if !done {
		c.logger.Info("initramfs still being read; its facts are unknown until a later refresh", "file", path)
		return nil, errPending
	}
	ci = v.(cachedInitramfs)
	c.mu.Lock()
	c.irfCache[key] = ci
	c.mu.Unlock()
	return ci.mods, ci.err
}

// pruneCaches drops what a complete refresh did not use, so that the
// caches hold only the installed kernels' files.
func (c *bootCollector) pruneCaches(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.modCache {
		if !c.seen[p] {
			delete(c.modCache, p)
		}
	}
	for p := range c.irfCache {
		if !c.seen[p] {
			delete(c.irfCache, p)
		}
	}
}
