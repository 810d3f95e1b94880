package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/themes"
)

// GenerateConfig asks for a configuration with the same forms as the
// workbench's config page and writes it to path as TOML (default
// evomerge.toml). When path exists its settings are the starting values.
//
// With accessible set the forms are plain line-oriented prompts on in and
// out (huh's accessible mode), which works without a terminal: from a
// pipe, a script or a screen reader. An empty answer keeps the value shown
// in brackets. Without accessible the forms are the interactive ones and
// in/out should be a terminal.
//
// Every problem config.Validate finds is shown, and only the fields with
// problems are asked again (up to three more rounds, or until the input
// ends); the file is written only when the configuration is valid, and
// atomically. An existing file is replaced only after a confirmation.
func GenerateConfig(in io.Reader, out io.Writer, path string, accessible bool) error {
	return generateConfig(context.Background(), in, out, path, accessible)
}

func generateConfig(ctx context.Context, in io.Reader, out io.Writer, path string, accessible bool) error {
	if path == "" {
		path = "evomerge.toml"
	}
	cfg := config.Default()
	exists := false
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("%s is a directory: give a file name for the configuration", path)
		}
		exists = true
		c, err := config.Load(path)
		switch {
		case err == nil, errors.Is(err, config.ErrInvalid):
			cfg = c
			fmt.Fprintf(out, "Editing %s.\n", path)
			if err != nil {
				fmt.Fprintf(out, "It has problems, which the questions below let you fix:\n%v\n", err)
			}
		default:
			return fmt.Errorf("reading the configuration to edit: %w", err)
		}
	}
	theme, _ := themes.ByName(cfg.UI.Theme)
	if os.Getenv("NO_COLOR") != "" {
		theme = theme.WithoutColor()
	}
	d := newDraft(cfg, path)
	r := &byteReader{r: in}
	run := func(f *huh.Form) error {
		if accessible {
			f = f.WithAccessible(true).WithInput(r).WithOutput(out)
		} else {
			// The initial size matters when out is not a terminal (the form
			// misplaces keys without one); a terminal reports its own.
			f = f.WithProgramOptions(tea.WithInput(in), tea.WithOutput(out), tea.WithWindowSize(80, 24))
		}
		if err := f.RunWithContext(ctx); err != nil {
			if errors.Is(err, huh.ErrUserAborted) {
				return fmt.Errorf("configuration not written: %w", err)
			}
			return fmt.Errorf("configuration form: %w", err)
		}
		return nil
	}

	opts := formOptions{accessible: accessible, theme: theme, save: false}
	if accessible {
		fmt.Fprintln(out, "evomerge configuration. Press enter to keep the value in brackets.")
		fmt.Fprintln(out)
	}
	if err := run(buildForm(d, opts)); err != nil {
		return err
	}
	if accessible && !r.ended() {
		// huh's accessible mode ignores hidden groups, so the advanced
		// settings are a second form behind a question.
		var adv bool
		if err := run(huh.NewForm(huh.NewGroup(huh.NewConfirm().Title("Edit advanced settings?").Value(&adv)))); err != nil {
			return err
		}
		if adv {
			o := opts
			o.advanced = true
			o.only = map[string]bool{}
			for _, f := range formFields() {
				if f.group == groupAdvanced {
					o.only[f.key] = true
				}
			}
			if err := run(buildForm(d, o)); err != nil {
				return err
			}
		}
	}

	var final config.Config
	for round := 0; ; round++ {
		c, err := d.config()
		ps := c.Validate()
		var ce *config.Error
		if errors.As(err, &ce) {
			ps = append(ce.Problems, ps...)
		}
		if len(ps) == 0 {
			final = c
			break
		}
		fmt.Fprintf(out, "\nThe configuration has %d problems:\n", len(ps))
		for _, p := range ps {
			fmt.Fprintf(out, "  %s: %s\n", p.Key, p.Msg)
		}
		only := fieldsFor(ps)
		if round >= 3 || r.ended() || len(only) == 0 {
			hint := ""
			if len(only) == 0 {
				hint = " (these settings are not in the forms: edit the file)"
			}
			return fmt.Errorf("configuration not written%s: %w", hint, ps.Err())
		}
		fmt.Fprintln(out, "\nPlease correct them:")
		o := opts
		o.only, o.advanced = only, true
		if err := run(buildForm(d, o)); err != nil {
			return err
		}
	}

	if exists {
		ok := false
		confirm := huh.NewForm(huh.NewGroup(huh.NewConfirm().Title(fmt.Sprintf("Replace %s?", path)).Value(&ok)))
		if err := run(confirm); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("configuration not written: %s exists and was kept", path)
		}
	}
	if err := writeConfig(path, final); err != nil {
		return err
	}
	fmt.Fprintf(out, "Wrote %s.\n", path)
	return nil
}

// fieldsFor maps problems to the form fields that can fix them.
func fieldsFor(ps config.Problems) map[string]bool {
	out := map[string]bool{}
	fields := formFields()
	for _, p := range ps {
		if keyUnder(p.Key, techniquesKey) {
			out[techniquesKey] = true
			continue
		}
		for _, f := range fields {
			if f.group != groupSave && keyUnder(p.Key, f.key) {
				out[f.key] = true
			}
		}
	}
	return out
}

// byteReader hands its reader's bytes over one at a time. huh's accessible
// prompts each wrap the input in a new bufio.Scanner; a scanner that reads
// ahead would swallow the answers to later prompts (they would then take
// their defaults). One byte per Read keeps every scanner at its line.
// It also remembers that the input ended, so that the problem rounds stop.
type byteReader struct {
	mu  sync.Mutex
	r   io.Reader
	eof bool
}

func (b *byteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := b.r.Read(p[:1])
	if err != nil {
		b.mu.Lock()
		b.eof = true
		b.mu.Unlock()
	}
	return n, err
}

func (b *byteReader) ended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}
