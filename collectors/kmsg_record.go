package collectors

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// kmsgRecord is one record of /dev/kmsg, as kernel/printk/printk.c
// devkmsg_read() formats it (Documentation/ABI/testing/dev-kmsg):
//
//	<priority>,<sequence>,<timestamp µs>,<flag>[,<more>...];<message>\n
//	 KEY=value\n ...
//
// The message has every byte below 0x20 (but tab) or above 0x7e escaped as
// \xNN (kernel/printk/printk.c msg_add_ext_text() / escape), so a printk of
// several lines arrives as one record with \x0a between them.
type kmsgRecord struct {
	Facility uint32
	Level    uint8
	Seq      uint64
	// Time is the record's timestamp since boot (local_clock()).
	Time time.Duration
	// Cont is set for the 'c' flag of kernels before 4.9's continuation
	// rework (the record continues the previous one).
	Cont    bool
	Message string
}

// kmsgMaxRecord bounds one record: devkmsg_read() refuses a read buffer
// smaller than the record, and its largest record is CONSOLE_EXT_LOG_MAX
// (8 KiB: include/linux/printk.h) plus the dictionary.
const kmsgMaxRecord = 16 << 10

var errKmsgRecord = errors.New("malformed kmsg record")

// parseKmsgRecord parses one record; b is what one read(2) of /dev/kmsg
// returned. The dictionary lines after the message are ignored.
func parseKmsgRecord(b []byte) (kmsgRecord, error) {
	var r kmsgRecord
	if len(b) > kmsgMaxRecord {
		return r, fmt.Errorf("%w: %d bytes", errKmsgRecord, len(b))
	}
	semi := bytes.IndexByte(b, ';')
	if semi < 0 {
		return r, fmt.Errorf("%w: no ';' after the header", errKmsgRecord)
	}
	header, body := b[:semi], b[semi+1:]
	if nl := bytes.IndexByte(body, '\n'); nl >= 0 {
		body = body[:nl]
	}
	var fields [4][]byte
	n := 0
	for n < 4 {
		i := bytes.IndexByte(header, ',')
		if i < 0 {
			fields[n] = header
			n++
			break
		}
		fields[n], header = header[:i], header[i+1:]
		n++
	}
	if n < 4 {
		return r, fmt.Errorf("%w: header has %d fields, want at least 4", errKmsgRecord, n)
	}
	pri, err := strconv.ParseUint(string(fields[0]), 10, 32)
	if err != nil {
		return r, fmt.Errorf("%w: priority %q", errKmsgRecord, fields[0])
	}
	r.Facility, r.Level = uint32(pri>>3), uint8(pri&7)
	if r.Seq, err = strconv.ParseUint(string(fields[1]), 10, 64); err != nil {
		return r, fmt.Errorf("%w: sequence %q", errKmsgRecord, fields[1])
	}
	us, err := strconv.ParseUint(string(fields[2]), 10, 63)
	if err != nil || us > uint64(1<<63-1)/1000 {
		return r, fmt.Errorf("%w: timestamp %q", errKmsgRecord, fields[2])
	}
	r.Time = time.Duration(us) * time.Microsecond
	r.Cont = len(fields[3]) > 0 && fields[3][0] == 'c'
	r.Message = unescapeKmsg(body)
	return r, nil
}

// unescapeKmsg undoes the \xNN escaping of a kmsg message.
func unescapeKmsg(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && b[i+1] == 'x' {
			if v, err := strconv.ParseUint(string(b[i+2:i+4]), 16, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, b[i])
	}
	return string(out)
}
