package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

func TestBoundErrors(t *testing.T) {
	many := func(n int) error {
		errs := make([]error, n)
		for i := range errs {
			errs[i] = fmt.Errorf("pci device 0000:00:%02x.0: vendor: no such file", i%256)
		}
		return errors.Join(errs...)
	}
	huge := errors.New(strings.Repeat("é", 3000))
	for _, tc := range []struct {
		name     string
		err      error
		want     string // suffix of the message
		maxBytes int
		lines    int
		noData   bool
	}{
		{"nil", nil, "", 0, 0, false},
		{"one", errors.New("taint mask: empty"), "taint mask: empty", 100, 1, false},
		{"join of one", errors.Join(nil, errors.New("x")), "x", 10, 1, false},
		{"twenty kept", many(20), "no such file", 20 * 60, 20, false},
		{"100000 counted", many(100000), "\nand 99980 more errors", 21 * 60, 21, false},
		{"nested joins", errors.Join(many(15), errors.Join(many(15), collectors.ErrNoData)), "\nand 11 more errors", 21 * 60, 21, true},
		{"one huge", huge, "… (6000 bytes)", maxErrorBytes + 20, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := boundErrors(tc.err)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("got %v", got)
				}
				return
			}
			msg := got.Error()
			if !strings.HasSuffix(msg, tc.want) || len(msg) > tc.maxBytes || strings.Count(msg, "\n")+1 != tc.lines {
				t.Errorf("%d bytes, %d lines, ends %q; want at most %d bytes, %d lines, ending %q",
					len(msg), strings.Count(msg, "\n")+1, msg[max(0, len(msg)-40):], tc.maxBytes, tc.lines, tc.want)
			}
			if errors.Is(got, collectors.ErrNoData) != tc.noData {
				t.Errorf("errors.Is(ErrNoData) = %v, want %v", !tc.noData, tc.noData)
			}
			if !strings.Contains(msg, "\uFFFD") && strings.ToValidUTF8(msg, "") != msg {
				t.Errorf("message is not valid UTF-8")
			}
		})
	}
}
