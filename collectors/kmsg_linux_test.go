//go:build linux

package collectors

import (
	"encoding/binary"
	"testing"
)

// auditDatagram builds an audit multicast datagram as the kernel sends it:
// nlmsg_len is the unpadded length (kernel/audit.c
// kauditd_send_multicast_skb()).
func auditDatagram(typ uint16, text string) []byte {
	b := make([]byte, 16+len(text))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	copy(b[16:], text)
	return b
}

func TestParseAuditNetlink(t *testing.T) {
	// 197 bytes of text: an nlmsg_len that is not a multiple of 4.
	text := "audit(1796114162.118:2): pid=29209 uid=0 auid=4294967295 ses=4294967295 msg='avc:  denied  { read } for pid=1 scontext=u:r:probe_test_t:s0 tcontext=u:r:x_t:s0 tclass=file permissive=0'"
	typ, got, ok := parseAuditNetlink(auditDatagram(1107, text+"\x00"))
	if !ok || typ != 1107 || got != text {
		t.Errorf("%d %q %v", typ, got, ok)
	}
	if _, _, ok := parseAuditNetlink([]byte{1, 2, 3}); ok {
		t.Error("short datagram parsed")
	}
}

func FuzzParseAuditNetlink(f *testing.F) {
	f.Add(auditDatagram(1400, "audit(1.2:3): avc:  denied  { read } for scontext=a:b:c_t:s0 tcontext=a:b:d_t:s0 tclass=file"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, text, ok := parseAuditNetlink(b)
		if ok && len(text) > len(b) {
			t.Fatal(len(text))
		}
		if d, ok := parseAVC(text); ok && len(d.perms) > maxAVCPerms {
			t.Fatal(len(d.perms))
		}
	})
}
