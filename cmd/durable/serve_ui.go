package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/durablego/durable/cmd/durable/ui"
	"github.com/durablego/durable/testserver"
)

// uiFlags are the flags of `durable serve` for its Test UI and the
// __registry__ stream the UI lists streams from.
type uiFlags struct {
	ui       bool
	registry bool
}

func (f *uiFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.ui, "ui", true, "serve the web Test UI at "+ui.Path+" (false: no UI route)")
	fs.BoolVar(&f.registry, "registry", true, "keep a "+testserver.RegistryPath+" stream of stream created/deleted events (the UI lists streams from it)")
}

// options returns the testserver options for the flags. prefix is the
// stream prefix (--prefix): with the UI on, it must not contain the UI's
// path, or the UI would hide streams.
func (f *uiFlags) options(prefix string) ([]testserver.Option, error) {
	opts := []testserver.Option{testserver.WithRegistry(f.registry)}
	if !f.ui {
		return opts, nil
	}
	p := "/" + strings.Trim(prefix, "/") + "/"
	if p == "//" || strings.HasPrefix(ui.Path, p) || strings.HasPrefix(p, ui.Path) {
		return nil, fmt.Errorf("--prefix %q overlaps the Test UI at %s: choose another prefix or --ui=false", prefix, ui.Path)
	}
	return append(opts, testserver.WithMiddleware(ui.Middleware(p))), nil
}

// announce tells where the UI is, on stderr (stdout's first line is the
// base URL, for scripts).
func (f *uiFlags) announce(stderr io.Writer, base string) {
	if f.ui {
		fmt.Fprintf(stderr, "durable serve: Test UI at %s%s\n", base, ui.Path)
	}
}
