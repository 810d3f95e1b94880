package themes

import (
	"image/color"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestEveryThemeByNameAndCycle(t *testing.T) {
	names := Names()
	if len(names) < 3 {
		t.Fatalf("themes %v", names)
	}
	for i, n := range names {
		th, err := ByName(n)
		if err != nil || th.Name != n {
			t.Fatalf("%s: %v %+v", n, err, th)
		}
		if got := Next(n); got != names[(i+1)%len(names)] {
			t.Fatalf("Next(%s) = %s", n, got)
		}
		// Every role has a colour.
		v := reflect.ValueOf(th.Palette)
		for j := range v.NumField() {
			if v.Field(j).IsNil() {
				t.Errorf("%s: %s has no colour", n, v.Type().Field(j).Name)
			}
		}
	}
	if Next("unknown") != names[0] {
		t.Fatal("Next of an unknown name does not start over")
	}
	if _, err := ByName("solarized"); err == nil || !strings.Contains(err.Error(), "dark, light, high-contrast") {
		t.Fatalf("unknown theme: %v", err)
	}
}

func TestThemesAreValues(t *testing.T) {
	a := DarkTheme()
	a.Palette.Accent = color.Black
	if DarkTheme().Palette.Accent == color.Black {
		t.Fatal("changing a theme changed the next one")
	}
}

func TestWithoutColorKeepsSelectionVisible(t *testing.T) {
	for _, n := range Names() {
		th, _ := ByName(n)
		m := th.WithoutColor()
		if !m.Mono || m.Name != n {
			t.Fatalf("%+v", m)
		}
		st := m.Styles()
		out := st.Selected.Render("row") + st.Best.Render("best") + st.Good.Render("ok") + st.StatusBar.Render("bar")
		if strings.Contains(out, "38;") || strings.Contains(out, "48;") {
			t.Fatalf("%s without colour still colours: %q", n, out)
		}
		if !strings.Contains(st.Selected.Render("row"), "7") {
			t.Fatalf("%s: selection not reverse video: %q", n, st.Selected.Render("row"))
		}
		colored := th.Styles().Selected.Render("row")
		if !bgCode.MatchString(colored) {
			t.Fatalf("%s: coloured selection has no background: %q", n, colored)
		}
	}
}

// bgCode matches an SGR sequence that sets a background colour.
var bgCode = regexp.MustCompile(`\x1b\[([0-9;]*;)?(4[0-7]|10[0-7]|48;[0-9;]+)m`)

func TestContrastOfTextAndSelection(t *testing.T) {
	// WCAG contrast ratio ≥ 4.5 for the text on the selection, the
	// status bar, and (for the light theme) text on white.
	lum := func(c color.Color) float64 {
		r, g, b, _ := c.RGBA()
		f := func(v uint32) float64 {
			x := float64(v) / 65535
			if x <= 0.03928 {
				return x / 12.92
			}
			return math.Pow((x+0.055)/1.055, 2.4)
		}
		return 0.2126*f(r) + 0.7152*f(g) + 0.0722*f(b)
	}
	ratio := func(a, b color.Color) float64 {
		la, lb := lum(a), lum(b)
		if la < lb {
			la, lb = lb, la
		}
		return (la + 0.05) / (lb + 0.05)
	}
	for _, th := range []Theme{DarkTheme(), LightTheme()} {
		p := th.Palette
		if r := ratio(p.SelectionFg, p.SelectionBg); r < 4.5 {
			t.Errorf("%s: selection contrast %.2f", th.Name, r)
		}
		if r := ratio(p.BarFg, p.BarBg); r < 4.5 {
			t.Errorf("%s: status bar contrast %.2f", th.Name, r)
		}
	}
	if r := ratio(LightTheme().Palette.Text, color.White); r < 7 {
		t.Errorf("light text on white: %.2f", r)
	}
}
