package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

var _ io.Writer = (*os.File)(nil)
