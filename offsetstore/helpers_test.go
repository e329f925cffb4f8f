package offsetstore

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime"
)

func runtimeGosched() { runtime.Gosched() }

// withChecksum wraps data in a version-1 envelope with a correct checksum.
func withChecksum(data string) []byte {
	sum := sha256.Sum256([]byte(data))
	return []byte(`{"version":1,"checksum":"sha256:` + hex.EncodeToString(sum[:]) + `","data":` + data + `}`)
}
