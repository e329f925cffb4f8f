// Package snippet keeps a README's code blocks in step with the Example
// functions that go test runs and checks: a block is the body of its
// Example, pasted verbatim.
package snippet

import (
	"os"
	"strings"
	"testing"
)

// Body returns the body of func name in the Go source src, without its
// braces and one level of indentation, up to its "// Output:" comment, as
// a README's ```go block shows it; false when src has no such func.
func Body(src, name string) (string, bool) {
	_, body, ok := strings.Cut(src, "\nfunc "+name+"() {\n")
	if !ok {
		return "", false
	}
	if out, _, ok := strings.Cut(body, "\t// Output:"); ok {
		body = out
	} else if end, _, ok := strings.Cut(body, "\n}\n"); ok {
		body = end + "\n"
	}
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	return "```go\n" + strings.Join(lines, "\n") + "```\n", true
}

// InReadme fails t unless the README at readme holds the body of func
// example of the file exampleFile as a ```go block.
func InReadme(t testing.TB, readme, exampleFile, example string) {
	t.Helper()
	src, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	block, ok := Body(string(src), example)
	if !ok {
		t.Fatalf("%s has no func %s", exampleFile, example)
	}
	text, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), block) {
		t.Errorf("%s's snippet differs from %s in %s: paste the Example's body\n%s", readme, example, exampleFile, block)
	}
}
