// Package e2e holds the dashboard's end-to-end tests: a real headless
// Chromium, driven through chromedp, against the dashboard over a real SQLite
// store with a real worker. It has no code of its own.
package e2e
