module memwise.dev/examples/go-server

go 1.23

require memwise.dev/memwise v0.0.0

// The binding is used from this checkout, never fetched.
replace memwise.dev/memwise => ../../bindings/go
