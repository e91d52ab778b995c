//go:build !amd64 && !arm64

package exepages

// sysUserfaultfd is unknown here: the call fails with ENOSYS and the
// executable stays mapped with fault-around.
const sysUserfaultfd = ^uintptr(0)
