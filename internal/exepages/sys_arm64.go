package exepages

// sysUserfaultfd is userfaultfd(2)'s number (include/uapi/asm-generic/unistd.h).
const sysUserfaultfd = 282
