//go:build unix

package main

import "syscall"

// privateUmask makes everything this process creates from now on its
// owner's alone, whatever mode the code creating it asks for: the embedded
// broker (kfake) writes its log, which holds live codes, 0644 in folders
// 0755, and SQLite its journals after the database's mode. The umask is the
// whole process's, which is what the embedded mode wants: every file it
// writes is in the data folder.
func privateUmask() { syscall.Umask(0o077) }
