// Command durable is the Durable Streams command-line tool. It talks to any
// Durable Streams server over HTTP.
//
//	durable <command> [flags] [args]
//
// Commands: serve, create, append, tail, head, close, delete, sub, version. Run
// "durable <command> --help" for the flags and promises of each.
//
// # Streams
//
// A stream is named by a full http(s) URL, or by a path resolved against
// --server (or $DURABLE_SERVER when --server is not given): a relative path
// such as "orders" is appended to the server URL, whose path defaults to
// /v1/stream/ when it has none (the layout of "durable serve" and of the
// reference server); a path starting with "/" is taken from the server's root.
//
// # Authentication
//
// --header 'Name: value' (repeatable) adds a header to every request.
// $DURABLE_TOKEN, when set, adds "Authorization: Bearer $DURABLE_TOKEN" unless
// an Authorization header was given with --header.
//
// # Flags and arguments
//
// Flags may come before or after the positional arguments, and may be mixed
// with them: "durable tail orders --from now" and "durable tail --from now
// orders" are the same. A lone "--" ends the flags: everything after it is a
// positional argument, even if it starts with "-".
//
// # Output and exit codes
//
// Data (messages, offsets, metadata) goes to stdout; status, progress and
// errors go to stderr only. The exit code is 0 on success (for tail also when
// the stream ends, being closed), 1 on an error, 2 on a usage error (an unknown
// command or flag, a missing or malformed argument) or an input append
// refuses (sending nothing, or with --stream saying what was sent).
//
// Commands parse their flags with the standard library's flag package rather
// than a CLI framework: the command surface is small (a handful of commands
// with a few flags each), and flag keeps the module's dependency list to the
// two runtime dependencies the design allows.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand of durable.
type command struct {
	name    string
	summary string
	// run executes the command with its arguments (after the command name).
	// ctx is cancelled on SIGINT or SIGTERM.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the subcommand table; each command adds itself from its own
// file via register.
var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// errUsage marks an error whose usage text the command already printed.
var errUsage = errors.New("usage")

// Exit codes.
const (
	exitOK    = 0 // success, or a tail that reached the end of a closed stream
	exitError = 1 // the operation failed
	exitUsage = 2 // bad command line
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			// "durable help tail" is "durable tail --help".
			if c, ok := commands[args[1]]; ok {
				return exitCodeOf(c, c.run(ctx, []string{"--help"}, stdout, stderr), stderr)
			}
		}
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	args = commandFirst(args)
	c, ok := commands[args[0]]
	if !ok {
		what := fmt.Sprintf("unknown command %q", args[0])
		if strings.HasPrefix(args[0], "-") {
			what = "no command"
		}
		fmt.Fprintf(stderr, "durable: %s (the commands: %s)\nrun 'durable --help' for usage\n", what, strings.Join(commandNames(), ", "))
		return exitUsage
	}
	return exitCodeOf(c, c.run(ctx, args[1:], stdout, stderr), stderr)
}

// commandFirst lets flags come before the command as they may after it
// ("durable --server URL tail s" is "durable tail s --server URL"): when
// args start with a flag, the first word that names a command moves to the
// front.
func commandFirst(args []string) []string {
	if !strings.HasPrefix(args[0], "-") {
		return args
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		if _, ok := commands[a]; ok {
			return append(append([]string{a}, args[:i]...), args[i+1:]...)
		}
	}
	return args
}

// commandNames lists the commands in alphabetical order.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// exitCodeOf reports err (unless it is a usage error, already reported) and
// maps it to an exit code.
func exitCodeOf(c command, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.As(err, new(*badInput)):
		fmt.Fprintf(stderr, "durable %s: %s\n", c.name, report(err))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "durable %s: %s\n", c.name, report(err))
		return exitError
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: durable <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
A stream is a full http(s) URL, or a path resolved against --server or
$DURABLE_SERVER (a server URL without a path means /v1/stream/).
Auth: --header 'Name: value' (repeatable); $DURABLE_TOKEN sends a bearer token.
Flags may come before or after arguments; "--" ends the flags.
Data goes to stdout; status and errors to stderr.
Exit codes: 0 ok (tail: also the end of a closed stream), 1 error, 2 usage
or bad input (append sends nothing, or says what it sent).

Run "durable <command> --help" for a command's flags.
`)
}
