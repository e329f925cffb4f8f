package snippet

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const src = `package x

func ExampleA() {
	x := 1
	if x > 0 {
		fmt.Println(x)
	}
	// Output: 1
}

func ExampleB() {
	fmt.Println("no output checked")
}
`

func TestBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, want string }{
		{"ExampleA", "```go\nx := 1\nif x > 0 {\n\tfmt.Println(x)\n}\n```\n"},
		{"ExampleB", "```go\nfmt.Println(\"no output checked\")\n```\n"},
	} {
		got, ok := Body(src, tc.name)
		require.True(t, ok, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
	_, ok := Body(src, "ExampleC")
	require.False(t, ok)
	_, ok = Body(src, "Example")
	require.False(t, ok, "a prefix of a name is not the name")
}

func TestInReadme(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	example, readme := filepath.Join(dir, "example_test.go"), filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(example, []byte(src), 0o644))
	require.NoError(t, os.WriteFile(readme, []byte("# X\n\n```go\nx := 1\nif x > 0 {\n\tfmt.Println(x)\n}\n```\n"), 0o644))
	InReadme(t, readme, example, "ExampleA")

	stale := &recorder{TB: t}
	InReadme(stale, readme, example, "ExampleB")
	require.True(t, stale.failed, "the README lacks ExampleB's body")
}

// recorder is a testing.TB that records a failure instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
