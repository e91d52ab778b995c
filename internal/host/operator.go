package host

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ErrTooLarge marks a file larger than the limit its reader was given.
var ErrTooLarge = errors.New("larger than the limit")

// ReadRegularFile reads the operator-supplied file at path (a flag such as
// --config.file, --baseline.file or a checks.d entry: not confined to a
// tree, links followed as the operator wrote them), failing when it is
// larger than limit bytes.
//
// The open is O_NONBLOCK and the descriptor must be a regular file, so a
// FIFO planted at the path (open(2) on a FIFO for reading blocks until a
// writer appears, see fifo(7)) or a device such as /dev/zero neither hangs
// the caller nor streams without end: both fail at once, naming the path.
func ReadRegularFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, typeName(st.Mode()))
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w of %d bytes", path, ErrTooLarge, limit)
	}
	return b, nil
}
