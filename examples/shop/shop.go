// Package shop is Nuvom's example module: a small shop whose slow work
// (thumbnails, e-mail, reports, invoices) runs as background tasks.
//
// Regenerate the manifest, the typed stubs and the registry with
//
//	go generate ./...
package shop

//go:generate go tool nuvomgen ./...
