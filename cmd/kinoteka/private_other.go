//go:build !unix

package main

// privateUmask: no umask outside Unix; the data folder's own permissions
// (the user's profile, on Windows) are what protect it.
func privateUmask() {}
