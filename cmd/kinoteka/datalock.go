package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFileName is the file inside the data folder that the running
// instance holds locked, with its process id in it.
const lockFileName = "kinoteka.lock"

// dataLock is one process's hold on a data folder. Two instances on one
// folder would each open the SQLite files and the broker's log, and the
// broker's files are not made to be shared; the second is refused instead.
type dataLock struct{ f *os.File }

// errDataInUse is the refusal: another process holds the folder.
type errDataInUse struct {
	dir string
	pid int // 0 when the holder has not written its pid yet
}

func (e *errDataInUse) Error() string {
	holder := "another process"
	if e.pid > 0 {
		holder = "process " + strconv.Itoa(e.pid)
	}
	return fmt.Sprintf("data folder %s is in use by %s; stop it or use another folder with -data or KINOTEKA_DATA", absPath(e.dir), holder)
}

// lockDataDir creates the data folder if need be and takes its lock; the
// lock is the first thing written in the folder. The lock lasts until
// release or the end of the process, however it ends (the kernel drops it),
// so a crash never leaves a stale lock behind. The file itself stays: it is
// only ever read while another process holds it, so its pid is current.
func lockDataDir(dir string) (*dataLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, dataDirError(dir, "cannot create it", err)
	}
	// Not O_TRUNC: that would erase the holder's pid before we know there is one.
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, dataDirError(dir, "cannot write in it", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, dataDirError(dir, "cannot lock "+lockFileName, err)
	}
	if !held {
		defer f.Close()
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return nil, &errDataInUse{dir: dir, pid: pid}
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, dataDirError(dir, "cannot write in it", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, dataDirError(dir, "cannot write in it", err)
	}
	if err := makePrivate(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &dataLock{f: f}, nil
}

// release gives the folder up; closing the file drops the lock.
func (l *dataLock) release() {
	if l != nil {
		l.f.Close()
	}
}

// makePrivate closes dir to other users: the folder 0700 and nothing in it
// with group or other permissions. A folder made beforehand (mkdir gives
// 0755) or files written by an older version would otherwise leave the
// databases, the keys and the broker's log readable by every local user. A
// folder this process cannot change is refused rather than used.
func makePrivate(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return dataDirError(dir, "cannot read it", err)
		}
		info, err := d.Info()
		if err != nil {
			return dataDirError(dir, "cannot read it", err)
		}
		mode := info.Mode().Perm()
		want := mode &^ 0o077
		if d.IsDir() {
			want = 0o700
		}
		if d.Type()&fs.ModeSymlink != 0 || mode == want {
			return nil
		}
		if err := os.Chmod(path, want); err != nil {
			return dataDirError(dir, fmt.Sprintf("%s is open to other users (%#o) and cannot be made private", path, mode), err)
		}
		return nil
	})
}
