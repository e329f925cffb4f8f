package pgstore

import (
	"testing"

	"github.com/durablego/durable/internal/testsupport/snippet"
)

// TestReadmeSnippet keeps the README's "Exactly once into Postgres" code
// block equal to ExampleConsumer's body, which go test runs and checks.
func TestReadmeSnippet(t *testing.T) {
	t.Parallel()
	snippet.InReadme(t, "../../README.md", "example_test.go", "ExampleConsumer")
}
