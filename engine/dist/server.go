package dist

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerOptions configure the embedded server.
type ServerOptions struct {
	// StoreDir holds JetStream's files (the run directory's nats/).
	StoreDir string
	// Listen ("HOST:PORT", port 0: any free one) opens the server to
	// workers on other machines; empty: no listener, in-process clients
	// only.
	Listen string
	// Token is required from every client when Listen is set.
	Token string
	// TLS, when set, makes the listener speak TLS.
	TLS *tls.Config
}

// Server is an embedded NATS server with JetStream.
type Server struct {
	ns    *server.Server
	token string
}

// StartServer starts an embedded server and waits until it accepts
// connections.
func StartServer(o ServerOptions) (*Server, error) {
	opts := &server.Options{
		ServerName: "evomerge",
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Jobs and results are a few KB; texts and shared sources travel
		// through the object store in chunks.
		MaxPayload: 8 << 20,
	}
	if o.Listen == "" {
		opts.DontListen = true
	} else {
		if o.Token == "" {
			return nil, errors.New("distributed.listen needs a token")
		}
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("distributed.listen %q: %w", o.Listen, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("distributed.listen %q: bad port", o.Listen)
		}
		opts.Host, opts.Port = host, n
		if n == 0 {
			opts.Port = server.RANDOM_PORT
		}
		opts.Authorization = o.Token
		if o.TLS != nil {
			opts.TLSConfig, opts.TLS = o.TLS, true
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("starting the job server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("the job server did not start within 10s")
	}
	return &Server{ns: ns, token: o.Token}, nil
}

// Connect opens an in-process client connection.
func (s *Server) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.InProcessServer(s.ns), nats.Name(name)}
	if s.token != "" {
		opts = append(opts, nats.Token(s.token))
	}
	nc, err := nats.Connect(s.ns.ClientURL(), opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the job server: %w", err)
	}
	return nc, nil
}

// Addr is the listener's address ("" without one).
func (s *Server) Addr() string {
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok && a != nil {
		return a.String()
	}
	return ""
}

// Close shuts the server down.
func (s *Server) Close() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// Dial connects to a server by URL (nats://[TOKEN@]HOST:PORT or tls://);
// once connected it reconnects for as long as the connection is open, so
// a coordinator that restarts finds its workers again.
func Dial(url, name string) (*nats.Conn, error) {
	return connect(url, name, false, "")
}

// DialWorker is Dial for a worker: a server that is not up yet is waited
// for, not an error; ca, when set, is the PEM file of the CA that signed
// a TLS server's certificate.
func DialWorker(url, name, ca string) (*nats.Conn, error) {
	return connect(url, name, true, ca)
}

func connect(url, name string, wait bool, ca string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(wait)}
	if ca != "" {
		opts = append(opts, nats.RootCAs(ca))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", Redact(url), err)
	}
	return nc, nil
}

// Redact hides a URL's token or password.
func Redact(u string) string {
	if i, j := strings.Index(u, "://"), strings.LastIndex(u, "@"); i >= 0 && j > i {
		return u[:i+3] + "…@" + u[j+1:]
	}
	return u
}
