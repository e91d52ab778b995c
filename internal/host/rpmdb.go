package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// RPMDBFiles are the rpm database files, in the order rpm and vulnerability
// scanners probe them: rpm ≥ 4.16's /usr/lib/sysimage/rpm (Azure Linux 4.0,
// Fedora ≥ 36, where /var/lib/rpm links to it) first, then /var/lib/rpm
// (Azure Linux 3.0 and older), each with the sqlite, ndb and Berkeley DB
// backends' file names (rpm's lib/backend/{sqlite,ndb,bdb_ro}.c).
var RPMDBFiles = []struct{ File, Backend string }{
	{"usr/lib/sysimage/rpm/rpmdb.sqlite", "sqlite"},
	{"usr/lib/sysimage/rpm/Packages.db", "ndb"},
	{"usr/lib/sysimage/rpm/Packages", "bdb"},
	{"var/lib/rpm/rpmdb.sqlite", "sqlite"},
	{"var/lib/rpm/Packages.db", "ndb"},
	{"var/lib/rpm/Packages", "bdb"},
}

// RPMDB is an rpm database found in a tree.
type RPMDB struct {
	// Path is the database file; Real is the same with links resolved
	// (/var/lib/rpm → /usr/lib/sysimage/rpm), which is where it is
	// reported.
	Path, Real Path
	Backend    string
	Size       int64
}

// ErrNoRPMDB marks a tree without an rpm database.
var ErrNoRPMDB = errors.New("no rpm database")

// FindRPMDB returns the first rpm database under root whose first bytes
// match its backend's format. A file in a database's place that is not one
// is an error naming it.
func FindRPMDB(root Path) (RPMDB, error) {
	for _, db := range RPMDBFiles {
		p := root.Join(db.File)
		head, size, err := readHead(p, 16)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return RPMDB{}, err
		}
		if !rpmdbMagic(head, db.Backend) {
			return RPMDB{}, fmt.Errorf("%s is not a %s database", p, db.Backend)
		}
		real := p
		if r, err := p.Resolve(); err == nil {
			real = r
		}
		return RPMDB{Path: p, Real: real, Backend: db.Backend, Size: size}, nil
	}
	return RPMDB{}, ErrNoRPMDB
}

// rpmdbMagic checks the first bytes of an rpm database file against its
// backend's format.
func rpmdbMagic(head []byte, backend string) bool {
	if len(head) == 0 {
		// SQLite opens a zero-length file as an empty database; for the
		// others an empty file is taken at its name (an image that was
		// emptied of its package data still says which backend it uses).
		return true
	}
	switch backend {
	case "sqlite":
		return bytes.HasPrefix(head, []byte("SQLite format 3\x00"))
	case "ndb":
		return bytes.HasPrefix(head, []byte("RpmP"))
	case "bdb":
		// Berkeley DB hash or btree magic at offset 12, either byte order.
		if len(head) < 16 {
			return false
		}
		for _, magic := range [][]byte{{0x00, 0x06, 0x15, 0x61}, {0x61, 0x15, 0x06, 0x00}, {0x00, 0x05, 0x31, 0x62}, {0x62, 0x31, 0x05, 0x00}} {
			if bytes.Equal(head[12:16], magic) {
				return true
			}
		}
	}
	return false
}

// readHead reads up to n bytes from the start of the regular file p and
// returns them with the file's size.
func readHead(p Path, n int) ([]byte, int64, error) {
	f, err := p.Open()
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("%s: %w", p, err)
	}
	return b[:k], st.Size(), nil
}

// MaxRPMDBSize bounds the rpm database copied for reading: a full Azure Linux
// or Fedora install's rpmdb.sqlite is 10 to 150 MB.
const MaxRPMDBSize = 512 << 20

// CopyRPMDB copies db (and, for sqlite, its write-ahead log) into a new
// private directory (mode 0700, under os.TempDir) and returns the copy's
// path and a function that removes it. sqlite writes lock and journal files
// next to the database it opens, which must not happen in a mounted image
// or under a running rpm, and the library that reads the database opens it
// by name, which must not be a name in an untrusted tree. Each file is
// opened through the host layer (regular files only, never a FIFO or a
// device), checked against MaxRPMDBSize before the copy and bounded during
// it, so a sparse or endless file costs at most the limit.
func CopyRPMDB(db RPMDB) (string, func(), error) {
	dir, err := os.MkdirTemp("", "azurelinux-probe-rpmdb-")
	if err != nil {
		return "", func() {}, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	name := filepath.Join(dir, db.Path.Base())
	budget := int64(MaxRPMDBSize)
	n, err := copyBounded(db.Path, name, budget)
	if err != nil {
		cleanup()
		return "", func() {}, err
	}
	if db.Backend == "sqlite" {
		wal := db.Path.Dir().Join(db.Path.Base() + "-wal")
		if _, err := copyBounded(wal, name+"-wal", budget-n); err != nil && !errors.Is(err, os.ErrNotExist) {
			cleanup()
			return "", func() {}, err
		}
	}
	return name, cleanup, nil
}

func copyBounded(src Path, dst string, limit int64) (int64, error) {
	in, err := src.Open()
	if err != nil {
		return 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() > limit {
		return 0, fmt.Errorf("%s: %d bytes, more than the %d-byte limit for an rpm database", src, st.Size(), limit)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(in, limit+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("copy %s: %w", src, err)
	}
	if n > limit {
		return n, fmt.Errorf("%s: grew past the %d-byte limit while copied", src, limit)
	}
	return n, nil
}
