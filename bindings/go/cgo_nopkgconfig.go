//go:build memwise_nopkgconfig

package memwise

// Built with -tags memwise_nopkgconfig, the package does not run pkg-config:
// point the compiler and linker at the library yourself, for example
//   CGO_CFLAGS=-I$PREFIX/include CGO_LDFLAGS=-L$PREFIX/lib go build -tags memwise_nopkgconfig

// #cgo LDFLAGS: -lmemwise
import "C"
