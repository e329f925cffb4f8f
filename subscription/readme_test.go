package subscription

import (
	"testing"

	"github.com/durablego/durable/internal/testsupport/snippet"
)

// TestReadmeSnippet keeps the README's subscription code block equal to
// ExampleWorker's body, which go test runs and checks.
func TestReadmeSnippet(t *testing.T) {
	t.Parallel()
	snippet.InReadme(t, "../README.md", "example_test.go", "ExampleWorker")
}
