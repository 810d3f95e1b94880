//go:build unix && !linux

package cli

import "golang.org/x/sys/unix"

// redirectFD makes newfd refer to oldfd's file.
func redirectFD(oldfd, newfd int) error { return unix.Dup2(oldfd, newfd) }
