package host

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// NamespaceID returns the device and inode of this process's namespace of
// the given kind ("pid", "net", ...), which is how the kernel names a
// namespace to eBPF helpers such as bpf_get_ns_current_pid_tgid. It asks
// the live kernel: /proc/self/ns/<kind> is a magic link, which no confined
// path may follow.
func NamespaceID(kind string) (dev, ino uint64, err error) {
	var st unix.Stat_t
	path := "/proc/self/ns/" + kind
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Dev, st.Ino, nil
}
