package collectors

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// readKmsgFixture returns the records of a capture under
// testdata/kmsg: each as one read(2) of /dev/kmsg returns it, separated
// by blank lines.
func readKmsgFixture(t testing.TB, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kmsg", name))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, rec := range strings.Split(strings.TrimRight(string(b), "\n"), "\n\n") {
		out = append(out, []byte(rec+"\n"))
	}
	return out
}

// metricValues returns the samples of m keyed name{label="value",...}
// (labels sorted), counters and gauges alike.
func metricValues(t testing.TB, m *Metrics) map[string]float64 {
	t.Helper()
	if err := m.Err(); err != nil {
		t.Fatalf("building metrics: %v", err)
	}
	out := map[string]float64{}
	for _, metric := range m.List() {
		g := fqNameRE.FindStringSubmatch(metric.Desc().String())
		var pb dto.Metric
		if err := metric.Write(&pb); err != nil {
			t.Fatal(err)
		}
		var labels []string
		for _, lp := range pb.GetLabel() {
			labels = append(labels, lp.GetName()+`="`+lp.GetValue()+`"`)
		}
		sort.Strings(labels)
		key := g[1]
		if len(labels) > 0 {
			key += "{" + strings.Join(labels, ",") + "}"
		}
		v := pb.GetGauge().GetValue()
		if pb.Counter != nil {
			v = pb.GetCounter().GetValue()
		}
		out[key] = v
	}
	return out
}

func defaultClassifier(t testing.TB) *kmsgClassifier {
	t.Helper()
	cls, err := newKmsgClassifier(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cls
}

// TestKmsgFixturesClassify: every record of the capture of a category
// parses and lands in that category; the records of a healthy boot (this
// machine's 6.18 ring buffer, captured raw, and none.kmsg) land in none.
func TestKmsgFixturesClassify(t *testing.T) {
	cls := defaultClassifier(t)
	names := cls.names()
	if len(names) != 19 {
		t.Errorf("%d built-in categories, the docs say 19: %v", len(names), names)
	}
	for _, cat := range names {
		t.Run(cat, func(t *testing.T) {
			recs := readKmsgFixture(t, cat+".kmsg")
			for _, b := range recs {
				rec, err := parseKmsgRecord(b)
				if err != nil {
					t.Fatalf("%q: %v", b, err)
				}
				i := cls.classify(rec.Message)
				if i < 0 || names[i] != cat {
					got := "none"
					if i >= 0 {
						got = names[i]
					}
					t.Errorf("%q: category %s, want %s", rec.Message, got, cat)
				}
			}
		})
	}
	for _, healthy := range []string{"none.kmsg", "boot-6.18.kmsg"} {
		recs := readKmsgFixture(t, healthy)
		if len(recs) < 10 {
			t.Fatalf("%s: %d records", healthy, len(recs))
		}
		for _, b := range recs {
			rec, err := parseKmsgRecord(b)
			if err != nil {
				t.Fatalf("%s: %q: %v", healthy, b, err)
			}
			if i := cls.classify(rec.Message); i >= 0 {
				t.Errorf("%s: %q classified as %s", healthy, rec.Message, names[i])
			}
		}
	}
}

func TestParseKmsgRecord(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want kmsgRecord
		err  bool
	}{
		{in: "6,381,1348744,-;EXT4-fs (vda): mounted filesystem\n",
			want: kmsgRecord{Facility: 0, Level: 6, Seq: 381, Time: 1348744 * time.Microsecond, Message: "EXT4-fs (vda): mounted filesystem"}},
		// Facility user (1<<3 | 4) as a test's write arrives, with the
		// caller field of CONFIG_PRINTK_CALLER and dictionary lines.
		{in: "12,9000,5000000,-,caller=T812;marker line\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n",
			want: kmsgRecord{Facility: 1, Level: 4, Seq: 9000, Time: 5 * time.Second, Message: "marker line"}},
		{in: "3,1,2,c;a\\x0ab\\x5c\\xzz\\x1\n",
			want: kmsgRecord{Level: 3, Seq: 1, Time: 2 * time.Microsecond, Cont: true, Message: "a\nb\\\\xzz\\x1"}},
		{in: "6,1,2,-;\n", want: kmsgRecord{Level: 6, Seq: 1, Time: 2 * time.Microsecond}},
		{in: "no header", err: true},
		{in: "6,1;x\n", err: true},
		{in: "x,1,2,-;x\n", err: true},
		{in: "6,-1,2,-;x\n", err: true},
		{in: "6,1,99999999999999999999,-;x\n", err: true},
	} {
		got, err := parseKmsgRecord([]byte(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseXid(t *testing.T) {
	want := []struct {
		pci string
		xid int
	}{{"0000:cb:00", 13}, {"0000:cb:00", 109}, {"0000:3b:00", 79}, {"0000:3b:00", 43}}
	recs := readKmsgFixture(t, "xid.kmsg")
	if len(recs) != len(want) {
		t.Fatalf("%d records", len(recs))
	}
	for i, b := range recs {
		rec, err := parseKmsgRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		pci, xid, ok := parseXid(rec.Message)
		if !ok || pci != want[i].pci || xid != want[i].xid {
			t.Errorf("%q: %q %d %v, want %q %d", rec.Message, pci, xid, ok, want[i].pci, want[i].xid)
		}
	}
	for _, bad := range []string{"NVRM: Xid (PCI:0000:cb:00): x13, y", "NVRM: Xid (PCI:zz;cb): 13, y", "NVRM: Xid (PCI:0000:cb:00): 123456, y", "Xid 13"} {
		if pci, xid, ok := parseXid(bad); ok {
			t.Errorf("%q: parsed as %q %d", bad, pci, xid)
		}
	}
}

func TestParseAVC(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want avcDenial
		ok   bool
	}{
		{in: readFixtureMessage(t, "selinux_denial.kmsg"), ok: true,
			want: avcDenial{scontext: "httpd_t", tcontext: "user_tmp_t", tclass: "sock_file", perms: []string{"read", "write"}, serial: 210, when: 1764582000.123}},
		// AUDIT_USER_AVC of dbus-broker, inside msg='...'.
		{in: "audit(1764582001.500:99): pid=812 uid=81 auid=4294967295 ses=4294967295 subj=system_u:system_r:system_dbusd_t:s0-s0:c0.c1023 msg='avc:  denied  { send_msg } for msgtype=method_call interface=org.freedesktop.DBus.Properties member=GetAll dest=org.freedesktop.systemd1 spid=1523 tpid=1 scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:system_r:init_t:s0 tclass=dbus permissive=0  exe=\"/usr/bin/dbus-broker\" sauid=81 hostname=? addr=? terminal=?'",
			ok: true, want: avcDenial{scontext: "httpd_t", tcontext: "init_t", tclass: "dbus", perms: []string{"send_msg"}, serial: 99, when: 1764582001.5}},
		// A path or a full context never becomes a label value.
		{in: "avc:  denied  { read } for path=\"/a b\" scontext=a:b tcontext=u:r:t$x:s0 tclass=fi/le", ok: true,
			want: avcDenial{scontext: "invalid", tcontext: "invalid", tclass: "invalid", perms: []string{"read"}}},
		{in: "avc:  granted  { setenforce } for pid=1", ok: false},
		{in: "avc:  denied  {} for pid=1", ok: false},
	} {
		got, ok := parseAVC(tc.in)
		if ok != tc.ok {
			t.Errorf("%q: ok %v", tc.in, ok)
			continue
		}
		if ok && fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func readFixtureMessage(t *testing.T, name string) string {
	rec, err := parseKmsgRecord(readKmsgFixture(t, name)[0])
	if err != nil {
		t.Fatal(err)
	}
	return rec.Message
}

// TestKmsgReaderAccounting feeds every fixture through the reader's
// accounting and checks the served counters: every category from 0, the
// sequence gaps as dropped, a record read again after a reopen not
// counted twice, severities, Xids, deduplicated and capped denials.
func TestKmsgReaderAccounting(t *testing.T) {
	r := newKmsgReader(host.OpenRoot("/").Path("nonexistent"), nil, true)
	r.boot = time.Unix(1764580000, 0)
	r.setClassifier(defaultClassifier(t), true)
	m := &Metrics{}
	if err := r.emit(m); err != nil {
		t.Fatal(err)
	}
	empty := metricValues(t, m)
	for _, cat := range r.cls.names() {
		if v, ok := empty[`azurelinux_kernel_log_events_total{category="`+cat+`"}`]; !ok || v != 0 {
			t.Errorf("category %s: %v %v before any record, want 0", cat, v, ok)
		}
	}

	seq := uint64(0)
	feed := func(name string) {
		for _, b := range readKmsgFixture(t, name) {
			rec, err := parseKmsgRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			seq++
			rec.Seq = seq
			r.handle(rec)
		}
	}
	for _, cat := range r.cls.names() {
		feed(cat + ".kmsg")
	}
	feed("xid.kmsg")
	feed("none.kmsg")
	// A gap of 5 records, then a record at an already-read sequence.
	seq += 5
	feed("oops.kmsg")
	before := r.lines
	r.handle(kmsgRecord{Seq: 3, Message: "Oops: 0000 [#1] SMP"})
	if r.lines != before {
		t.Error("a record read again after a reopen was counted")
	}
	// The same denial from the audit group (serial 210) is not counted
	// again; a new one (serial 211) is.
	text := readFixtureMessage(t, "selinux_denial.kmsg")
	r.handleAudit(1400, text[strings.Index(text, "audit("):])
	r.handleAudit(1400, strings.Replace(text[strings.Index(text, "audit("):], ":210)", ":211)", 1))
	r.handleAudit(1305, "audit(1764582002.000:212): op=set audit_enabled=1")

	m = &Metrics{}
	if err := r.emit(m); err != nil {
		t.Fatal(err)
	}
	got := metricValues(t, m)
	want := map[string]float64{
		`azurelinux_kernel_log_events_total{category="oops"}`:                                                                        6,
		`azurelinux_kernel_log_events_total{category="bug"}`:                                                                         4,
		`azurelinux_kernel_log_events_total{category="warning"}`:                                                                     3,
		`azurelinux_kernel_log_events_total{category="nvidia_driver"}`:                                                               5 + 1, // and Xid 79's "fallen off the bus"
		`azurelinux_kernel_log_events_total{category="selinux_denial"}`:                                                              1,
		`azurelinux_kernel_log_events_total{category="hardware_error"}`:                                                              5,
		`azurelinux_kernel_log_hardware_errors_total{severity="corrected"}`:                                                          2,
		`azurelinux_kernel_log_hardware_errors_total{severity="fatal"}`:                                                              1,
		`azurelinux_kernel_log_hardware_errors_total{severity="unknown"}`:                                                            2,
		`azurelinux_gpu_nvidia_xid_errors_total{pci_address="0000:cb:00",xid="13"}`:                                                  1,
		`azurelinux_gpu_nvidia_xid_errors_total{pci_address="0000:cb:00",xid="109"}`:                                                 1,
		`azurelinux_gpu_nvidia_xid_errors_total{pci_address="0000:3b:00",xid="79"}`:                                                  1,
		`azurelinux_gpu_nvidia_xid_errors_total{pci_address="0000:3b:00",xid="43"}`:                                                  1,
		`azurelinux_selinux_denials_total{permission="read",scontext_type="httpd_t",tclass="sock_file",tcontext_type="user_tmp_t"}`:  2,
		`azurelinux_selinux_denials_total{permission="write",scontext_type="httpd_t",tclass="sock_file",tcontext_type="user_tmp_t"}`: 2,
		`azurelinux_kmsg_lines_total`:                                                                                                float64(seq - 5),
		`azurelinux_kmsg_dropped_total`:                                                                                              5,
		`azurelinux_kmsg_audit_records_total`:                                                                                        3,
		`azurelinux_kmsg_reader_restarts_total`:                                                                                      0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// The oops fixture's Kernel panic record is at 400.1004 s after boot.
	if ts := got[`azurelinux_kernel_log_last_event_timestamp_seconds{category="oops"}`]; math.Abs(ts-(1764580000+400.1004)) > 1e-5 {
		t.Errorf("oops last event %f", ts)
	}
	if _, ok := got[`azurelinux_kernel_log_last_event_timestamp_seconds{category="netdev"}`]; !ok {
		t.Error("no last event timestamp for netdev")
	}

	// Label caps: 300 GPUs' Xids and 600 distinct denials.
	for i := range 300 {
		r.handle(kmsgRecord{Seq: seq + 1 + uint64(i), Message: fmt.Sprintf("NVRM: Xid (PCI:0000:%02x:00): 79, pid=1, GPU has fallen off the bus.", i%256) + strings.Repeat(" ", i/256)})
	}
	seq += 300
	for i := range 600 {
		r.handleAudit(1400, fmt.Sprintf("audit(1.0:%d): avc:  denied  { read } for scontext=u:r:t%d_t:s0 tcontext=u:r:x_t:s0 tclass=file", 1000+i, i))
	}
	m = &Metrics{}
	r.emit(m)
	got = metricValues(t, m)
	xids, avcs := 0, 0
	for k := range got {
		switch {
		case strings.HasPrefix(k, "azurelinux_gpu_nvidia_xid_errors_total{"):
			xids++
		case strings.HasPrefix(k, "azurelinux_selinux_denials_total{"):
			avcs++
		}
	}
	if xids > maxXidSeries+1 || avcs > maxAVCSeries+1 {
		t.Errorf("%d Xid series, %d denial series: over the caps %d and %d", xids, avcs, maxXidSeries, maxAVCSeries)
	}
	if got[`azurelinux_gpu_nvidia_xid_errors_total{pci_address="other",xid="other"}`] == 0 ||
		got[`azurelinux_selinux_denials_total{permission="other",scontext_type="other",tclass="other",tcontext_type="other"}`] == 0 {
		t.Error("overflow not counted in the other series")
	}
}

// TestKmsgClassifierConfig: the config's categories replace or extend the
// embedded ones, and a bad rule is an error that names it.
func TestKmsgClassifierConfig(t *testing.T) {
	cls, err := newKmsgClassifier([]KmsgCategory{
		{Name: "oom_kill", Rules: []KmsgRule{{Name: "oomd", Regex: `systemd-oomd\[\d+\]: Killed `}}},
		{Name: "mlx5_health", Rules: []KmsgRule{{Name: "health", Regex: `mlx5_core \S+: .*health compromised`}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	names := cls.names()
	if names[0] != "mlx5_health" || len(names) != 20 {
		t.Errorf("categories %v", names)
	}
	for msg, want := range map[string]string{
		"mlx5_core 0000:00:02.0: print_health_info: health compromised - reached miss count": "mlx5_health",
		"systemd-oomd[612]: Killed /user.slice/x.scope due to memory pressure":               "oom_kill",
		"Out of memory: Killed process 4242 (x) total-vm:1kB, anon-rss:1kB":                  "",
	} {
		i := cls.classify(msg)
		got := ""
		if i >= 0 {
			got = names[i]
		}
		if got != want {
			t.Errorf("%q: %q, want %q", msg, got, want)
		}
	}
	for _, tc := range []struct {
		cats []KmsgCategory
		want string
	}{
		{[]KmsgCategory{{Name: "x", Rules: []KmsgRule{{Name: "broken", Regex: `(unclosed`}}}}, `kmsg category "x" rule "broken": error parsing regexp`},
		{[]KmsgCategory{{Name: "Bad-Name", Rules: []KmsgRule{{Name: "r", Regex: `a`}}}}, `kmsg category "Bad-Name"`},
		{[]KmsgCategory{{Name: "x", Rules: nil}}, `kmsg category "x": no rules`},
		{[]KmsgCategory{{Name: "x", Rules: []KmsgRule{{Name: "r", Regex: `a`}, {Name: "r", Regex: `b`}}}}, `unique name`},
		{[]KmsgCategory{{Name: "x", Rules: []KmsgRule{{Name: "r", Regex: `a`}}}, {Name: "x", Rules: []KmsgRule{{Name: "r", Regex: `a`}}}}, `defined twice`},
	} {
		if _, err := newKmsgClassifier(tc.cats); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cats, err, tc.want)
		}
	}
}

func TestRequiredLiteral(t *testing.T) {
	for expr, want := range map[string]string{
		`BUG: soft lockup - CPU#\d+ stuck for \d+s!`: "BUG: soft lockup - CPU#",
		`(^|\n)Oops: `: "Oops: ",
		`a|b`:          "",
		`(?i)warning`:  "",
		`Loading of (unsigned module|x) is rejected`: " is rejected",
	} {
		if got := requiredLiteral(expr); got != want {
			t.Errorf("%q: %q, want %q", expr, got, want)
		}
	}
}

func TestXidTable(t *testing.T) {
	xids, err := loadXidTable()
	if err != nil {
		t.Fatal(err)
	}
	sev := map[int]string{}
	for _, x := range xids {
		sev[x.Xid] = x.Severity
	}
	for _, x := range []int{48, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140, 143} {
		if sev[x] != "fatal" {
			t.Errorf("xid %d: severity %q, want fatal", x, sev[x])
		}
	}
	for _, x := range []int{13, 31, 43, 45} {
		if sev[x] != "application" {
			t.Errorf("xid %d: severity %q, want application", x, sev[x])
		}
	}
	if len(xids) != 57 {
		t.Errorf("%d entries; docs/metrics.md says 57", len(xids))
	}
}

func TestReadVmstat(t *testing.T) {
	p := newFS(t).file("proc/vmstat", "nr_free_pages 1000\noom_kill 3\nnr_zone_active_anon 5\n").paths()
	v, ok, err := readVmstat(p.Proc("vmstat"), "oom_kill")
	if err != nil || !ok || v != 3 {
		t.Errorf("%d %v %v", v, ok, err)
	}
	if _, ok, err := readVmstat(p.Proc("vmstat"), "absent"); ok || err != nil {
		t.Errorf("absent key: %v %v", ok, err)
	}
	p = newFS(t).file("proc/vmstat", "oom_kill x\n").paths()
	if _, _, err := readVmstat(p.Proc("vmstat"), "oom_kill"); err == nil || !strings.Contains(err.Error(), "vmstat") {
		t.Errorf("bad value: %v", err)
	}
}

// TestKmsgNotLive: on a fixture tree the collector has no data.
func TestKmsgNotLive(t *testing.T) {
	_, err := runCollector(t, "kmsg", treePaths(t, "azl4-azure-gen2"))
	wantOutcome(t, err, true)
}

func FuzzParseKmsgRecord(f *testing.F) {
	for _, name := range []string{"oops.kmsg", "hyperv.kmsg", "nvidia_driver.kmsg", "boot-6.18.kmsg"} {
		for _, b := range readKmsgFixture(f, name)[:3] {
			f.Add(b)
		}
	}
	f.Add([]byte("6,1,2,-;\\x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := parseKmsgRecord(b)
		if err != nil {
			return
		}
		if len(rec.Message) > len(b) || rec.Level > 7 {
			t.Fatalf("%q: %+v", b, rec)
		}
	})
}

// FuzzKmsgClassify: any message classifies, and the labels it can produce
// stay bounded.
func FuzzKmsgClassify(f *testing.F) {
	for _, name := range []string{"xid.kmsg", "selinux_denial.kmsg", "hardware_error.kmsg", "warning.kmsg"} {
		for _, b := range readKmsgFixture(f, name) {
			if rec, err := parseKmsgRecord(b); err == nil {
				f.Add(rec.Message)
			}
		}
	}
	cls := defaultClassifier(f)
	f.Fuzz(func(t *testing.T, msg string) {
		if i := cls.classify(msg); i >= len(cls.cats) {
			t.Fatal(i)
		}
		if pci, xid, ok := parseXid(msg); ok && (len(pci) > 16 || xid < 0 || xid > 9999) {
			t.Fatalf("%q: %q %d", msg, pci, xid)
		}
		if d, ok := parseAVC(msg); ok {
			if len(d.perms) > maxAVCPerms {
				t.Fatal(len(d.perms))
			}
			for _, l := range append(d.perms, d.scontext, d.tcontext, d.tclass) {
				if len(l) > 64 || selinuxToken(l) != l {
					t.Fatalf("%q: label %q", msg, l)
				}
			}
		}
		found := false
		for _, s := range hardwareSeverities {
			found = found || hardwareSeverity(msg) == s
		}
		if !found {
			t.Fatal(hardwareSeverity(msg))
		}
	})
}

func TestParseVMBusVersion(t *testing.T) {
	for _, tc := range []struct {
		msg, want string
		ok        bool
	}{
		{"hv_vmbus: Vmbus version:5.3", "5.3", true},
		{"hv_vmbus: Vmbus version:4.0", "4.0", true},
		{"hv_vmbus: registering driver hv_netvsc", "", false},
		{"hv_vmbus: Vmbus version:5.3\x1b[2J", "", false},
		{"hv_vmbus: Vmbus version:99999.1", "", false},
	} {
		got, ok := parseVMBusVersion(tc.msg)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseVMBusVersion(%q) = %q, %v", tc.msg, got, ok)
		}
	}
}
