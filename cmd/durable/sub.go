package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/subscription"
)

func init() {
	register(command{name: "sub", summary: "manage a subscription; tail one as a worker (sub --help)", run: runSub})
}

const subHelp = `Subscriptions are server-side consumers over many streams: a glob pattern
and/or streams named explicitly, one acked offset per stream, and one lease at a
time handed to one of the workers that share the subscription.

  durable sub create SUB --pattern 'orders/*' [--stream S]... [--wake-stream W | --webhook URL]
                     [--lease-ttl 30s] [--description TEXT]
  durable sub get SUB                 print the subscription as JSON
  durable sub delete SUB
  durable sub add SUB STREAM...       link streams by name
  durable sub remove SUB STREAM...    remove streams linked by name
  durable sub tail SUB [--output FILE]
                                      work the subscription: one JSON line per message

SUB is the subscription's id. Stream paths are relative to the stream root
(--server, whose path defaults to /v1/stream/).

` + connHelp

// subCommands are the subcommands of sub.
var subCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"create": runSubCreate,
	"get":    runSubGet,
	"delete": runSubDelete,
	"add":    runSubAdd,
	"remove": runSubRemove,
	"tail":   runSubTail,
}

func runSub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if run, ok := subCommands[args[0]]; ok {
			return run(ctx, args[1:], stdout, stderr)
		}
	}
	fs := newCommandFlags("sub", "create|get|delete|add|remove|tail SUB [args] [flags]", subHelp, stderr)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if len(args) == 0 {
		return usageErr(stderr, "sub", "want a subcommand: create, get, delete, add, remove or tail")
	}
	return usageErr(stderr, "sub", "unknown subcommand %q: want create, get, delete, add, remove or tail", args[0])
}

// openSub parses a sub subcommand's flags and opens the subscription named
// by its first argument; rest are the other arguments.
func openSub(args []string, fs *flag.FlagSet, conn *connFlags, stderr io.Writer, name string, minArgs int) (sub *subscription.Subscription, cl *durable.Client, rest []string, err error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, nil, nil, err
	}
	switch {
	case minArgs == 1 && len(pos) != 1:
		return nil, nil, nil, usageErr(stderr, name, "want exactly one SUB, got %d arguments", len(pos))
	case len(pos) < minArgs:
		return nil, nil, nil, usageErr(stderr, name, "want SUB and at least one STREAM, got %d arguments", len(pos))
	}
	cl, err = conn.rootClient(stderr, name)
	if err != nil {
		return nil, nil, nil, err
	}
	sub, err = subscription.Open(cl, pos[0])
	if err != nil {
		return nil, nil, nil, usageErr(stderr, name, "%v", strings.TrimPrefix(err.Error(), "invalid argument: "))
	}
	return sub, cl, pos[1:], nil
}

const subCreateHelp = `Creates the subscription, or re-confirms it when it exists with exactly this
configuration (any difference is an error). A pull-wake subscription (the
default) writes wake events to --wake-stream (default wake/SUB), which is
created as a JSON stream if it does not exist; --webhook URL makes a webhook
subscription instead (the server must accept the URL). At least one of
--pattern and --stream is required. Prints the subscription as JSON.

` + connHelp

// stringList collects a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runSubCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const name = "sub create"
	fs := newCommandFlags(name, "SUB [flags]", subCreateHelp, stderr)
	var conn connFlags
	conn.register(fs)
	var cfg subscription.Config
	var streams stringList
	var ttl time.Duration
	fs.StringVar(&cfg.Pattern, "pattern", "", "glob over stream paths: * is one segment, ** any number")
	fs.Var(&streams, "stream", "stream path to link by name (repeatable)")
	fs.StringVar(&cfg.WakeStream, "wake-stream", "", "pull-wake: the stream of wake events (default wake/SUB, created if missing)")
	fs.StringVar(&cfg.WebhookURL, "webhook", "", "make a webhook subscription delivering to this URL")
	fs.DurationVar(&ttl, "lease-ttl", 0, "lease length, 1s to 10m (default: the server's, 30s)")
	fs.StringVar(&cfg.Description, "description", "", "free text")
	sub, cl, _, err := openSub(args, fs, &conn, stderr, name, 1)
	if err != nil {
		return err
	}
	cfg.Streams, cfg.LeaseTTL, cfg.Type = streams, ttl, subscription.PullWake
	if cfg.WebhookURL != "" {
		if cfg.WakeStream != "" {
			return usageErr(stderr, name, "--webhook and --wake-stream do not go together")
		}
		cfg.Type = subscription.Webhook
	} else if cfg.WakeStream == "" {
		cfg.WakeStream = "wake/" + sub.ID()
	}
	if cfg.Pattern == "" && len(cfg.Streams) == 0 {
		return usageErr(stderr, name, "want --pattern or --stream")
	}
	if cfg.Type == subscription.PullWake {
		if _, err := cl.Create(ctx, cfg.WakeStream, durable.CreateOptions{ContentType: "application/json"}); err != nil && !errors.Is(err, durable.ErrStreamExists) {
			return fmt.Errorf("create wake stream %q: %w", cfg.WakeStream, err)
		}
	}
	info, created, err := sub.Create(ctx, cfg)
	if err != nil {
		if errors.Is(err, durable.ErrInvalidArgument) {
			return usageErr(stderr, name, "%v", err)
		}
		return err
	}
	if created {
		fmt.Fprintf(stderr, "created subscription %s\n", sub.ID())
	} else {
		fmt.Fprintf(stderr, "subscription %s exists with this configuration\n", sub.ID())
	}
	return printJSON(stdout, info)
}

const subGetHelp = `Prints the subscription as JSON: its configuration, status, and each linked
stream with its link type and acked offset.

` + connHelp

func runSubGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubSimple(ctx, args, stderr, "sub get", "SUB [flags]", subGetHelp, 1,
		func(sub *subscription.Subscription, _ []string) error {
			info, err := sub.Get(ctx)
			if err != nil {
				return err
			}
			return printJSON(stdout, info)
		})
}

const subDeleteHelp = `Deletes the subscription (its wake in flight ends). Deleting one that does not
exist is not an error.

` + connHelp

func runSubDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubSimple(ctx, args, stderr, "sub delete", "SUB [flags]", subDeleteHelp, 1,
		func(sub *subscription.Subscription, _ []string) error {
			if err := sub.Delete(ctx); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "deleted subscription %s\n", sub.ID())
			return nil
		})
}

const subAddHelp = `Links streams to the subscription by name, at their current tails (no replay of
their history). Linking a linked stream again changes nothing.

` + connHelp

func runSubAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubSimple(ctx, args, stderr, "sub add", "SUB STREAM... [flags]", subAddHelp, 2,
		func(sub *subscription.Subscription, streams []string) error {
			if err := sub.AddStreams(ctx, streams...); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "linked %d stream(s) to %s\n", len(streams), sub.ID())
			return nil
		})
}

const subRemoveHelp = `Removes streams linked by name. A stream the pattern matches stays linked by
the pattern. Removing a link that does not exist is not an error.

` + connHelp

func runSubRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubSimple(ctx, args, stderr, "sub remove", "SUB STREAM... [flags]", subRemoveHelp, 2,
		func(sub *subscription.Subscription, streams []string) error {
			for _, s := range streams {
				if err := sub.RemoveStream(ctx, s); err != nil {
					return err
				}
			}
			fmt.Fprintf(stderr, "removed %d stream link(s) from %s\n", len(streams), sub.ID())
			return nil
		})
}

// runSubSimple runs a sub subcommand that has only the connection flags:
// it opens the subscription named by the first argument and calls do with
// it and the other arguments.
func runSubSimple(ctx context.Context, args []string, stderr io.Writer, name, synopsis, help string, minArgs int,
	do func(sub *subscription.Subscription, rest []string) error) error {
	fs := newCommandFlags(name, synopsis, help, stderr)
	var conn connFlags
	conn.register(fs)
	sub, _, rest, err := openSub(args, fs, &conn, stderr, name, minArgs)
	if err != nil {
		return err
	}
	return do(sub, rest)
}

// printJSON writes v as indented JSON and a newline.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
