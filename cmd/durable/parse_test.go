package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

func TestParseArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		pos     []string
		from    string
		verbose bool
		err     bool
	}{
		{"flags first", []string{"--from", "now", "-v", "s"}, []string{"s"}, "now", true, false},
		{"flags last", []string{"s", "--from", "now"}, []string{"s"}, "now", false, false},
		{"interleaved", []string{"a", "--from=x", "b", "-v", "c"}, []string{"a", "b", "c"}, "x", true, false},
		{"dash dash", []string{"s", "--", "--from", "-v"}, []string{"s", "--from", "-v"}, "", false, false},
		{"dash dash as a value", []string{"s", "--from", "--", "t"}, []string{"s", "t"}, "--", false, false},
		{"dash dash after bool", []string{"-v", "--", "-x"}, []string{"-x"}, "", true, false},
		{"single dash is positional", []string{"-", "s"}, []string{"-", "s"}, "", false, false},
		{"unknown flag", []string{"s", "--nope"}, nil, "", false, true},
		{"missing value", []string{"s", "--from"}, nil, "", false, true},
		{"none", nil, nil, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			from := fs.String("from", "", "")
			v := fs.Bool("v", false, "")
			pos, err := parseArgs(fs, tt.args)
			if tt.err {
				assert.ErrorIs(t, err, errUsage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.pos, pos)
			assert.Equal(t, tt.from, *from)
			assert.Equal(t, tt.verbose, *v)
		})
	}
}

func TestResolveStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stream, server, want string
		err                  string
	}{
		{"orders", "http://h:1", "http://h:1/v1/stream/orders", ""},
		{"orders", "http://h:1/", "http://h:1/v1/stream/orders", ""},
		{"a/b c", "https://h/streams", "https://h/streams/a/b%20c", ""},
		{"orders", "http://h/x/", "http://h/x/orders", ""},
		{"/root/orders", "http://h/x/", "http://h/root/orders", ""},
		{"http://o/s?k=v", "", "http://o/s?k=v", ""},
		{"https://u:p@o/s", "http://ignored", "https://u:p@o/s", ""},
		{"orders", "", "", "DURABLE_SERVER"},
		{"", "http://h", "", "empty"},
		{"a/../b", "http://h", "", `".."`},
		{"a//b", "http://h", "", "empty segment"},
		{"a?b", "http://h", "", "'?'"},
		{"a\x01", "http://h", "", "control"},
		{"ftp://h/s", "", "", "only http"},
		{"orders", "h:1", "", "http(s)"},
		{"orders", "http://h/?q", "", "query"},
		{"http://", "", "", "invalid stream URL"},
	}
	for _, tt := range tests {
		t.Run(tt.stream+" on "+tt.server, func(t *testing.T) {
			t.Parallel()
			got, err := resolveStream(tt.stream, tt.server)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, name, value string
		err             bool
	}{
		{"X-Tenant: acme", "X-Tenant", "acme", false},
		{"x-tenant:acme", "X-Tenant", "acme", false},
		{"Authorization:  Bearer a:b ", "Authorization", "Bearer a:b", false},
		{"Empty:", "Empty", "", false},
		{"NoColon", "", "", true},
		{": v", "", "", true},
		{"Bad Name: v", "", "", true},
		{"X: a\r\nY: b", "", "", true},
		{"X: a\x00", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			n, v, err := parseHeader(tt.in)
			if tt.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.name, n)
			assert.Equal(t, tt.value, v)
		})
	}
	t.Run("token", func(t *testing.T) {
		t.Parallel()
		h, err := requestHeaders([]string{"X: 1"}, " tok ")
		require.NoError(t, err)
		assert.Equal(t, "Bearer tok", h.Get("Authorization"))
		h, err = requestHeaders([]string{"authorization: Basic x"}, "tok")
		require.NoError(t, err)
		assert.Equal(t, "Basic x", h.Get("Authorization"), "an explicit header wins")
		_, err = requestHeaders(nil, "a b")
		assert.Error(t, err)
	})
}

func TestParseValues(t *testing.T) {
	t.Parallel()
	from := []struct {
		in   string
		want durable.Offset
		err  bool
	}{
		{"start", durable.OffsetStart, false},
		{"-1", durable.OffsetStart, false},
		{"now", durable.OffsetNow, false},
		{"0000_0012", "0000_0012", false},
		{"", "", true},
		{"a/b", "", true},
		{"a b", "", true},
		{"a&b=c", "", true},
		{strings.Repeat("x", 2000), "", true},
	}
	for _, tt := range from {
		got, err := parseFrom(tt.in)
		if tt.err {
			assert.Error(t, err, "--from %q", tt.in)
			continue
		}
		assert.NoError(t, err, "--from %q", tt.in)
		assert.Equal(t, tt.want, got)
	}
	ttl := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"3600", time.Hour, false},
		{"90s", 90 * time.Second, false},
		{"24h", 24 * time.Hour, false},
		{"0", 0, true},
		{"-5", 0, true},
		{"1.5s", 0, true},
		{"500ms", 0, true},
		{"soon", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range ttl {
		got, err := parseTTL(tt.in)
		if tt.err {
			assert.Error(t, err, "--ttl %q", tt.in)
			continue
		}
		assert.NoError(t, err, "--ttl %q", tt.in)
		assert.Equal(t, tt.want, got)
	}
	at, err := parseExpiresAt("2030-01-02T03:04:05Z")
	require.NoError(t, err)
	assert.Equal(t, time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), at)
	_, err = parseExpiresAt("2030-01-02")
	assert.Error(t, err)
}

// FuzzParseInputs checks the command-line parsers on arbitrary input: they
// never panic, and whatever they accept satisfies their promises.
func FuzzParseInputs(f *testing.F) {
	seeds := []struct{ stream, server, header, from, dur string }{
		{"orders", "http://localhost:4437", "X-Tenant: acme", "start", "24h"},
		{"/v1/stream/a/b", "https://h/x/", "Authorization: Bearer t", "now", "3600"},
		{"http://h/s?offset=1", "", "bad header", "0000_0001", "1.5s"},
		{"a/../b", "ftp://x", ": v", "a/b", "-1"},
		{"a\x00b", "http://h/?q", "X: a\r\nY: b", "", "99999999999999999999s"},
		{"ünï/cødé", "http://[::1]:80", "ü: v", "-1", "0"},
	}
	for _, s := range seeds {
		f.Add(s.stream, s.server, s.header, s.from, s.dur)
	}
	f.Fuzz(func(t *testing.T, stream, server, header, from, dur string) {
		if u, err := resolveStream(stream, server); err == nil {
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				t.Fatalf("resolveStream(%q, %q) = %q: not an http(s) URL", stream, server, u)
			}
			if strings.ContainsAny(u, "\x00\r\n ") {
				t.Fatalf("resolveStream(%q, %q) = %q: unescaped character", stream, server, u)
			}
		}
		if n, v, err := parseHeader(header); err == nil {
			if n == "" || strings.ContainsAny(n, " :\t\r\n") || strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("parseHeader(%q) = %q, %q", header, n, v)
			}
		}
		if o, err := parseFrom(from); err == nil {
			if o == "" || strings.ContainsAny(string(o), ",&=?/ \r\n\x00") {
				t.Fatalf("parseFrom(%q) = %q", from, o)
			}
		}
		if d, err := parseTTL(dur); err == nil {
			if d <= 0 || d%time.Second != 0 {
				t.Fatalf("parseTTL(%q) = %v", dur, d)
			}
		}
	})
}

// FuzzReadJSONLines checks the stdin reader of append --json: every message
// it yields is one valid JSON value, the messages are the non-blank lines in
// order, and batches stay within the byte bound.
func FuzzReadJSONLines(f *testing.F) {
	for _, s := range []string{
		"1\n2\n3\n",
		"{\"a\":1}\r\n\n  \n[1,2]",
		"{oops\n1\n",
		"\"" + strings.Repeat("x", 100) + "\"\n",
		"",
		"\n\n\n",
		"null\ntrue\n\"\\u2028\"\n",
	} {
		f.Add(s, 64)
	}
	f.Fuzz(func(t *testing.T, in string, maxBytes int) {
		if maxBytes < 1 || maxBytes > 1<<16 {
			return
		}
		out := make(chan inputBatch)
		done := make(chan struct{})
		defer close(done)
		go readJSONLines(strings.NewReader(in), maxBytes, out, done)
		var got []string
		var end error
		for b := range out {
			size := 0
			for _, m := range b.msgs {
				if !json.Valid(m) {
					t.Fatalf("invalid JSON message %q", m)
				}
				size += len(m) + 1
				got = append(got, string(m))
			}
			if len(b.msgs) > 1 && size > maxBytes+len(b.msgs[len(b.msgs)-1])+1 {
				t.Fatalf("batch of %d bytes over the bound %d", size, maxBytes)
			}
			if b.err != nil {
				end = b.err
			}
		}
		if end == nil {
			t.Fatal("input ended without an error or io.EOF")
		}
		var want []string
		for _, l := range strings.Split(in, "\n") {
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			if !json.Valid([]byte(l)) || len(l) > maxBytes {
				break
			}
			want = append(want, l)
		}
		if errors.Is(end, io.EOF) {
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("messages %q, want %q", got, want)
			}
		} else if len(got) > len(want) || strings.Join(got, "\n") != strings.Join(want[:len(got)], "\n") {
			t.Fatalf("messages %q before error %v, want a prefix of %q", got, end, want)
		}
	})
}
