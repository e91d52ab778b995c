package host

import (
	"fmt"
	"strconv"
	"sync"

	// The sqlite driver for rpm ≥ 4.16 databases: pure Go, so the probe
	// stays a static binary without cgo.
	_ "github.com/glebarez/go-sqlite"
	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

// RPMPackage is one installed package of an rpm database.
type RPMPackage struct {
	Name, Version, Release, Arch string
	Epoch                        int
}

// EVR is [epoch:]version-release, the epoch only when above 0.
func (p RPMPackage) EVR() string {
	s := p.Version + "-" + p.Release
	if p.Epoch > 0 {
		s = strconv.Itoa(p.Epoch) + ":" + s
	}
	return s
}

// String is name-[epoch:]version-release.arch, as rpm -q prints it.
func (p RPMPackage) String() string {
	s := p.Name + "-" + p.EVR()
	if p.Arch != "" {
		s += "." + p.Arch
	}
	return s
}

// rpmCache keeps the package list of the database read last, keyed by its
// path, size and modification time (and its write-ahead log's): the daemon
// reads it every few minutes (the userland collector, the rpm checks), and
// a host's database is tens of megabytes that change only when packages do.
var rpmCache struct {
	sync.Mutex
	key  string
	pkgs []RPMPackage
}

// ReadRPMPackages returns every package of the database db, read from a
// bounded private copy (CopyRPMDB) so that rpm writing it meanwhile cannot
// corrupt the read. It is the one reader of package lists: the userland
// collector's azurelinux_userland_package_info and the rpm checks both use
// it. The returned slice is shared: callers must not modify it.
func ReadRPMPackages(db RPMDB) ([]RPMPackage, error) {
	fi, err := db.Path.Stat()
	if err != nil {
		return nil, fmt.Errorf("rpm database: %w", err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", db.Path.Abs(), fi.Size(), fi.ModTime().UnixNano())
	if wal, err := db.Path.Dir().Join(db.Path.Base() + "-wal").Stat(); err == nil {
		key += fmt.Sprintf("\x00%d\x00%d", wal.Size(), wal.ModTime().UnixNano())
	}
	rpmCache.Lock()
	defer rpmCache.Unlock()
	if rpmCache.key == key {
		return rpmCache.pkgs, nil
	}
	pkgs, err := readRPMPackages(db)
	if err != nil {
		return nil, fmt.Errorf("rpm database %s: %w", db.Path.InRoot(), err)
	}
	rpmCache.key, rpmCache.pkgs = key, pkgs
	return pkgs, nil
}

func readRPMPackages(found RPMDB) (pkgs []RPMPackage, err error) {
	defer func() {
		// The database is data from the image: a malformed one is an
		// error, never a crash of the probe.
		if r := recover(); r != nil {
			pkgs, err = nil, fmt.Errorf("malformed database: %v", r)
		}
	}()
	open, cleanup, err := CopyRPMDB(found)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := rpmdb.Open(open)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	list, err := db.ListPackages()
	if err != nil {
		return nil, err
	}
	for _, p := range list {
		pk := RPMPackage{Name: p.Name, Version: p.Version, Release: p.Release, Arch: p.Arch}
		if p.EpochNum() > 0 {
			pk.Epoch = p.EpochNum()
		}
		pkgs = append(pkgs, pk)
	}
	return pkgs, nil
}
