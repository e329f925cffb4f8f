package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// newCommandFlags returns a flag set for a subcommand that reports errors
// to stderr instead of exiting. --help prints the synopsis, then help (the
// command's promises), then the flags; a flag error prints one line and a
// pointer to --help (see parseArgs).
func newCommandFlags(name, synopsis, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("durable "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: durable %s %s\n", name, synopsis)
		if help != "" {
			fmt.Fprintf(stderr, "\n%s\n", strings.TrimSpace(help))
		}
		fmt.Fprintln(stderr, "\nflags:")
		printFlags(stderr, fs)
	}
	return fs
}

// parseFlags parses args, mapping a parse failure to errUsage. Positional
// arguments are left in fs.Args(); use parseArgs to allow flags after them.
func parseFlags(fs *flag.FlagSet, args []string) error {
	return parseOnce(fs, args)
}

// parseArgs parses args, mapping a parse failure to errUsage. Flags may
// come before, between or after positional arguments (the flag package
// alone stops at the first positional argument, so parsing resumes after
// each one); a "--" in flag position ends the flags. It returns the
// positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseOnce(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if endedByDashDash(fs, args, rest) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseStream is parseArgs for a command whose one argument is STREAM.
func parseStream(fs *flag.FlagSet, args []string, stderr io.Writer, name string) (string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usageErr(stderr, name, "want exactly one STREAM, got %d arguments", len(pos))
	}
	return pos[0], nil
}

// parseOnce is one fs.Parse. On -h/--help it prints the usage and returns
// flag.ErrHelp; on a flag error it prints one line saying what is wrong and
// "run 'durable X --help' for usage" (not the whole usage) and returns
// errUsage.
func parseOnce(fs *flag.FlagSet, args []string) error {
	explainValues(fs)
	usage := fs.Usage
	fs.Usage = func() {}
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		if usage != nil {
			usage()
		}
		return err
	}
	fmt.Fprintf(out, "%s: %s\n", fs.Name(), flagError(err))
	fmt.Fprintf(out, "run '%s --help' for usage\n", fs.Name())
	return errUsage
}

// flagErrors rewrites the flag package's error texts (they carry no type to
// tell them apart) into the CLI's form, with flags written as --name.
var flagErrors = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^invalid value (".*") for flag -([^ :]+): (.*)$`), `--$2 $1: $3`},
	{regexp.MustCompile(`^invalid boolean value (".*") for -([^ :]+): (.*)$`), `--$2 $1: $3`},
	{regexp.MustCompile(`^invalid boolean flag ([^ :]+): (.*)$`), `--$1: $2`},
	{regexp.MustCompile(`^flag needs an argument: -(.+)$`), `--$1 needs a value`},
	{regexp.MustCompile(`^flag provided but not defined: -(.+)$`), `unknown flag --$1`},
}

// flagError returns the one-line message for a flag parse error.
func flagError(err error) string {
	s := err.Error()
	for _, fe := range flagErrors {
		if fe.re.MatchString(s) {
			return fe.re.ReplaceAllString(s, fe.repl)
		}
	}
	return s
}

// explainedValue wraps a flag's value so that a value it refuses is
// explained: a duration needs a unit, a number is whole, a switch is true
// or false.
type explainedValue struct {
	flag.Value
	want string
}

func (v *explainedValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		return errors.New(v.want)
	}
	return nil
}

func (v *explainedValue) Get() any { return v.Value.(flag.Getter).Get() }

func (v *explainedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// explainValues wraps every standard flag value of fs in an
// explainedValue (once).
func explainValues(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if _, done := f.Value.(*explainedValue); done {
			return
		}
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		switch g.Get().(type) {
		case time.Duration:
			f.Value = &explainedValue{f.Value, "want a duration with a unit, such as 1s, 500ms, 2m or 1h"}
		case int, int64, uint, uint64:
			f.Value = &explainedValue{f.Value, "want a whole number"}
		case float64:
			f.Value = &explainedValue{f.Value, "want a number"}
		case bool:
			f.Value = &explainedValue{f.Value, "want true or false"}
		}
	})
}

// printFlags prints fs's flags as --name, with their argument type (or the
// `quoted` name in the usage), usage and non-zero default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flagArg(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch {
		case f.DefValue == "" || f.DefValue == "0" || f.DefValue == "false" || f.DefValue == "0s":
		case strings.Contains(usage, "(default"): // the usage says it in words
		default:
			if arg == "string" {
				fmt.Fprintf(w, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(w, " (default %v)", f.DefValue)
			}
		}
		fmt.Fprintln(w)
	})
}

// flagArg returns the name of a flag's argument ("" for a switch) and its
// usage: a `quoted` word in the usage names the argument (and loses its
// quotes), else the type of the flag's value does.
func flagArg(f *flag.Flag) (arg, usage string) {
	usage = f.Usage
	if i := strings.IndexByte(usage, '`'); i >= 0 {
		if j := strings.IndexByte(usage[i+1:], '`'); j >= 0 {
			arg = usage[i+1 : i+1+j]
			return arg, usage[:i] + arg + usage[i+1+j+1:]
		}
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "value", usage
	}
	switch g.Get().(type) {
	case bool:
		return "", usage
	case time.Duration:
		return "duration", usage
	case int, int64, uint, uint64:
		return "int", usage
	case float64:
		return "float", usage
	case string:
		return "string", usage
	}
	return "value", usage
}

// endedByDashDash reports whether fs.Parse(args) stopped at a "--"
// terminator (rather than at a positional argument or the end), telling a
// terminator from a "--" that was the value of the flag before it.
func endedByDashDash(fs *flag.FlagSet, args, rest []string) bool {
	i := len(args) - len(rest) - 1 // index of the last consumed argument
	if i < 0 || args[i] != "--" {
		return false
	}
	if i == 0 {
		return true
	}
	prev := args[i-1]
	if !strings.HasPrefix(prev, "-") || prev == "-" || prev == "--" || strings.Contains(prev, "=") {
		return true
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return true
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return true
	}
	return false // "--" was the value of the flag prev
}
