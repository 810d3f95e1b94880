package report

import (
	"bufio"
	"bytes"
	"context"
	"image/png"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/config"
)

// chromiumPath is Debian's chromium package (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// proxyTrap stands in for the network: Chromium is told to send every
// request, loopback included, through it, and it refuses them all while
// recording what was asked for.
type proxyTrap struct {
	ln   net.Listener
	mu   sync.Mutex
	reqs []string
}

func newProxyTrap(t *testing.T) *proxyTrap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxyTrap{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			p.mu.Lock()
			p.reqs = append(p.reqs, strings.TrimSpace(line))
			p.mu.Unlock()
			c.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *proxyTrap) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.reqs...)
}

// chromium runs headless Chromium on a page with networking cut off: a
// fresh profile, no background services, QUIC off, and every request
// sent to the trap.
func chromium(t *testing.T, ctx context.Context, proxy string, args ...string) []byte {
	t.Helper()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
		"--disable-extensions", "--disable-default-apps", "--no-pings", "--disable-client-side-phishing-detection",
		"--disable-features=OptimizationHints,Translate,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
		"--user-data-dir=" + t.TempDir(),
		"--proxy-server=" + proxy, "--proxy-bypass-list=<-loopback>",
	}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// TestChromiumRendersReport opens the report in headless Chromium with no
// network and checks that the charts are in the rendered DOM and that the
// page paints as a real, non-blank image with the charts' colours.
func TestChromiumRendersReport(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("headless browser check skipped: %s is absent (apt-get install chromium)", chromiumPath)
	}
	dir := makeRun(t, fixture{optimizer: "nsga2", objectives: config.Objectives{Perplexity: 1, Coherence: 0.5}})
	if err := os.WriteFile(filepath.Join(dir, BenchFile), []byte(`[{"name": "merge", "value": 1.5, "unit": "s"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	page := "file://" + path
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	trap := newProxyTrap(t)
	proxy := trap.ln.Addr().String()

	// The DOM as rendered: every chart is an inline SVG with its marks.
	dom := string(chromium(t, ctx, proxy, "--dump-dom", page))
	svgs := regexp.MustCompile(`(?s)<svg\b[^>]*class="chart".*?</svg>`).FindAllString(dom, -1)
	if len(svgs) != 4 {
		t.Fatalf("rendered DOM holds %d charts, want 4 (progress, Pareto, techniques, comparison)", len(svgs))
	}
	for i, want := range []string{"Fitness by generation", "coherence vs", "Candidates per technique", "Held-out perplexity by domain"} {
		svg := svgs[i]
		if !strings.Contains(svg, want) {
			t.Errorf("chart %d lacks its title %q", i, want)
		}
		if n := strings.Count(svg, "<path"); n < 10 {
			t.Errorf("chart %d (%s) has only %d paths", i, want, n)
		}
	}
	for _, id := range []string{"run", "progress", "pareto", "techniques", "best", "comparison", "samples", "timings", "bench"} {
		if !strings.Contains(dom, `<section id="`+id+`"`) {
			t.Errorf("rendered DOM lacks section %q", id)
		}
	}

	// The painted page: not blank, and the charts' colours are on it.
	shot := filepath.Join(t.TempDir(), "report.png")
	chromium(t, ctx, proxy, "--window-size=1200,4200", "--screenshot="+shot, page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 1000 || b.Dy() < 3000 {
		t.Fatalf("screenshot is %v", b)
	}
	var sum, sumSq float64
	vermillion := 0 // palette[1]: chart marks only, never the page's own styling
	colours := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			l := 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)
			sum += l
			sumSq += l * l
			if len(colours) < 5000 {
				colours[r<<16|g<<8|bl] = true
			}
			if near(r, 0xD5) && near(g, 0x5E) && near(bl, 0x00) {
				vermillion++
			}
		}
	}
	n := float64(b.Dx() * b.Dy())
	mean := sum / n
	variance := sumSq/n - mean*mean
	t.Logf("screenshot %dx%d: luminance mean %.1f variance %.1f, %d colours, %d chart-vermillion pixels",
		b.Dx(), b.Dy(), mean, variance, len(colours), vermillion)
	if variance < 100 || len(colours) < 50 {
		t.Errorf("the screenshot looks blank: luminance variance %.1f, %d colours", variance, len(colours))
	}
	if vermillion < 2000 {
		t.Errorf("only %d pixels of the charts' vermillion: the charts did not paint", vermillion)
	}

	// Chromium's own services still call home in headless mode (clock,
	// updater, sign-in); the trap refused them. Anything else came from
	// the page, which must need nothing.
	for _, req := range trap.requests() {
		if host := requestHost(req); chromiumServices[host] {
			t.Logf("refused Chromium's own request to %s", host)
		} else {
			t.Errorf("viewing the report tried the network: %q", req)
		}
	}
}

// chromiumServices are hosts Chromium itself contacts whatever the page.
var chromiumServices = map[string]bool{
	"accounts.google.com": true, "clients1.google.com": true, "clients2.google.com": true,
	"update.googleapis.com": true, "optimizationguide-pa.googleapis.com": true, "safebrowsing.googleapis.com": true,
	"content-autofill.googleapis.com": true, "redirector.gvt1.com": true, "edgedl.me.gvt1.com": true, "dl.google.com": true,
}

// requestHost is the host of a proxy request line: "CONNECT host:443 …"
// or "GET http://host/path …".
func requestHost(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	target := f[1]
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(target); err == nil {
		return h
	}
	return target
}

func near(a, b uint32) bool { return a+12 >= b && a <= b+12 }
