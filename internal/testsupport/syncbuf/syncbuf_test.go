package syncbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBuffer: writers and a reader at once (the race detector watches);
// every line arrives whole.
func TestBuffer(t *testing.T) {
	t.Parallel()
	var b Buffer
	require.Equal(t, []string{""}, b.Lines())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "w%d line %d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	lines := b.Lines()
	require.Len(t, lines, 400)
	for _, l := range lines {
		require.Regexp(t, `^w[0-3] line \d+$`, l)
	}
	require.Equal(t, b.String(), strings.Join(lines, "\n")+"\n")
}
