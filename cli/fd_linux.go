package cli

import "golang.org/x/sys/unix"

// redirectFD makes newfd refer to oldfd's file (dup2; Linux on arm64 has only dup3).
func redirectFD(oldfd, newfd int) error { return unix.Dup3(oldfd, newfd, 0) }
