package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "kmsg",
		DefaultEnabled: true,
		Interval:       15 * time.Second,
		Timeout:        5 * time.Second,
		Options:        func() any { return defaultKmsgOptions() },
		New:            newKmsgCollector,
	})
}

type kmsgOptions struct {
	// Categories are laid over the embedded classification table
	// (kmsg_categories.yml): a category of an embedded name replaces its
	// rules, the others are checked first.
	Categories []KmsgCategory `yaml:"categories"`
	// Audit reads SELinux denials from the audit multicast netlink group
	// as well, where auditd keeps them out of the kernel log.
	Audit bool `yaml:"audit"`
}

func defaultKmsgOptions() *kmsgOptions { return &kmsgOptions{Audit: true} }

// Bounds of the label sets the kernel log fills.
const (
	maxXidSeries = 256
	maxAVCSeries = 500
)

var (
	kmsgLines = declare(Fact{Collector: "kmsg", Name: "lines_total", Counter: true, Volatile: true,
		Help: "Records read from /dev/kmsg since the probe started (the ring buffer's contents at start, then every new one)."})
	kmsgDropped = declare(Fact{Collector: "kmsg", Name: "dropped_total", Counter: true, Volatile: true,
		Help: "Records the ring buffer overwrote before the reader got to them (gaps in the kernel's sequence numbers, EPIPE), since the first record read."})
	kmsgRestarts = declare(Fact{Collector: "kmsg", Name: "reader_restarts_total", Counter: true, Volatile: true,
		Help: "Times the /dev/kmsg or audit reader failed (an open refused, a read error, a closed descriptor) and was reopened, at most once a second with backoff to a minute."})
	kmsgLastLine = declare(Fact{Collector: "kmsg", Name: "last_line_timestamp_seconds", Volatile: true,
		Help: "When the latest record read was logged, as a Unix timestamp."})
	kmsgAuditRecords = declare(Fact{Collector: "kmsg", Name: "audit_records_total", Counter: true, Volatile: true,
		Help: "Records received from the audit multicast netlink group (AUDIT_NLGRP_READLOG) since the probe started, of every type."})
	kmsgSourceUp = declare(Fact{Collector: "kmsg", Name: "source_up", Volatile: true,
		Help:   "1 while the reader of the source (kmsg: /dev/kmsg, audit: the audit multicast group) is reading, 0 while it cannot (the log says why); audit only when collectors.kmsg.audit is on.",
		Labels: []string{"source"}, Identity: []string{"source"}})
)

// kmsgCollector serves the counters of the process-wide kernel log reader
// of its root (one per device path, so that a reload does not read the ring
// buffer a second time) and the kernel's own hung task and OOM counters.
type kmsgCollector struct {
	paths Paths
	r     *kmsgReader
	xids  []xidInfo
}

var (
	kmsgReadersMu sync.Mutex
	kmsgReaders   = map[string]*kmsgReader{}
)

func newKmsgCollector(env Env, opts any) (Collector, error) {
	o := opts.(*kmsgOptions)
	cls, err := newKmsgClassifier(o.Categories)
	if err != nil {
		return nil, err
	}
	xids, err := loadXidTable()
	if err != nil {
		return nil, err
	}
	path := env.Paths.Root("dev", "kmsg")
	kmsgReadersMu.Lock()
	r, ok := kmsgReaders[path.String()]
	if !ok {
		r = newKmsgReader(path, env.Logger, o.Audit)
		kmsgReaders[path.String()] = r
	}
	kmsgReadersMu.Unlock()
	r.setClassifier(cls, o.Audit)
	return &kmsgCollector{paths: env.Paths, r: r, xids: xids}, nil
}

// Changed tells the agent that the reader read new records, so that a line
// written to the kernel log is served within a second and not an interval
// later.
func (c *kmsgCollector) Changed() <-chan struct{} { return c.r.changed }

func (c *kmsgCollector) Update(ctx context.Context, m *Metrics) error {
	// The reader uses the kernel's own interfaces (/dev/kmsg, netlink):
	// on a mounted image or fixture tree they are this host's, not the
	// tree's.
	if !c.paths.Live() {
		return fmt.Errorf("%w: the kernel log is read only on the live host", ErrNoData)
	}
	c.r.start()
	select {
	case <-c.r.ready:
	case <-ctx.Done():
		return fmt.Errorf("reading the kernel ring buffer: %w", ctx.Err())
	}
	var errs []error
	if err := c.r.emit(m); err != nil {
		errs = append(errs, err)
	}
	for _, x := range c.xids {
		m.Set(kmsgXidInfo, 1, strconv.Itoa(x.Xid), x.Severity, x.Name)
	}
	if v, err := readUint(c.paths.Proc("sys", "kernel", "hung_task_detect_count")); err == nil {
		m.Set(kmsgHungTasks, float64(v))
	} else if !isNotExist(err) {
		errs = append(errs, err)
	}
	if v, ok, err := readVmstat(c.paths.Proc("vmstat"), "oom_kill"); err != nil {
		errs = append(errs, err)
	} else if ok {
		m.Set(kmsgOOMKills, float64(v))
	}
	return errors.Join(errs...)
}

// readVmstat returns the counter key of /proc/vmstat ("name value" lines).
func readVmstat(path host.Path, key string) (uint64, bool, error) {
	s, err := readText(path, 64<<10)
	if err != nil {
		return 0, false, err
	}
	for _, line := range strings.Split(s, "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || name != key {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		return v, true, nil
	}
	return 0, false, nil
}

type xidKey struct {
	pci string
	xid int
}

type avcKey struct{ scontext, tcontext, tclass, perm string }

// kmsgReader reads /dev/kmsg (and the audit multicast group) in the
// background for the life of the process and keeps counters only: nothing
// is queued, so a flood costs CPU in proportion and no memory.
type kmsgReader struct {
	path   host.Path
	logger *slog.Logger
	// boot is the wall-clock time of kernel timestamp 0.
	boot time.Time
	// minBackoff is the first wait before a reopen (tests shorten it).
	minBackoff time.Duration

	// changed receives (without blocking, capacity 1) after new records.
	changed chan struct{}
	// ready is closed once the reader has read the whole ring buffer or
	// failed to open it, so that the first Update serves numbers since
	// boot and never waits on a reader that cannot read.
	ready     chan struct{}
	readyOnce sync.Once
	startOnce sync.Once
	auditOnce sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup

	mu        sync.Mutex
	cls       *kmsgClassifier
	audit     bool
	cur       *os.File // the open /dev/kmsg, for close (tests, stop)
	auditFile *os.File
	haveSeq   bool
	lastSeq   uint64
	lines     uint64
	dropped   uint64
	restarts  uint64
	lastLine  float64
	events    map[string]uint64
	lastEvent map[string]float64
	hardware  map[string]uint64
	xids      map[xidKey]uint64
	avcs      map[avcKey]uint64
	serials   serialSet
	auditRecs uint64
	vmbusVer  string
	kmsgErr   error
	auditErr  error
	kmsgUp    bool
	auditUp   bool
}

func newKmsgReader(path host.Path, logger *slog.Logger, audit bool) *kmsgReader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &kmsgReader{
		path: path, logger: logger, boot: bootWallClock(), minBackoff: time.Second, audit: audit,
		changed: make(chan struct{}, 1), ready: make(chan struct{}), stop: make(chan struct{}),
		events: map[string]uint64{}, lastEvent: map[string]float64{}, hardware: map[string]uint64{},
		xids: map[xidKey]uint64{}, avcs: map[avcKey]uint64{}, serials: newSerialSet(4096),
	}
}

func (r *kmsgReader) setClassifier(cls *kmsgClassifier, audit bool) {
	r.mu.Lock()
	r.cls = cls
	r.audit = audit
	r.mu.Unlock()
}

// start starts the readers once each; the audit reader also when a
// reload turned collectors.kmsg.audit on.
func (r *kmsgReader) start() {
	r.startOnce.Do(func() {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.runKmsg()
		}()
	})
	r.mu.Lock()
	audit := r.audit
	r.mu.Unlock()
	if audit {
		r.auditOnce.Do(func() {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.runAudit()
			}()
		})
	}
}

// close stops the readers and waits for them (tests; the shared readers
// live as long as the process).
func (r *kmsgReader) close() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.mu.Lock()
	if r.cur != nil {
		r.cur.Close()
	}
	r.mu.Unlock()
	r.closeAudit()
	r.wg.Wait()
}

func (r *kmsgReader) markReady() { r.readyOnce.Do(func() { close(r.ready) }) }

func (r *kmsgReader) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// wall converts a kernel timestamp to Unix seconds.
func (r *kmsgReader) wall(d time.Duration) float64 {
	return float64(r.boot.Add(d).UnixNano()) / 1e9
}

// handle accounts one record read from /dev/kmsg.
func (r *kmsgReader) handle(rec kmsgRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.haveSeq && rec.Seq <= r.lastSeq {
		return // read again after a reopen
	}
	if r.haveSeq && rec.Seq > r.lastSeq+1 {
		r.dropped += rec.Seq - r.lastSeq - 1
	}
	r.haveSeq, r.lastSeq = true, rec.Seq
	r.lines++
	ts := r.wall(rec.Time)
	r.lastLine = ts
	if i := r.cls.classify(rec.Message); i >= 0 {
		name := r.cls.cats[i].name
		r.events[name]++
		r.lastEvent[name] = ts
		if name == "hardware_error" {
			r.hardware[hardwareSeverity(rec.Message)]++
		}
	}
	if pci, xid, ok := parseXid(rec.Message); ok {
		k := xidKey{pci, xid}
		if _, seen := r.xids[k]; !seen && len(r.xids) >= maxXidSeries {
			k = xidKey{"other", -1}
		}
		r.xids[k]++
	}
	if strings.Contains(rec.Message, "avc:  denied") {
		if d, ok := parseAVC(rec.Message); ok {
			r.countAVC(d)
		}
	}
	if v, ok := parseVMBusVersion(rec.Message); ok {
		r.vmbusVer = v
	}
}

// countAVC counts a denial once, whichever source reports it first.
// Caller holds r.mu.
func (r *kmsgReader) countAVC(d avcDenial) {
	if d.serial != 0 && !r.serials.add(d.serial) {
		return
	}
	for _, p := range d.perms {
		k := avcKey{d.scontext, d.tcontext, d.tclass, p}
		if _, seen := r.avcs[k]; !seen && len(r.avcs) >= maxAVCSeries {
			k = avcKey{"other", "other", "other", "other"}
		}
		r.avcs[k]++
	}
}

// handleAudit accounts one record of the audit multicast group.
func (r *kmsgReader) handleAudit(typ uint16, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auditRecs++
	// AUDIT_AVC (1400) from the kernel, AUDIT_USER_AVC (1107) from
	// userspace object managers (dbus-broker, systemd):
	// include/uapi/linux/audit.h.
	if typ == 1400 || typ == 1107 {
		if d, ok := parseAVC(text); ok {
			r.countAVC(d)
		}
	}
}

func (r *kmsgReader) setKmsgState(up bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kmsgUp, r.kmsgErr = up, err
}

func (r *kmsgReader) setAuditState(up bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auditUp, r.auditErr = up, err
}

func (r *kmsgReader) restarted() {
	r.mu.Lock()
	r.restarts++
	r.mu.Unlock()
}

// emit serves the counters. A /dev/kmsg that cannot be read is the
// collector's failure; an audit group that cannot be read is logged by
// the reader and shown in source_up.
func (r *kmsgReader) emit(m *Metrics) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range r.cls.names() {
		m.Set(kmsgEvents, float64(r.events[name]), name)
		if ts, ok := r.lastEvent[name]; ok {
			m.Set(kmsgLastEvent, ts, name)
		}
	}
	for _, sev := range hardwareSeverities {
		m.Set(kmsgHardware, float64(r.hardware[sev]), sev)
	}
	xk := make([]xidKey, 0, len(r.xids))
	for k := range r.xids {
		xk = append(xk, k)
	}
	sort.Slice(xk, func(i, j int) bool {
		if xk[i].pci != xk[j].pci {
			return xk[i].pci < xk[j].pci
		}
		return xk[i].xid < xk[j].xid
	})
	for _, k := range xk {
		x := strconv.Itoa(k.xid)
		if k.xid < 0 {
			x = "other"
		}
		m.Set(kmsgXid, float64(r.xids[k]), k.pci, x)
	}
	for k, v := range r.avcs {
		m.Set(kmsgAVC, float64(v), k.scontext, k.tcontext, k.tclass, k.perm)
	}
	if r.vmbusVer != "" {
		m.Set(hypervVMBusProtocol, 1, r.vmbusVer)
	}
	m.Set(kmsgLines, float64(r.lines))
	m.Set(kmsgDropped, float64(r.dropped))
	m.Set(kmsgRestarts, float64(r.restarts))
	if r.lines > 0 {
		m.Set(kmsgLastLine, r.lastLine)
	}
	m.SetBool(kmsgSourceUp, r.kmsgUp, "kmsg")
	if r.audit {
		m.Set(kmsgAuditRecords, float64(r.auditRecs))
		m.SetBool(kmsgSourceUp, r.auditUp, "audit")
	}
	if r.kmsgErr != nil {
		if r.audit && r.auditErr != nil {
			return fmt.Errorf("neither the kernel log nor the audit group can be read: %w; %w", r.kmsgErr, r.auditErr)
		}
		return r.kmsgErr
	}
	return nil
}

// serialSet remembers the latest audit serials (a ring of at most size),
// so that a denial the kernel both multicasts and prints (no auditd) is
// counted once. It grows as serials arrive: a host with few denials keeps
// a few entries, not size of them, in the daemon's heap.
type serialSet struct {
	ring []uint64
	set  map[uint64]struct{}
	next int
	size int
}

func newSerialSet(size int) serialSet {
	return serialSet{set: map[uint64]struct{}{}, size: size}
}

// add records s and reports whether it was new.
func (s *serialSet) add(v uint64) bool {
	if _, ok := s.set[v]; ok {
		return false
	}
	if len(s.ring) < s.size {
		s.ring = append(s.ring, v)
	} else {
		delete(s.set, s.ring[s.next])
		s.ring[s.next] = v
		s.next = (s.next + 1) % s.size
	}
	s.set[v] = struct{}{}
	return true
}
