package durableotel

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeTable: the README's table names every metric recorded, with
// its unit, and the spans and their events; nothing else.
func TestReadmeTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	text := string(b)
	start := strings.Index(text, "## Metrics and traces: OpenTelemetry")
	require.GreaterOrEqual(t, start, 0, "the README has the section")
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	metric := regexp.MustCompile("(?m)^\\| `([a-z._]+)` \\| [a-z -]+ \\| ([^ |]+) \\|")
	table := map[string]string{}
	for _, m := range metric.FindAllStringSubmatch(section, -1) {
		table[m[1]] = m[2]
	}
	require.Equal(t, recordAll(t), table)
	for _, name := range []string{"span `append {path}`", "span `read {path}`", spanEventRetry, spanEventLostBatch, spanEventFenced,
		string(attrAttempts), string(attrAttempt), string(attrOffset), string(attrNextOffset), string(attrLive), string(attrBytes),
		string(attrUpToDate), string(attrClosed), string(attrProducerEpoch), string(attrProducerSeq), string(attrOperation), string(attrRetryWait), string(attrServerEpoch)} {
		require.Contains(t, section, name)
	}
}
