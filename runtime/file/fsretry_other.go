//go:build !windows

package file

// transient reports whether err may clear by retrying. On Unix, rename and
// unlink do not care about open handles, so nothing is transient.
func transient(error) bool { return false }
