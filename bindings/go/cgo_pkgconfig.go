//go:build !memwise_nopkgconfig

package memwise

// The default build finds the installed C library with pkg-config: set
// PKG_CONFIG_PATH to PREFIX/lib/pkgconfig for a non-system prefix.

// #cgo pkg-config: memwise
import "C"
