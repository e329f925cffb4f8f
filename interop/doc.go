// Package interop holds interoperability tests between this SDK and the
// reference implementations of the Durable Streams protocol: the TypeScript
// client @durable-streams/client against `durable serve`, and this SDK
// against the Node reference server @durable-streams/server.
//
// The tests are behind the build tag interop and need Node.js and the npm
// packages installed; .ci/steps/30-interop.sh sets that up and runs
//
//	go test -race -tags interop ./interop/...
//
// with DURABLE_INTEROP_DIR (a directory holding node_modules and the scripts
// of .ci/interop/), DURABLE_INTEROP_NODE (the node binary) and
// DURABLE_INTEROP_DURABLE (a built cmd/durable). A test whose environment is
// missing fails; it never skips.
package interop
