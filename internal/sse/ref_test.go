package sse

import (
	"io"
	"strings"
)

// refParse is a deliberately simple reference implementation of the same
// rules over a whole input, used to check the streaming parser.
func refParse(in string, maxLine, maxEvent int) ([]Event, error) {
	var events []Event
	var data strings.Builder
	hasData := false
	eventType, lastID := "", ""
	pending := false
	first := true
	for {
		if in == "" {
			if pending {
				return events, io.ErrUnexpectedEOF
			}
			return events, io.EOF
		}
		i := strings.IndexAny(in, "\r\n")
		terminated := i >= 0
		var line string
		if terminated {
			line = in[:i]
			if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
				in = in[i+2:]
			} else {
				in = in[i+1:]
			}
		} else {
			line, in = in, ""
		}
		if len(line) > maxLine {
			return events, ErrLineTooLong
		}
		if !terminated {
			return events, io.ErrUnexpectedEOF
		}
		if first {
			first = false
			line = strings.TrimPrefix(line, "\xef\xbb\xbf")
		}
		switch {
		case line == "":
			pending = false
			if hasData {
				d := data.String()
				typ := eventType
				if typ == "" {
					typ = "message"
				}
				events = append(events, Event{Type: typ, Data: d[:len(d)-1], ID: lastID})
			}
			data.Reset()
			hasData = false
			eventType = ""
			continue
		case line[0] == ':':
			continue
		}
		pending = true
		name, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch name {
		case "data":
			if data.Len()+len(value) > maxEvent {
				return events, ErrEventTooLarge
			}
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "event":
			eventType = value
		case "id":
			if !strings.Contains(value, "\x00") {
				lastID = value
			}
		}
	}
}
