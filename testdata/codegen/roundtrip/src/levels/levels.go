// Package levels holds a named type that task packages use; it has no tasks.
package levels

// Level is a severity.
type Level int8
