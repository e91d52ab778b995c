//go:build linux

package collectors

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// The live kmsg tests write real records to this machine's /dev/kmsg (as
// root) and read them back through the collector. Other tests and other
// users of the machine write there too, so every test's lines carry a
// marker of their own, and counts of shared categories are checked as "at
// least".

func needKmsg(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("writing to /dev/kmsg needs root")
	}
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		t.Skipf("no /dev/kmsg: %v", err)
	}
}

// testMarker returns a marker unique to this test run.
func testMarker(t *testing.T) string {
	return fmt.Sprintf("probetest%d%x", os.Getpid(), time.Now().UnixNano()&0xffffff)
}

// writeKmsg writes each line as one record, with the newline that
// finalizes it: a record without one stays open for a continuation
// (kernel/printk/printk.c vprintk_store(), LOG_NEWLINE) and readers do not
// see it until the next record arrives. devkmsg_write()
// (kernel/printk/printk.c) rate-limits each open file to 10 records per 5
// s unless printk.devkmsg=on, so a new descriptor takes every 10 lines.
func writeKmsg(t testing.TB, lines ...string) {
	t.Helper()
	var f *os.File
	for i, l := range lines {
		if i%10 == 0 {
			if f != nil {
				f.Close()
			}
			var err error
			if f, err = os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.Write([]byte("<4>" + l + "\n")); err != nil {
			t.Fatalf("write /dev/kmsg: %v", err)
		}
	}
	if f != nil {
		f.Close()
	}
}

// liveKmsg returns a collector on this host's /dev/kmsg with a reader of
// its own (not the process-wide one), stopped at the end of the test.
func liveKmsg(t *testing.T, audit bool, extra ...KmsgCategory) (*kmsgCollector, *kmsgReader) {
	t.Helper()
	cls, err := newKmsgClassifier(extra)
	if err != nil {
		t.Fatal(err)
	}
	xids, err := loadXidTable()
	if err != nil {
		t.Fatal(err)
	}
	r := newKmsgReader(host.OpenRoot("/").Path("dev/kmsg"), slog.New(slog.DiscardHandler), audit)
	r.minBackoff = 10 * time.Millisecond
	r.setClassifier(cls, audit)
	t.Cleanup(r.close)
	return &kmsgCollector{paths: DefaultPaths("/"), r: r, xids: xids}, r
}

func kmsgUpdate(t *testing.T, c *kmsgCollector) map[string]float64 {
	t.Helper()
	m := &Metrics{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Update(ctx, m); err != nil {
		t.Fatalf("update: %v", err)
	}
	return metricValues(t, m)
}

// eventually polls the collector until cond holds, for at most d.
func kmsgEventually(t *testing.T, c *kmsgCollector, d time.Duration, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		// While the reader reopens, Update fails with the reason: poll
		// on.
		m := &Metrics{}
		err := c.Update(context.Background(), m)
		if got := metricValues(t, m); err == nil && cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func events(cat string) string { return `azurelinux_kernel_log_events_total{category="` + cat + `"}` }

// TestLiveKmsgCategories writes a record of every category, an Xid 79 and
// an AVC denial, and reads them back through the real kernel.
func TestLiveKmsgCategories(t *testing.T) {
	needKmsg(t)
	c, r := liveKmsg(t, false)
	before := kmsgUpdate(t, c)
	if before["azurelinux_kmsg_lines_total"] == 0 {
		t.Fatal("nothing read from the ring buffer")
	}
	if before[`azurelinux_kmsg_source_up{source="kmsg"}`] != 1 {
		t.Fatal("kmsg source not up")
	}
	marker := testMarker(t)
	var lines []string
	for _, cat := range r.cls.names() {
		rec, err := parseKmsgRecord(readKmsgFixture(t, cat+".kmsg")[0])
		if err != nil {
			t.Fatal(err)
		}
		// A record written to /dev/kmsg is one line: the fixtures'
		// multi-line NVIDIA message keeps its first line only, so use
		// the probe-failure one.
		msg, _, _ := strings.Cut(rec.Message, "\n")
		lines = append(lines, msg+" "+marker)
	}
	pci := fmt.Sprintf("%04x:%02x:00", os.Getpid()&0xffff, time.Now().Nanosecond()&0xff)
	lines = append(lines,
		"NVRM: Xid (PCI:"+pci+"): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus. "+marker,
		"audit: type=1400 audit(1764582000.123:0): avc:  denied  { read write } for  pid=1 comm=\"x\" scontext=system_u:system_r:"+marker+"_t:s0 tcontext=system_u:object_r:etc_t:s0 tclass=file permissive=0")
	start := time.Now()
	writeKmsg(t, lines...)
	xidKey := `azurelinux_gpu_nvidia_xid_errors_total{pci_address="` + pci + `",xid="79"}`
	avcKey := `azurelinux_selinux_denials_total{permission="write",scontext_type="` + marker + `_t",tclass="file",tcontext_type="etc_t"}`
	got := kmsgEventually(t, c, 5*time.Second, "every written line read", func(m map[string]float64) bool {
		return m["azurelinux_kmsg_lines_total"]-before["azurelinux_kmsg_lines_total"] >= float64(len(lines)) && m[xidKey] == 1 && m[avcKey] == 1
	})
	t.Logf("%d lines written and read back in %s", len(lines), time.Since(start))
	for _, cat := range r.cls.names() {
		want := 1.0
		if cat == "nvidia_driver" || cat == "selinux_denial" {
			want = 2 // and the Xid 79 line ("fallen off the bus"); the AVC line
		}
		if d := got[events(cat)] - before[events(cat)]; d < want {
			t.Errorf("category %s: +%v, want +%v", cat, d, want)
		}
		if ts := got[`azurelinux_kernel_log_last_event_timestamp_seconds{category="`+cat+`"}`]; ts < float64(start.Unix())-2 || ts > float64(time.Now().Unix())+2 {
			t.Errorf("category %s: last event at %v, written at %v", cat, ts, start.Unix())
		}
	}
	if got["azurelinux_kmsg_dropped_total"] != before["azurelinux_kmsg_dropped_total"] {
		t.Logf("records dropped meanwhile: %v (another writer flooded the ring buffer)", got["azurelinux_kmsg_dropped_total"]-before["azurelinux_kmsg_dropped_total"])
	}
	if ts := got["azurelinux_kmsg_last_line_timestamp_seconds"]; ts < float64(start.Unix())-2 {
		t.Errorf("last line timestamp %v, before the write at %v", ts, start.Unix())
	}
	// The kernel's own counters are served beside the log counts.
	hung, _ := readUint(DefaultPaths("/").Proc("sys/kernel/hung_task_detect_count"))
	if got["azurelinux_kernel_hung_tasks_detected_total"] != float64(hung) {
		t.Errorf("hung tasks %v, the kernel says %d", got["azurelinux_kernel_hung_tasks_detected_total"], hung)
	}
	if oom, ok, _ := readVmstat(DefaultPaths("/").Proc("vmstat"), "oom_kill"); !ok || got["azurelinux_kernel_oom_kills_total"] != float64(oom) {
		t.Errorf("oom kills %v, /proc/vmstat says %d", got["azurelinux_kernel_oom_kills_total"], oom)
	}
	if got[`azurelinux_gpu_nvidia_xid_info{name="GPU has fallen off the bus",severity="fatal",xid="79"}`] != 1 {
		t.Error("no xid_info for 79")
	}

	// A second collector on the same reader (a reload) reads nothing
	// twice.
	again := kmsgUpdate(t, c)
	if again[xidKey] != 1 || again[avcKey] != 1 {
		t.Errorf("second update: xid %v avc %v", again[xidKey], again[avcKey])
	}
}

// TestLiveKmsgReopen: a closed descriptor is reopened (once, counted), and
// the ring buffer read again from its start counts no record twice.
func TestLiveKmsgReopen(t *testing.T) {
	needKmsg(t)
	marker := testMarker(t)
	c, r := liveKmsg(t, false, KmsgCategory{Name: "test_marker", Rules: []KmsgRule{{Name: "m", Regex: marker}}})
	writeKmsg(t, "before the reopen "+marker)
	before := kmsgEventually(t, c, 5*time.Second, "first line", func(m map[string]float64) bool { return m[events("test_marker")] == 1 })
	r.closeCurrent()
	kmsgEventually(t, c, 5*time.Second, "reader restarted", func(m map[string]float64) bool {
		return m["azurelinux_kmsg_reader_restarts_total"] == 1 && m[`azurelinux_kmsg_source_up{source="kmsg"}`] == 1
	})
	writeKmsg(t, "after the reopen "+marker)
	got := kmsgEventually(t, c, 5*time.Second, "second line", func(m map[string]float64) bool { return m[events("test_marker")] >= 2 })
	if got[events("test_marker")] != 2 {
		t.Errorf("marker lines counted %v times, want 2", got[events("test_marker")])
	}
	// Everything the new descriptor read again was skipped: lines grew
	// by what was written since (ours and other writers'), not by the
	// ring buffer's size.
	if d := got["azurelinux_kmsg_lines_total"] - before["azurelinux_kmsg_lines_total"]; d > 100 {
		t.Errorf("lines grew by %v after a reopen", d)
	}
}

// TestLiveKmsgUnreadable: a kmsg path the reader cannot read fails the
// collector with an error that names it, and source_up says 0.
func TestLiveKmsgUnreadable(t *testing.T) {
	needKmsg(t)
	dir := t.TempDir()
	// A FIFO in place of the device is refused as not a character
	// device: the same path a planted file takes.
	fifo := dir + "/kmsg"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r := newKmsgReader(host.OpenRoot(dir).Path("kmsg"), slog.New(slog.DiscardHandler), false)
	r.minBackoff = time.Hour
	r.setClassifier(defaultClassifier(t), false)
	t.Cleanup(r.close)
	c := &kmsgCollector{paths: DefaultPaths("/"), r: r}
	m := &Metrics{}
	err := c.Update(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a character device") {
		t.Errorf("error %v, want one naming %s", err, fifo)
	}
	if got := metricValues(t, m); got[`azurelinux_kmsg_source_up{source="kmsg"}`] != 0 {
		t.Errorf("source_up %v", got[`azurelinux_kmsg_source_up{source="kmsg"}`])
	}
}

// TestLiveKmsgFlood writes 100,000 records as fast as it can: the reader
// survives, its memory stays bounded (under 16 MiB of growth), and every
// record is either read or counted as dropped (the sequence numbers
// account for all of them).
func TestLiveKmsgFlood(t *testing.T) {
	needKmsg(t)
	const n = 100000
	marker := testMarker(t)
	c, r := liveKmsg(t, false,
		KmsgCategory{Name: "flood", Rules: []KmsgRule{{Name: "m", Regex: marker + " flood"}}},
		KmsgCategory{Name: "sentinel", Rules: []KmsgRule{{Name: "m", Regex: marker + " sentinel"}}})
	before := kmsgUpdate(t, c)
	r.mu.Lock()
	seq0 := r.lastSeq
	r.mu.Unlock()
	rss0 := vmRSS(t)

	// The reader is stalled (its accounting lock held) for the first
	// half, so the ring buffer overwrites records it has not read and
	// the EPIPE path runs; it reads concurrently with the second half.
	start := time.Now()
	r.mu.Lock()
	floodKmsg(t, n/2, marker+" flood")
	r.mu.Unlock()
	floodKmsg(t, n-n/2, marker+" flood")
	writeKmsg(t, marker+" sentinel")
	wrote := time.Since(start)
	got := kmsgEventually(t, c, 30*time.Second, "sentinel read", func(m map[string]float64) bool { return m[events("sentinel")] == 1 })
	r.mu.Lock()
	seq1 := r.lastSeq
	r.mu.Unlock()
	rss1 := vmRSS(t)

	read := got[events("flood")]
	dropped := got["azurelinux_kmsg_dropped_total"] - before["azurelinux_kmsg_dropped_total"]
	linesRead := got["azurelinux_kmsg_lines_total"] - before["azurelinux_kmsg_lines_total"]
	t.Logf("%d lines written in %s (%.0f/s); read %v of ours, dropped %v; RSS %d -> %d KiB",
		n, wrote, n/wrote.Seconds(), read, dropped, rss0, rss1)
	if read+dropped < n {
		t.Errorf("%v read + %v dropped < %d written: losses unaccounted", read, dropped, n)
	}
	if linesRead+dropped != float64(seq1-seq0) {
		t.Errorf("lines %v + dropped %v != %d sequence numbers", linesRead, dropped, seq1-seq0)
	}
	if got["azurelinux_kmsg_reader_restarts_total"] != 0 || got[`azurelinux_kmsg_source_up{source="kmsg"}`] != 1 {
		t.Errorf("reader restarted %v times, up %v", got["azurelinux_kmsg_reader_restarts_total"], got[`azurelinux_kmsg_source_up{source="kmsg"}`])
	}
	if dropped == 0 {
		t.Error("nothing dropped although the reader stalled for 50,000 records")
	}
	if rss1-rss0 > 16<<10 {
		t.Errorf("RSS grew by %d KiB over the flood", rss1-rss0)
	}
}

// floodKmsg writes n records "kmsg flood line <i> <suffix>" as fast as it
// can, with one buffer, a new descriptor every 10 records (the rate
// limit of writeKmsg).
func floodKmsg(t testing.TB, n int, suffix string) {
	t.Helper()
	buf := make([]byte, 0, 256)
	var f *os.File
	for i := range n {
		if i%10 == 0 {
			if f != nil {
				f.Close()
			}
			var err error
			if f, err = os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err != nil {
				t.Fatal(err)
			}
		}
		buf = fmt.Appendf(buf[:0], "<4>kmsg flood line %06d %s\n", i, suffix)
		if _, err := f.Write(buf); err != nil {
			t.Fatalf("write /dev/kmsg: %v", err)
		}
	}
	f.Close()
}

// vmRSS returns this process' resident set in KiB.
func vmRSS(t *testing.T) int {
	t.Helper()
	s, err := readText(DefaultPaths("/").Proc("self/status"), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestLiveAuditMulticast: a USER_AVC the test sends to the kernel's audit
// netlink socket (as dbus-broker does) reaches the reader through the
// multicast group; without auditd the kernel also prints it to kmsg, and
// the denial is counted once.
func TestLiveAuditMulticast(t *testing.T) {
	needKmsg(t)
	c, _ := liveKmsg(t, true)
	before := kmsgEventually(t, c, 5*time.Second, "audit reader up", func(m map[string]float64) bool {
		return m[`azurelinux_kmsg_source_up{source="audit"}`] == 1
	})
	marker := testMarker(t)
	sendUserAVC(t, "avc:  denied  { send_msg } for msgtype=method_call interface=org.freedesktop.DBus member=Hello spid=1 tpid=1 scontext=system_u:system_r:"+marker+"_t:s0 tcontext=system_u:system_r:init_t:s0 tclass=dbus permissive=0")
	key := `azurelinux_selinux_denials_total{permission="send_msg",scontext_type="` + marker + `_t",tclass="dbus",tcontext_type="init_t"}`
	got := kmsgEventually(t, c, 5*time.Second, "USER_AVC counted", func(m map[string]float64) bool {
		return m[key] >= 1 && m["azurelinux_kmsg_audit_records_total"] > before["azurelinux_kmsg_audit_records_total"]
	})
	// Give the kmsg copy (printed when no auditd listens) time to
	// arrive, then check it did not count the denial again.
	time.Sleep(200 * time.Millisecond)
	got = kmsgUpdate(t, c)
	if got[key] != 1 {
		t.Errorf("denial counted %v times, want 1 (deduplicated by audit serial)", got[key])
	}
}

// sendUserAVC sends an AUDIT_USER_AVC message to the kernel (needs
// CAP_AUDIT_WRITE) and waits for its acknowledgement.
func sendUserAVC(t *testing.T, text string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	payload := append([]byte(text), 0)
	msg := make([]byte, unix.NLMSG_HDRLEN+len(payload))
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], 1107) // AUDIT_USER_AVC
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(msg[8:], 1)
	copy(msg[unix.NLMSG_HDRLEN:], payload)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("send AUDIT_USER_AVC: %v", err)
	}
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		t.Fatalf("no acknowledgement: %v", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil || len(msgs) == 0 || msgs[0].Header.Type != unix.NLMSG_ERROR {
		t.Fatalf("reply %v %v", msgs, err)
	}
	if code := int32(binary.NativeEndian.Uint32(msgs[0].Data[:4])); code != 0 {
		t.Fatalf("kernel refused AUDIT_USER_AVC: %v", syscall.Errno(-code))
	}
}
