package report

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Charts are drawn with gonum/plot onto its SVG canvas and inlined in the
// page, so the report needs nothing but itself to be viewed.

// palette is Okabe and Ito's colour-blind-safe set.
var palette = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0x00, 0x9E, 0x73, 0xff}, // green
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0xCC, 0x79, 0xA7, 0xff}, // purple
	{0x56, 0xB4, 0xE9, 0xff}, // sky
	{0x80, 0x80, 0x80, 0xff}, // grey
	{0xF0, 0xE4, 0x42, 0xff}, // yellow
}

func colorAt(i int) color.RGBA { return palette[i%len(palette)] }

const (
	chartW = 10 * vg.Inch
	chartH = 4.4 * vg.Inch
)

// legendEntry is a line of a legend drawn beside a plot.
type legendEntry struct {
	name  string
	thumb plot.Thumbnailer
}

// render draws p with its legend entries in a strip on its right and
// returns the SVG markup, ready to inline, labelled for screen readers.
func render(p *plot.Plot, entries []legendEntry, w, h vg.Length, label string) (template.HTML, error) {
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	white := color.White
	dc.SetColor(white)
	dc.Fill(dc.Rectangle.Path())
	dc = draw.Crop(dc, 4, -4, 4, -4)
	if len(entries) > 0 {
		leg := plot.NewLegend()
		leg.Top, leg.Left = true, true
		leg.Padding = vg.Points(3)
		sans(&leg.TextStyle.Font)
		var textW vg.Length
		for _, e := range entries {
			leg.Add(e.name, e.thumb)
			textW = max(textW, leg.TextStyle.Width(e.name))
		}
		legW := min(textW+leg.ThumbnailWidth+vg.Points(16), w/3)
		p.Draw(draw.Crop(dc, 0, -legW, 0, 0))
		lc := draw.Crop(dc, dc.Size().X-legW+vg.Points(8), 0, 0, 0)
		if p.Title.Text != "" {
			lc = draw.Crop(lc, 0, 0, 0, -(p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding))
		}
		leg.Draw(lc)
	} else {
		p.Draw(dc)
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("report: drawing chart %q: %w", label, err)
	}
	svg := buf.String()
	// Inline SVG takes no XML declaration; the rest is the canvas as is.
	if i := strings.Index(svg, "<svg"); i >= 0 {
		svg = svg[i:]
	}
	svg = strings.Replace(svg, "<svg", `<svg class="chart" role="img" aria-label="`+html.EscapeString(label)+`"`, 1)
	return template.HTML(svg), nil // gonum escapes every text it draws
}

// sans is the charts' typeface: Liberation Sans, which gonum/plot bundles
// for measuring text; viewers without it fall back to a similar sans.
func sans(f *font.Font) { f.Typeface, f.Variant = "Liberation", "Sans" }

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	for _, f := range []*font.Font{&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font} {
		sans(f)
	}
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks{}, niceTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// niceTicks places major ticks at round steps (1, 2 or 5 times a power
// of ten, never below minStep) labelled with just enough decimals, and an
// unlabelled minor tick between them. (gonum's default ticker can round
// its labels to values the ticks are not at.)
type niceTicks struct{ minStep float64 }

func (n niceTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if !(span > 0) {
		span = max(math.Abs(lo), 1)
	}
	raw := span / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	switch norm := raw / mag; {
	case norm < 1.5:
		step = mag
	case norm < 3.5:
		step = 2 * mag
	case norm < 7.5:
		step = 5 * mag
	}
	step = max(step, n.minStep)
	prec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	var out []plot.Tick
	for k := math.Ceil(lo/step - 1e-9); k*step <= hi+step*1e-9; k++ {
		v := k * step
		label := strconv.FormatFloat(v, 'f', prec, 64)
		if strings.Trim(label, "-0.") == "" {
			label = strings.TrimPrefix(label, "-")
		}
		out = append(out, plot.Tick{Value: v, Label: label})
		if half := v + step/2; half <= hi && (n.minStep == 0 || step/2 >= n.minStep) {
			out = append(out, plot.Tick{Value: half})
		}
	}
	if first := math.Ceil(lo/step-1e-9)*step - step/2; first >= lo && (n.minStep == 0 || step/2 >= n.minStep) {
		out = append(out, plot.Tick{Value: first})
	}
	return out
}

// genStat is the fitness of one generation's successful candidates.
type genStat struct {
	Gen                          int
	Count, Failed                int
	Best, Mean, Worst, BestSoFar float64
}

func progressChart(stats []genStat) (template.HTML, error) {
	p := newPlot("Fitness by generation", "generation", "fitness (higher is better)")
	p.X.Tick.Marker = niceTicks{minStep: 1}
	series := []struct {
		name  string
		value func(genStat) float64
		width vg.Length
		dash  []vg.Length
		glyph draw.GlyphDrawer
	}{
		{"best so far", func(s genStat) float64 { return s.BestSoFar }, 2.5, nil, draw.CircleGlyph{}},
		{"generation best", func(s genStat) float64 { return s.Best }, 1.5, nil, draw.TriangleGlyph{}},
		{"generation mean", func(s genStat) float64 { return s.Mean }, 1.2, []vg.Length{5, 3}, draw.SquareGlyph{}},
		{"generation worst", func(s genStat) float64 { return s.Worst }, 1.2, []vg.Length{2, 2}, draw.CrossGlyph{}},
	}
	var entries []legendEntry
	for i, s := range series {
		xys := make(plotter.XYs, len(stats))
		for j, g := range stats {
			xys[j] = plotter.XY{X: float64(g.Gen), Y: s.value(g)}
		}
		line, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return "", fmt.Errorf("report: progress chart: %w", err)
		}
		col := colorAt(i)
		line.Color, line.Width, line.Dashes = col, s.width, s.dash
		pts.Color, pts.Shape, pts.Radius = col, s.glyph, 2.5
		p.Add(line, pts)
		entries = append(entries, legendEntry{s.name, line})
	}
	return render(p, entries, chartW, chartH, "Fitness by generation: best so far, and each generation's best, mean and worst")
}

// objPoint is one candidate's objective vector, flagged when on the front.
type objPoint struct {
	ID    string
	Objs  []float64
	Front bool
}

func paretoChart(points []objPoint, i, j int, xName, yName string) (template.HTML, error) {
	p := newPlot(fmt.Sprintf("%s vs %s", yName, xName), xName+" (higher is better)", yName+" (higher is better)")
	var rest, front plotter.XYs
	for _, pt := range points {
		xy := plotter.XY{X: pt.Objs[i], Y: pt.Objs[j]}
		if pt.Front {
			front = append(front, xy)
		} else {
			rest = append(rest, xy)
		}
	}
	var entries []legendEntry
	if len(rest) > 0 {
		s, err := plotter.NewScatter(rest)
		if err != nil {
			return "", fmt.Errorf("report: Pareto chart: %w", err)
		}
		s.Color, s.Shape, s.Radius = palette[6], draw.RingGlyph{}, 3
		p.Add(s)
		entries = append(entries, legendEntry{"candidates", s})
	}
	if len(front) > 0 {
		// Join the front in order along x so its shape shows.
		sortXY(front)
		line, s, err := plotter.NewLinePoints(front)
		if err != nil {
			return "", fmt.Errorf("report: Pareto chart: %w", err)
		}
		line.Color, line.Width, line.Dashes = palette[1], 1, []vg.Length{4, 2}
		s.Color, s.Shape, s.Radius = palette[1], draw.CircleGlyph{}, 4
		p.Add(line, s)
		entries = append(entries, legendEntry{"Pareto front", s})
	}
	return render(p, entries, chartW, chartH, fmt.Sprintf("Pareto front: %s against %s", yName, xName))
}

func sortXY(xys plotter.XYs) {
	for a := 1; a < len(xys); a++ {
		for b := a; b > 0 && xys[b].X < xys[b-1].X; b-- {
			xys[b], xys[b-1] = xys[b-1], xys[b]
		}
	}
}

func techniqueChart(rows []techniqueRow) (template.HTML, error) {
	p := newPlot("Candidates per technique", "candidates", "")
	names := make([]string, len(rows))
	done := make(plotter.Values, len(rows))
	failed := make(plotter.Values, len(rows))
	anyFailed := false
	for i, r := range rows {
		names[i], done[i], failed[i] = r.Technique, float64(r.Done), float64(r.Failed)
		anyFailed = anyFailed || r.Failed > 0
	}
	bw := vg.Points(14)
	ok, err := plotter.NewBarChart(done, bw)
	if err != nil {
		return "", fmt.Errorf("report: technique chart: %w", err)
	}
	ok.Horizontal, ok.Color, ok.LineStyle.Width = true, palette[0], 0
	p.Add(ok)
	entries := []legendEntry{{"scored", ok}}
	if anyFailed {
		bad, err := plotter.NewBarChart(failed, bw)
		if err != nil {
			return "", fmt.Errorf("report: technique chart: %w", err)
		}
		bad.Horizontal, bad.Color, bad.LineStyle.Width = true, palette[1], 0
		bad.StackOn(ok)
		p.Add(bad)
		entries = append(entries, legendEntry{"failed", bad})
	}
	p.NominalY(names...)
	p.X.Min = 0
	p.X.Tick.Marker = niceTicks{minStep: 1}
	h := vg.Points(float64(30*len(rows)) + 100)
	return render(p, entries, chartW, h, "Number of candidates per merge technique")
}

// comparisonChart is a grouped bar chart: one group per held-out text,
// one bar per model.
func comparisonChart(texts []string, models []comparisonRow) (template.HTML, error) {
	p := newPlot("Held-out perplexity by domain (lower is better)", "", "perplexity")
	p.NominalX(texts...)
	slot := float64(chartW.Points()-160) / float64(max(1, len(texts)))
	bw := vg.Points(min(28, 0.8*slot/float64(max(1, len(models)))))
	var entries []legendEntry
	for i, m := range models {
		vs := make(plotter.Values, len(texts))
		for k, t := range texts {
			if v, ok := m.raw[t]; ok && !math.IsNaN(v) {
				vs[k] = v
			}
		}
		bars, err := plotter.NewBarChart(vs, bw)
		if err != nil {
			return "", fmt.Errorf("report: comparison chart: %w", err)
		}
		bars.Color = colorAt(i)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(i)-float64(len(models)-1)/2) * bw
		p.Add(bars)
		entries = append(entries, legendEntry{m.Name, bars})
	}
	p.Y.Min = 0
	return render(p, entries, chartW, chartH, "Held-out perplexity of the best model, every source and the uniform average, per domain")
}
