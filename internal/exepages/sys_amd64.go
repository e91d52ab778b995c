package exepages

// sysUserfaultfd is userfaultfd(2)'s number (arch/x86/entry/syscalls/syscall_64.tbl).
const sysUserfaultfd = 323
