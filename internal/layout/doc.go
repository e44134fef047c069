// Package layout holds no code: its test enforces the import rules of docs/architecture.md
// over the whole module with `go list`, so a forbidden import fails `make test-unit`. It
// lives in internal/ because the rules span every binary.
package layout
