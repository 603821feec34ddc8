// Package tools pins the build tools the Makefile runs with `go tool -modfile`, apart from
// the operator's own module so that their dependencies never mix with the operator's.
package tools
