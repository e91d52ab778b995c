package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/rpmver"
)

// RPMLister reads the rpm database at rel (a path inside the root) and
// returns its packages as WriteRPMPackages prints them. The daemon's lister
// runs the read in a child process (agent/isolate.go), so that the sqlite
// engine, the database copy and its parse never touch the serving daemon's
// memory; nil reads in this process (the one-shot `check` command).
type RPMLister func(ctx context.Context, rel string) ([]byte, error)

// WriteRPMPackages is the child's side of an RPMLister: it reads the rpm
// database at rel (one of host.RPMDBFiles, as FindRPMDB names it) inside
// the root of p and writes its packages to w as JSON.
func WriteRPMPackages(p collectors.Paths, rel string, w io.Writer) error {
	found, err := host.FindRPMDB(p.Root())
	if err != nil {
		return err
	}
	if found.Path.InRoot() != rel {
		return fmt.Errorf("%s is not the rpm database of this root (%s is)", rel, found.Path.InRoot())
	}
	pkgs, err := host.ReadRPMPackages(found)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(pkgs)
}

// maxRPMPackages bounds the package list read back from a child: an Azure
// Linux image holds a few thousand.
const maxRPMPackages = 1 << 17

func decodeRPMPackages(out []byte) ([]rpmPackage, error) {
	var pkgs []rpmPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pkgs); err != nil {
		return nil, fmt.Errorf("package list from the reader process: %w", err)
	}
	if len(pkgs) > maxRPMPackages {
		return nil, fmt.Errorf("package list from the reader process: %d packages, more than %d", len(pkgs), maxRPMPackages)
	}
	return pkgs, nil
}

// rpmPackage is an installed package, as host.ReadRPMPackages reads it.
type rpmPackage = host.RPMPackage

// rpmCache keeps the package list of the database read last, keyed by its
// path, size and modification time (and its write-ahead log's): the daemon
// evaluates the checks every minute, and a host's database is tens of
// megabytes that change only when packages do.
var rpmCache struct {
	sync.Mutex
	key string
	db  *rpmDB
}

type rpmDB struct {
	path     string // inside the root
	packages map[string][]rpmPackage
}

// openRPMDB reads the package list of the first rpm database found under
// the root, from a bounded private copy (host.CopyRPMDB); with list set,
// the read runs through it (the daemon's child process) and only the cache
// stays in this process, so an unchanged database costs a stat per
// evaluation.
func openRPMDB(ctx context.Context, p collectors.Paths, list RPMLister) (*rpmDB, error) {
	found, err := host.FindRPMDB(p.Root())
	if errors.Is(err, host.ErrNoRPMDB) {
		return nil, fmt.Errorf("%w under %s (looked in /usr/lib/sysimage/rpm and /var/lib/rpm)", err, p.RootFS)
	}
	if err != nil {
		return nil, fmt.Errorf("rpm database: %w", err)
	}
	if list != nil {
		return listRPMDB(ctx, found, list)
	}
	pkgs, err := host.ReadRPMPackages(found)
	if err != nil {
		return nil, fmt.Errorf("rpm database: %w", err)
	}
	db := &rpmDB{path: found.Path.InRoot(), packages: map[string][]rpmPackage{}}
	for _, pk := range pkgs {
		db.packages[pk.Name] = append(db.packages[pk.Name], pk)
	}
	return db, nil
}

// listRPMDB is openRPMDB through list, with the package list of an
// unchanged database (by stat) kept in this process.
func listRPMDB(ctx context.Context, found host.RPMDB, list RPMLister) (*rpmDB, error) {
	fi, err := found.Path.Stat()
	if err != nil {
		return nil, fmt.Errorf("rpm database: %w", err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", found.Path, fi.Size(), fi.ModTime().UnixNano())
	if wal, err := found.Path.Dir().Join(found.Path.Base() + "-wal").Stat(); err == nil {
		key += fmt.Sprintf("\x00%d\x00%d", wal.Size(), wal.ModTime().UnixNano())
	}
	rpmCache.Lock()
	defer rpmCache.Unlock()
	if rpmCache.key == key {
		return rpmCache.db, nil
	}
	out, err := list(ctx, found.Path.InRoot())
	if err != nil {
		return nil, fmt.Errorf("rpm database %s: %w", found.Path.InRoot(), err)
	}
	pkgs, err := decodeRPMPackages(out)
	if err != nil {
		return nil, fmt.Errorf("rpm database %s: %w", found.Path.InRoot(), err)
	}
	db := &rpmDB{path: found.Path.InRoot(), packages: map[string][]rpmPackage{}}
	for _, pk := range pkgs {
		db.packages[pk.Name] = append(db.packages[pk.Name], pk)
	}
	rpmCache.key, rpmCache.db = key, db
	return db, nil
}

// compareEVR compares two [epoch:]version[-release] strings as rpm does:
// epochs numerically (missing is 0), then version and release with
// rpmver.Compare (rpmvercmp). A release is compared only when both sides have one, so "258"
// compares with "258.4-4.azl4" on the version alone.
func compareEVR(a, b string) int {
	ea, va, ra := splitEVR(a)
	eb, vb, rb := splitEVR(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := rpmver.Compare(va, vb); c != 0 {
		return c
	}
	if ra == "" || rb == "" {
		return 0
	}
	return rpmver.Compare(ra, rb)
}

func splitEVR(s string) (epoch int, version, release string) {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		epoch, _ = strconv.Atoi(s[:i])
		s = s[i+1:]
	}
	version, release, _ = strings.Cut(s, "-")
	return epoch, version, release
}
