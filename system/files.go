package system

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteAtomic replaces path with data so that a reader (or a crash) sees either the old file or the new one,
// never half of each: temp file in the same directory, fsync, rename, fsync the directory. An existing file's
// mode and owner are kept; perm applies to new files (or always when force is set).
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeAtomic(path, data, perm, false, nil)
}

// writeAtomic is WriteAtomic with a validator that sees the finished temp file before it is moved in.
func writeAtomic(path string, data []byte, perm fs.FileMode, forcePerm bool, validate func(tmp string) error) error {
	dir := filepath.Dir(path)
	mode := perm
	uid, gid := -1, -1
	if st, err := os.Stat(path); err == nil {
		if !forcePerm {
			mode = st.Mode().Perm()
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if uid >= 0 && os.Geteuid() == 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if validate != nil {
		if err := validate(tmpName); err != nil {
			return fmt.Errorf("%s: the new content was rejected by its validator, the old file is untouched: %w", path, err)
		}
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	keep = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// FileMeta is what a backup must remember to put a file back exactly as it was.
type FileMeta struct {
	Existed bool        `json:"existed"`
	Mode    fs.FileMode `json:"mode"`
	UID     int         `json:"uid"`
	GID     int         `json:"gid"`
}

func statMeta(path string) (FileMeta, error) {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return FileMeta{}, nil
	}
	if err != nil {
		return FileMeta{}, err
	}
	if !st.Mode().IsRegular() {
		return FileMeta{}, fmt.Errorf("%s is not a regular file (%s); refusing to replace it", path, st.Mode().Type())
	}
	m := FileMeta{Existed: true, Mode: st.Mode().Perm(), UID: -1, GID: -1}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		m.UID, m.GID = int(sys.Uid), int(sys.Gid)
	}
	return m, nil
}
